// COCO run-length encoding: the compressed string form, decoded to a column-major mask.
"use strict";
function rleCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// An offscreen canvas of the mask's bounding box, filled with `color` (#rrggbb) at `alpha`.
function rleCanvas(rle, box, color, alpha) {
  const [h, w] = rle.size;
  const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
  const x0 = Math.max(0, Math.floor(box[0])), y0 = Math.max(0, Math.floor(box[1]));
  const x1 = Math.min(w, Math.ceil(box[2])), y1 = Math.min(h, Math.ceil(box[3]));
  const cw = Math.max(1, x1 - x0), ch = Math.max(1, y1 - y0);
  const canvas = document.createElement("canvas");
  canvas.width = cw; canvas.height = ch;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(cw, ch);
  const r = parseInt(color.slice(1, 3), 16), g = parseInt(color.slice(3, 5), 16), b = parseInt(color.slice(5, 7), 16);
  const a = Math.round(alpha * 255);
  let i = 0, on = false;
  for (const n of counts) {
    if (on) {
      for (let j = i; j < i + n; j++) {
        const col = Math.floor(j / h), row = j - col * h;
        if (col < x0 || col >= x1 || row < y0 || row >= y1) continue;
        const q = ((row - y0) * cw + (col - x0)) * 4;
        img.data[q] = r; img.data[q + 1] = g; img.data[q + 2] = b; img.data[q + 3] = a;
      }
    }
    i += n; on = !on;
  }
  ctx.putImageData(img, 0, 0);
  return {canvas, x: x0, y: y0};
}
