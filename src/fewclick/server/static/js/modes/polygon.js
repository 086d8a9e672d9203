// Polygon (O): outline an object by hand, one click a vertex, for what box-to-mask and its
// corrective clicks do not get right. A click on the first vertex or Enter closes it and
// saves it as a mask of the picked class (the server fills the outline); Backspace or
// Ctrl+Z takes the last vertex back, Esc drops the outline. Its state: the outline.
import {say} from "../api.js";
import {helpPanel} from "../panel.js";
import {createStore} from "../store.js";

const CLOSE_PX = 8;  // a click this near the first vertex (screen pixels) closes the outline

export function polygon(page) {
  // outline: {points, removed (taken back, for redo), at (the mouse)}, or null
  const m = {page, st: createStore({outline: null}, page.redraw)};
  return {
    name: "polygon", key: "o", title: "Polygon (O)",
    state: () => m.st.get(),
    leave: () => drop(m),
    escape: () => drop(m),
    release: (d, moved) => release(m, d, moved),
    undo: (again) => undo(m, again),
    accept: () => close(m),
    draw: (ctx, lw) => draw(m, ctx, lw),
    panel: (el) => panel(m, el),
    unsaved() {
      const n = outline(m)?.points.length ?? 0;
      return n ? `an outline of ${n} vertices not closed` : "";
    },
    hover(x, y) {
      if (outline(m)) { outline(m).at = [x, y]; m.st.set(); }
    },
    keydown(e) {
      if (e.key !== "Backspace" || !outline(m)) return false;
      undo(m, false);
      return true;
    },
  };
}

const outline = (m) => m.st.get().outline;
const drop = (m) => m.st.set({outline: null});

async function close(m) {
  const pts = outline(m)?.points ?? [];
  if (pts.length < 3) return say("a polygon needs at least 3 vertices", true);
  drop(m);
  await m.page.changes.change([{class_id: m.page.doc.get().cls, kind: "mask", geometry: {polygon: pts}, source: "polygon"}], [], "accept");
}

// the last vertex taken back (again: the last taken back put back)
function undo(m, again) {
  const o = outline(m);
  if (!o) return false;
  const [from, to] = again ? [o.removed, o.points] : [o.points, o.removed];
  if (!from.length) return false;
  to.push(from.pop());
  m.page.log(again ? "redo" : "undo", {mode: "polygon"});
  m.st.set();
  m.page.panel();
  return true;
}

async function release(m, d, moved) {
  if (moved || d.button !== 0) return;
  const pts = outline(m)?.points ?? [];
  if (pts.length >= 3 && Math.hypot(d.x0 - pts[0][0], d.y0 - pts[0][1]) * m.page.view.scale <= CLOSE_PX) {
    return close(m);
  }
  if (!m.page.view.inside(d.x0, d.y0)) return say("that click is outside the image", true);
  m.st.set({outline: {points: [...pts, [d.x0, d.y0]], removed: []}});
  m.page.log("vertex", {mode: "polygon"});
  m.page.panel();
}

function draw(m, ctx, lw) {
  const o = outline(m);
  if (!o || !o.points.length) return;
  const color = m.page.color(m.page.doc.get().cls);
  ctx.strokeStyle = color; ctx.lineWidth = 1.5 * lw;
  ctx.beginPath();
  ctx.moveTo(o.points[0][0], o.points[0][1]);
  for (const p of o.points.slice(1)) ctx.lineTo(p[0], p[1]);
  if (o.at) ctx.lineTo(o.at[0], o.at[1]);
  ctx.stroke();
  o.points.forEach(([x, y], i) => {
    ctx.fillStyle = i === 0 ? "#ffffff" : color;
    ctx.beginPath(); ctx.arc(x, y, (i === 0 ? 4 : 3) * lw, 0, 7); ctx.fill();
  });
}

function panel(m, el) {
  const n = outline(m)?.points.length ?? 0;
  helpPanel(el, "polygon", n
    ? `${n} vertices. Click the first vertex or press Enter to close; Backspace takes the last one back, Esc drops it.`
    : "Click the object's outline, one vertex at a time; the outline is saved as a mask of the picked class.");
}
