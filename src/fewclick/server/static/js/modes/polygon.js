// Polygon (O): outline an object by hand, one click a vertex, for what box-to-mask and its
// corrective clicks do not get right. A click on the first vertex or Enter closes it and
// saves it as a mask of the picked class (the server fills the outline); Backspace or
// Ctrl+Z takes the last vertex back, Esc drops the outline.
import {say} from "../api.js";
import {change} from "../changes.js";
import {logEvent} from "../events.js";
import {helpPanel, renderPanel} from "../panel.js";
import {S} from "../state.js";
import {insideImage} from "../view.js";

const CLOSE_PX = 8;  // a click this near the first vertex (screen pixels) closes the outline

export const polygon = {
  name: "polygon", key: "o", title: "Polygon (O)",
  init() { S.outline = null; },
  leave() { S.outline = null; },
  escape() { S.outline = null; },
  unsaved() {
    const n = S.outline?.points.length ?? 0;
    return n ? `an outline of ${n} vertices not closed` : "";
  },

  async release(d, moved) {
    if (moved || d.button !== 0) return;
    const pts = S.outline?.points ?? [];
    if (pts.length >= 3 && Math.hypot(d.x0 - pts[0][0], d.y0 - pts[0][1]) * S.view.scale <= CLOSE_PX) {
      return close();
    }
    if (!insideImage(d.x0, d.y0)) return say("that click is outside the image", true);
    S.outline = {points: [...pts, [d.x0, d.y0]], removed: []};
    logEvent("vertex", {mode: "polygon"});
    renderPanel();
  },

  hover(x, y) {
    if (!S.outline) return false;
    S.outline.at = [x, y];
    return true;
  },

  keydown(e) {
    if (e.key !== "Backspace" || !S.outline) return false;
    polygon.undo(false);
    return true;
  },

  undo(again) {
    const o = S.outline;
    if (!o) return false;
    if (again) {
      if (!o.removed.length) return false;
      o.points.push(o.removed.pop());
    } else {
      if (!o.points.length) return false;
      o.removed.push(o.points.pop());
    }
    logEvent(again ? "redo" : "undo", {mode: "polygon"});
    S.dirty = true;
    renderPanel();
    return true;
  },

  accept: close,

  panel(el) {
    const n = S.outline?.points.length ?? 0;
    helpPanel(el, "polygon", n
      ? `${n} vertices. Click the first vertex or press Enter to close; Backspace takes the last one back, Esc drops it.`
      : "Click the object's outline, one vertex at a time; the outline is saved as a mask of the picked class.");
  },

  draw(ctx, lw) {
    const o = S.outline;
    if (!o || !o.points.length) return;
    const color = S.classes.get(S.cls)?.color ?? "#fff";
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
  },
};

async function close() {
  const pts = S.outline?.points ?? [];
  if (pts.length < 3) return say("a polygon needs at least 3 vertices", true);
  S.outline = null;
  await change([{class_id: S.cls, kind: "mask", geometry: {polygon: pts}, source: "polygon"}], [], "accept");
}
