// Geometry both canvases use, in image pixels (x, y): box corners, oriented box corners as
// fewclick/types.py makes them, the box around points, and box IoU.

// an XYXY box's corners, clockwise from the top left
export const boxCorners = (b) => [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];

// an oriented box's corners as fewclick/types.py's rboxes_to_polygons gives them: the angle
// turns counter-clockwise on screen (y down), corners from (-w/2, -h/2) in the box frame
export function rboxCorners([cx, cy, w, h, a]) {
  const c = Math.cos(a), s = Math.sin(a);
  return [[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]].map(([x, y]) => [cx + x * c + y * s, cy - x * s + y * c]);
}

// the corners the canvas draws for a box or oriented box annotation
export function drawnCorners(a) {
  return a.kind === "rbox" ? rboxCorners(a.geometry.rbox) : boxCorners(a.geometry.box);
}

// the XYXY box around points (four extreme points, or a drag's two ends)
export function pointsBox(points) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

export function iou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}
