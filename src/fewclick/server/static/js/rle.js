// COCO run-length encoding: the compressed string form, decoded to a column-major mask
// (an ES module; tests/server/test_rle_js.py runs it in node).
// The work is bounded: an RLE whose size is over MAX_RLE_PIXELS, whose runs do not add up
// to height * width, or whose box is over MAX_MASK_CANVAS pixels is refused, never drawn.
export const MAX_RLE_PIXELS = 4294967295;  // what a COCO RLE can number (32 bits): a large image read by regions has no pixel limit
export const MAX_MASK_CANVAS = 1 << 26;  // the largest mask box drawn: 8192 x 8192 (256 MB of RGBA)

// The run lengths of a compressed counts string (5 bits a character offset by 48, 0x20:
// more follow, 0x10 of the last: the sign; from the third run on, the difference from the
// run two before). Throws on a character outside that code or a number cut off.
export function rleCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      if (p >= s.length) throw new Error("RLE counts end in the middle of a number");
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`RLE counts hold ${JSON.stringify(s[p])}, outside '0' to 'o'`);
      // arithmetic, not 32-bit bit operations: a slide's runs reach 2^31 (pycocotools counts in 32 bits)
      if (k > 6) throw new Error("RLE counts hold a number over 35 bits");
      x += (c & 0x1f) * 2 ** (5 * k);
      more = c & 0x20;
      p++; k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// The runs of `rle` checked against its size: [h, w, runs]; throws naming what is wrong.
export function rleRuns(rle) {
  const [h, w] = rle?.size ?? [];
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new Error(`RLE size ${JSON.stringify(rle?.size)} is not [height, width]`);
  if (h * w > MAX_RLE_PIXELS) throw new Error(`RLE size ${h} x ${w} is over ${MAX_RLE_PIXELS} pixels`);
  const runs = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
  if (!Array.isArray(runs)) throw new Error("RLE counts are neither a string nor a list");
  let total = 0;
  for (const n of runs) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`RLE run ${n} is not a whole number >= 0`);
    total += n;
  }
  if (total !== h * w) throw new Error(`RLE runs add up to ${total} pixels, not ${h} x ${w}`);
  return [h, w, runs];
}

// The pixels `rle` covers (its odd runs); throws as rleRuns does.
export const rleArea = (rle) => rleRuns(rle)[2].reduce((a, n, i) => a + (i % 2 ? n : 0), 0);

// The pixels of `rle` inside `box` (clipped to the image): {bits (a Uint8Array, row by row,
// 1 where the mask is on), x, y (the top left, in image pixels), width, height}. Throws as
// rleRuns does, and when the box is over MAX_MASK_CANVAS pixels.
export function rleBits(rle, box) {
  const [h, w, counts] = rleRuns(rle);
  const x0 = Math.max(0, Math.floor(box[0])), y0 = Math.max(0, Math.floor(box[1]));
  const x1 = Math.min(w, Math.ceil(box[2])), y1 = Math.min(h, Math.ceil(box[3]));
  const cw = Math.max(1, x1 - x0), ch = Math.max(1, y1 - y0);
  if (cw * ch > MAX_MASK_CANVAS) throw new Error(`mask box of ${cw} x ${ch} pixels is too large to draw`);
  const bits = new Uint8Array(cw * ch);
  const first = x0 * h, last = x1 * h;  // the pixels of the box's columns: nothing outside is visited
  let i = 0, on = false;
  for (const n of counts) {
    if (on && i + n > first && i < last) {
      for (let j = Math.max(i, first), end = Math.min(i + n, last); j < end; j++) {
        const col = Math.floor(j / h), row = j - col * h;
        if (row >= y0 && row < y1) bits[(row - y0) * cw + (col - x0)] = 1;
      }
    }
    i += n; on = !on;
  }
  return {bits, x: x0, y: y0, width: cw, height: ch};
}

// An offscreen canvas of a mask's bits (rleBits), its pixels `color` (#rrggbb) at `alpha`,
// those on its edge (a pixel beside them, or the box's side, off) at `edgeAlpha`.
export function bitsCanvas({bits, x, y, width, height}, color, alpha, edgeAlpha = alpha) {
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(width, height);
  const r = parseInt(color.slice(1, 3), 16), g = parseInt(color.slice(3, 5), 16), b = parseInt(color.slice(5, 7), 16);
  const a = Math.round(alpha * 255), edge = Math.round(edgeAlpha * 255);
  const on = (col, row) => col >= 0 && row >= 0 && col < width && row < height && bits[row * width + col];
  for (let row = 0, p = 0; row < height; row++) {
    for (let col = 0; col < width; col++, p++) {
      if (!bits[p]) continue;
      const inner = a === edge || (on(col - 1, row) && on(col + 1, row) && on(col, row - 1) && on(col, row + 1));
      const q = p * 4;
      img.data[q] = r; img.data[q + 1] = g; img.data[q + 2] = b; img.data[q + 3] = inner ? a : edge;
    }
  }
  ctx.putImageData(img, 0, 0);
  return {canvas, x, y};
}

// An offscreen canvas of the mask's bounding box, filled with `color` (#rrggbb) at `alpha`;
// a refused RLE gives an empty canvas and `error` saying why (the box is still drawn).
export function rleCanvas(rle, box, color, alpha) {
  try {
    return bitsCanvas(rleBits(rle, box), color, alpha);
  } catch (err) {
    console.warn(`mask not drawn: ${err.message}`);
    return emptyMask(box, err.message);
  }
}

function emptyMask(box, error) {
  const canvas = document.createElement("canvas");
  canvas.width = 1; canvas.height = 1;
  return {canvas, x: box?.[0] ?? 0, y: box?.[1] ?? 0, error};
}
