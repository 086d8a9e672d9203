// Select (V): click to select (Shift adds), drag to move, drag a corner to resize; 1-9
// gives the selection the class, Delete removes it. The selection is the page's (review
// mode shares it); the drag is the page's; this mode holds no state of its own.
import {helpPanel} from "../panel.js";
import {handleAt, hit} from "../pick.js";

export function select(page) {
  return {
    name: "select", key: "v", title: "Select (V)",
    handles: true,  // the corners of selected boxes are drawn, to resize by
    state: () => ({}),
    press: (d) => press(page, d),
    release: (d, moved) => release(page, d, moved),
    pickClass(id) { if (page.doc.get().selected.size) page.changes.classOfSelection(id); },
    panel(el) {
      helpPanel(el, "select", `Click to select (Shift: add), drag to move, drag a corner to resize, 1-9 changes class, Delete removes.${page.doc.get().project.oriented ? " [ and ] turn oriented boxes." : ""}`);
    },
    draw(ctx, lw, d) {
      if (d && (d.kind === "move" || d.kind === "resize")) {
        ctx.strokeStyle = "#fff"; ctx.setLineDash([3 * lw, 3 * lw]);
        ctx.beginPath(); ctx.moveTo(d.x0, d.y0); ctx.lineTo(d.x, d.y); ctx.stroke(); ctx.setLineDash([]);
      }
    },
  };
}

// a press on a corner of a selected box resizes it, on an object selects and moves it
function press(page, d) {
  if (d.button !== 0) return;
  const {anns, selected} = page.doc.get(), scale = page.view.scale;
  const h = handleAt(anns, selected, d.x0, d.y0, scale);
  if (h) { d.kind = "resize"; d.handle = h; return; }
  const a = hit(anns, d.x0, d.y0, scale);
  if (a) {
    if (!selected.has(a.id)) { if (!d.shift) selected.clear(); selected.add(a.id); }
    d.kind = "move";
  } else if (!d.shift) selected.clear();
  page.doc.set();
}

function release(page, d, moved) {
  const {anns, selected} = page.doc.get();
  if (d.kind === "move" && moved) {
    const dx = d.x - d.x0, dy = d.y - d.y0;
    const items = [...selected].filter((id) => anns.get(id).kind !== "mask").map((id) => ({id, after: {geometry: moveBy(anns.get(id).geometry, dx, dy)}}));
    return page.changes.patchMany(items, "edit");
  }
  if (d.kind === "resize") {
    const b = [...anns.get(d.handle.id).geometry.box];
    const c = d.handle.corner;
    if (c === 0 || c === 3) b[0] = d.x; else b[2] = d.x;
    if (c === 0 || c === 1) b[1] = d.y; else b[3] = d.y;
    return page.changes.patchMany([{id: d.handle.id, after: {geometry: {box: b}}}], "edit");
  }
}

function moveBy(g, dx, dy) {
  if (g.rbox) return {rbox: [g.rbox[0] + dx, g.rbox[1] + dy, ...g.rbox.slice(2)]};
  if (g.point) return {point: [g.point[0] + dx, g.point[1] + dy], original: g.original};
  return {box: [g.box[0] + dx, g.box[1] + dy, g.box[2] + dx, g.box[3] + dy]};
}
