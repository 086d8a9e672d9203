// Select (V): click to select (Shift adds), drag to move, drag a corner to resize; 1-9
// gives the selection the class, Delete removes it.
import {classOfSelection, patchMany} from "../changes.js";
import {helpPanel} from "../panel.js";
import {S} from "../state.js";
import {handleAt, hit} from "../view.js";

export const select = {
  name: "select", key: "v", title: "Select (V)",
  handles: true,  // the corners of selected boxes are drawn, to resize by

  press(e, x, y) {
    if (e.button !== 0) return;
    const h = handleAt(x, y);
    if (h) { S.drag.kind = "resize"; S.drag.handle = h; return; }
    const a = hit(x, y);
    if (a) {
      if (!S.selected.has(a.id)) { if (!e.shiftKey) S.selected.clear(); S.selected.add(a.id); }
      S.drag.kind = "move";
    } else if (!e.shiftKey) S.selected.clear();
    S.dirty = true;
  },

  release(d, moved) {
    if (d.kind === "move" && moved) {
      const dx = d.x - d.x0, dy = d.y - d.y0;
      const items = [...S.selected].filter((id) => S.anns.get(id).kind !== "mask").map((id) => {
        const g = S.anns.get(id).geometry;
        let geometry;
        if (g.rbox) geometry = {rbox: [g.rbox[0] + dx, g.rbox[1] + dy, ...g.rbox.slice(2)]};
        else if (g.point) geometry = {point: [g.point[0] + dx, g.point[1] + dy], original: g.original};
        else geometry = {box: [g.box[0] + dx, g.box[1] + dy, g.box[2] + dx, g.box[3] + dy]};
        return {id, after: {geometry}};
      });
      return patchMany(items, "edit");
    }
    if (d.kind === "resize") {
      const b = [...S.anns.get(d.handle.id).geometry.box];
      const c = d.handle.corner;
      if (c === 0 || c === 3) b[0] = d.x; else b[2] = d.x;
      if (c === 0 || c === 1) b[1] = d.y; else b[3] = d.y;
      return patchMany([{id: d.handle.id, after: {geometry: {box: b}}}], "edit");
    }
  },

  pickClass(id) { if (S.selected.size) classOfSelection(id); },

  panel(el) {
    helpPanel(el, "select", `Click to select (Shift: add), drag to move, drag a corner to resize, 1-9 changes class, Delete removes.${S.project.oriented ? " [ and ] turn oriented boxes." : ""}`);
  },

  draw(ctx, lw) {
    const d = S.drag;
    if (d && (d.kind === "move" || d.kind === "resize")) {
      ctx.strokeStyle = "#fff"; ctx.setLineDash([3 * lw, 3 * lw]);
      ctx.beginPath(); ctx.moveTo(d.x0, d.y0); ctx.lineTo(d.x, d.y); ctx.stroke(); ctx.setLineDash([]);
    }
  },
};
