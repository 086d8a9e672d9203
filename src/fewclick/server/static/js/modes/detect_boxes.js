// Detect mode's box arithmetic: which proposals a saved box already holds, and E's move of
// a class's proposals by the edges of the boxes drawn over them (modes/detect.js).
import {iou} from "../geometry.js";

export const SAME_IOU = 0.5;  // a box this close to another of its class is that one

const HELD_SHARE = 0.8;  // or this much of the smaller box inside the larger (a saved box E moved)

// whether boxes `a` and `b` are one object's
function same(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return false;
  const smaller = Math.min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]));
  return iou(a, b) >= SAME_IOU || (w * h) / Math.max(smaller, 1e-9) >= HELD_SHARE;
}

// the indices of the answer `r`'s boxes that a saved box of their class (among `anns`)
// already holds: the objects drawn or accepted before the click are not proposed again.
// Saved boxes are looked up by the 64 px cells they touch, so that 5,000 of each stay quick.
export function alreadyBoxed(anns, r) {
  const held = new Set();
  if (r.rboxes) return held;
  const cells = new Map(), cell = (x, y) => `${Math.floor(x / 64)},${Math.floor(y / 64)}`;
  const each = (b, f) => { for (let x = b[0]; x < b[2] + 64; x += 64) for (let y = b[1]; y < b[3] + 64; y += 64) f(cell(Math.min(x, b[2]), Math.min(y, b[3]))); };
  for (const a of anns) {
    const b = a.geometry?.box;
    if (a.kind === "box" && b) each(b, (k) => { if (!cells.has(k)) cells.set(k, []); cells.get(k).push(a); });
  }
  if (!cells.size) return held;
  r.boxes.forEach((b, i) => each(b, (k) => {
    if (!held.has(i) && (cells.get(k) ?? []).some((a) => a.class_id === r.labels[i] && same(a.geometry.box, b))) held.add(i);
  }));
  return held;
}

// the mean move of each edge [x0, y0, x1, y1] in image pixels, from `pairs` {from, to}
export function edgeMove(pairs) {
  return [0, 1, 2, 3].map((k) => pairs.reduce((sum, p) => sum + p.to[k] - p.from[k], 0) / pairs.length);
}

// the answer's boxes of class `label` moved by `delta` from SAM's own (r.unfitted keeps
// those): each edge moved, no box under a pixel a side
export function moveEdges(r, label, delta) {
  r.unfitted ??= r.boxes.map((b) => [...b]);
  r.boxes = r.boxes.map((b, i) => {
    if (r.labels[i] !== label) return b;
    const [x0, y0, x1, y1] = r.unfitted[i].map((v, k) => v + delta[k]);
    return [Math.min(x0, x1 - 1), Math.min(y0, y1 - 1), Math.max(x1, x0 + 1), Math.max(y1, y0 + 1)];
  });
}

const area = (b) => (b[2] - b[0]) * (b[3] - b[1]);

// whether box `b` holds the point (x, y)
export const holds = (b, x, y) => b[0] <= x && x <= b[2] && b[1] <= y && y <= b[3];

// the proposal (an index of `indices` into the answer `r`) whose box holds the image point
// (x, y), of class `label` (null: any), the smallest such; or null
export function proposalAt(r, indices, x, y, label = null) {
  let best = null;
  for (const i of indices) {
    const b = r.boxes[i];
    if ((label == null || r.labels[i] === label) && holds(b, x, y)
      && (best == null || area(b) < area(r.boxes[best]))) best = i;
  }
  return best;
}

// the proposals a box drawn at `rect` of class `label` takes the place of: those at IoU >=
// `near` with it, and those of its class that hold it or that it holds (a tight box drawn
// inside an oversized proposal, or over two that are one object); best first
export function drawnOver(r, indices, rect, label, near) {
  const over = indices.map((i) => [i, iou(rect, r.boxes[i])])
    .filter(([i, v]) => v >= near || (r.labels[i] === label && same(rect, r.boxes[i])));
  return over.sort((a, b) => b[1] - a[1]).map(([i]) => i);
}

// the indices of the answer `r`'s boxes that match a proposal the person rejected (`rejected`:
// [{label, box}]): one object's box of that class, at IoU >= SAME_IOU
export function rejectedIn(rejected, r) {
  const out = new Set();
  if (!rejected.length) return out;
  r.boxes.forEach((b, i) => {
    if (rejected.some((p) => p.label === r.labels[i] && iou(p.box, b) >= SAME_IOU)) out.add(i);
  });
  return out;
}
