// An outline filled into a mask, by fewclick.outline.fill_outline's rule and in its
// arithmetic, so that the page saves the very mask the Python simulator makes of the same
// outline (tests/server/test_outline_js.py runs this module in node against it).
// An outline: rings [{points: [[x, y], ...], hole}] in image pixels along pixel edges
// (pixel (x, y) covers [x, x + 1) x [y, y + 1)). A pixel is on when its centre lies inside
// an odd number of rings (even-odd: a hole cuts its part, a part in a hole is kept).
// No imports: node loads it from a data: URL.

// the window [x0, y0, x1, y1] of whole pixels of a width x height image that holds every
// pixel the rings may fill (empty, x1 <= x0, when they fill none)
export function ringsWindow(rings, width, height) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const r of rings) {
    for (const [x, y] of r.points) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
  }
  if (x0 === Infinity) return [0, 0, 0, 0];
  const clip = (v, hi) => Math.max(0, Math.min(hi, v));
  return [clip(Math.floor(x0), width), clip(Math.floor(y0), height), clip(Math.ceil(x1), width), clip(Math.ceil(y1), height)];
}

// the rings filled over the window (x0, y0, w, h) of a width x height image: Uint8Array of
// w * h, row by row, 1 where a pixel is on. Each edge turns over, along every row's centre
// line it spans ([its low y, its high y)), the pixels whose centre lies right of where it
// crosses; the running parity along the row is the mask.
export function fillRings(rings, x0, y0, w, h, width, height) {
  const parity = new Uint8Array((w + 1) * h);
  for (const r of rings) {
    const p = r.points, n = p.length;
    if (n < 3) continue;
    for (let k = 0; k < n; k++) crossEdge(parity, p[k], p[(k + 1) % n], x0, y0, w, h, width, height);
  }
  const out = new Uint8Array(w * h);
  for (let row = 0; row < h; row++) {
    let on = 0;
    for (let col = 0; col < w; col++) {
      on ^= parity[row * (w + 1) + col];
      out[row * w + col] = on;
    }
  }
  return out;
}

function crossEdge(parity, [xa, ya], [xb, yb], x0, y0, w, h, width, height) {
  if (ya === yb) return;
  const clip = (v, hi) => Math.max(0, Math.min(hi, v));
  const first = Math.max(clip(Math.ceil(Math.min(ya, yb) - 0.5), height), y0);
  const last = Math.min(clip(Math.ceil(Math.max(ya, yb) - 0.5), height), y0 + h);
  for (let row = first; row < last; row++) {
    const xs = xa + (row + 0.5 - ya) * (xb - xa) / (yb - ya);  // fill_outline's expression
    const col = clip(Math.floor(xs - 0.5) + 1, width);
    const k = (row - y0) * (w + 1) + clip(col - x0, w);
    parity[k] ^= 1;
  }
}

// the COCO counts (uncompressed: run lengths, column by column, off first) of a width x
// height image that is empty but for `win` (fillRings' answer) over the window (x0, y0, w, h)
export function maskCounts(win, x0, y0, w, h, width, height) {
  const counts = [];
  let on = 0, last = 0;
  const turn = (at) => { counts.push(at - last); last = at; on ^= 1; };
  for (let col = 0; col < w; col++) {
    const base = (x0 + col) * height + y0;
    for (let row = 0; row < h; row++) if (win[row * w + col] !== on) turn(base + row);
    // the pixel after the window's column is off unless the next column of the window
    // starts right there (a window as high as the image)
    if (on && (y0 > 0 || y0 + h < height || col === w - 1)) turn(base + h);
  }
  counts.push(width * height - last);
  return counts;
}
