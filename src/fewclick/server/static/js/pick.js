// Which saved annotation a point picks: pure functions of the annotations (a Map id ->
// annotation), a point in image pixels and the view's scale (screen px per image px).
import {boxCorners} from "./geometry.js";

// the smallest annotation whose box holds (x, y), or a point annotation within 8 screen px
export function hit(anns, x, y, scale) {
  let best = null, area = Infinity;
  for (const a of anns.values()) {
    const b = a.geometry.box;
    if (b && x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]) {
      const ar = (b[2] - b[0]) * (b[3] - b[1]);
      if (ar < area) { best = a; area = ar; }
    } else if (a.geometry.point) {
      const [px, py] = a.geometry.point;
      if (Math.hypot(px - x, py - y) * scale < 8) return a;
    }
  }
  return best;
}

// the corner of a selected box within 7 screen px of (x, y): {id, corner 0-3}, or null
export function handleAt(anns, selected, x, y, scale) {
  for (const id of selected) {
    const a = anns.get(id);
    if (!a?.geometry.box || a.kind !== "box") continue;
    const i = boxCorners(a.geometry.box).findIndex(([cx, cy]) => Math.hypot(cx - x, cy - y) * scale < 7);
    if (i >= 0) return {id, corner: i};
  }
  return null;
}
