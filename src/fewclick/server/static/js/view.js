// One view of an image on a canvas, for every page that shows one (the annotation page and
// the review queue): the transform (zoom and pan), the image (whole, or tiles of a large
// one) under the look chosen (brightness, contrast), and the drawing of boxes, oriented
// boxes, masks and points. Coordinates are image pixels (x, y) unless a name says screen.
// Its store holds the transform and the look; whoever draws the canvas subscribes to it.
import {boxCorners, rboxCorners} from "./geometry.js";
import {lookFilter} from "./look.js";
import {rleCanvas} from "./rle.js";
import {createStore} from "./store.js";

const MOVED_PX = 4;  // a press that goes further (screen pixels) is a drag, not a click

// `draw()` draws the canvas: on the next frame after any change to the view's store, or
// after redraw() (which other stores subscribe); `background`: the colour around the image;
// `smoothBelow`: the zoom under which the image is drawn smoothed (above it, pixels show)
export class View {
  constructor(canvas, {draw, background = "#2b2f38", smoothBelow = 2}) {
    Object.assign(this, {canvas, draw, background, smoothBelow, ctx: canvas.getContext("2d"), queued: false});
    this.store = createStore({scale: 1, ox: 0, oy: 0, look: null});
    this.picture = {image: null, bitmap: null, tiles: new Map()};
    this.masks = new WeakMap();  // a mask annotation -> its drawn canvas
    this.redraw = this.redraw.bind(this);
    this.zoom = this.zoom.bind(this);
    this.store.subscribe(this.redraw);
  }

  redraw() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => { this.queued = false; this.draw(); });
  }

  get scale() { return this.store.get().scale; }

  // image: {id, width, height, tiles?}; bitmap: its pixels, or null to draw its tiles
  show(image, bitmap = null) {
    if (this.picture.image?.id !== image.id) this.picture.tiles = new Map();
    Object.assign(this.picture, {image, bitmap});
    this.store.set();
  }

  resize(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.store.set();
  }

  fit() {
    const {width, height} = this.picture.image, {canvas} = this;
    const s = Math.min(canvas.width / width, canvas.height / height) * 0.95;
    this.store.set({scale: s, ox: (canvas.width - width * s) / 2, oy: (canvas.height - height * s) / 2});
  }

  // the square of `side` image pixels from (x, y) fills the canvas
  lookAt(x, y, side) {
    const scale = this.canvas.width / side;
    this.store.set({scale, ox: -x * scale, oy: -y * scale});
  }

  // the wheel zooms about the mouse
  zoom(e) {
    e.preventDefault();
    const r = this.canvas.getBoundingClientRect(), {scale: s0, ox, oy} = this.store.get();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    const scale = Math.min(40, Math.max(0.005, s0 * Math.exp(-e.deltaY * 0.0015)));
    this.store.set({scale, ox: mx - (mx - ox) * scale / s0, oy: my - (my - oy) * scale / s0});
  }

  // a pan from a mouse press: the returned function moves the image with the mouse
  panFrom(e) {
    const {ox, oy} = this.store.get();
    return (m) => this.store.set({ox: ox + m.clientX - e.clientX, oy: oy + m.clientY - e.clientY});
  }

  toImage(e) {
    const r = this.canvas.getBoundingClientRect(), {scale, ox, oy} = this.store.get();
    return [(e.clientX - r.left - ox) / scale, (e.clientY - r.top - oy) / scale];
  }

  inside(x, y) {
    const {width, height} = this.picture.image;
    return x >= 0 && y >= 0 && x < width && y < height;
  }

  // a drag from a mouse press, in image pixels from (x0, y0) to (x, y)
  press(e) {
    const [x, y] = this.toImage(e);
    return {x0: x, y0: y, x, y, button: e.button, shift: e.shiftKey, t0: performance.now()};
  }

  moved(d) { return Math.hypot(d.x - d.x0, d.y - d.y0) * this.scale > MOVED_PX; }

  tilesReady() { return [...this.picture.tiles.values()].filter((tile) => tile.ready).length; }

  clear() {
    this.ctx.setTransform(1, 0, 0, 1, 0, 0);
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  // the part of the image on the canvas: [x0, y0, x1, y1]
  visibleBounds() {
    const {scale, ox, oy} = this.store.get(), {width, height} = this.canvas;
    return [-ox / scale, -oy / scale, (width - ox) / scale, (height - oy) / scale];
  }

  // the background and the image under the transform (left set for drawing over it);
  // returns one screen pixel in image pixels
  begin() {
    const {ctx, canvas, picture} = this, {scale, ox, oy, look} = this.store.get(), im = picture.image;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = this.background;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(scale, 0, 0, scale, ox, oy);
    ctx.imageSmoothingEnabled = scale < this.smoothBelow;
    ctx.filter = lookFilter(look);  // the image only: annotations keep their colours
    if (picture.bitmap) ctx.drawImage(picture.bitmap, 0, 0, im.width, im.height);
    else if (im?.tiles) this.drawTiles();
    ctx.filter = "none";
    return 1 / scale;
  }

  // one annotation; style: {color, width, unit (the line width the point and marks scale
  // with), dash, alpha, handles: {size, color} for the corners of a box, mark: a flag over it}
  annotation(a, style) {
    const {ctx} = this, g = a.geometry, b = g.box, u = style.unit;
    ctx.strokeStyle = style.color;
    ctx.lineWidth = style.width;
    ctx.setLineDash(style.dash ?? []);
    ctx.globalAlpha = style.alpha ?? 1;
    if (a.kind === "mask") {
      const m = this.maskCanvas(a, style.color);
      ctx.drawImage(m.canvas, m.x, m.y);
      strokeBox(ctx, b);
    } else if (a.kind === "point") {
      pointMark(ctx, g, style.color, u);
    } else if (a.kind === "rbox") {
      poly(ctx, rboxCorners(g.rbox));
    } else {
      strokeBox(ctx, b);
      if (style.handles) handles(ctx, b, style.handles);
    }
    if (style.mark) { ctx.fillStyle = style.color; ctx.fillRect(b ? b[0] : g.point[0], b ? b[1] - 4 * u : g.point[1], 6 * u, 4 * u); }
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
  }

  maskCanvas(a, color) {
    let m = this.masks.get(a);
    if (!m) { m = rleCanvas(a.geometry.mask, a.geometry.box, color, 0.4); this.masks.set(a, m); }
    return m;
  }

  drawTiles() {
    const tiles = this.picture.image.tiles;
    const level = Math.max(0, Math.min(tiles.levels - 1, Math.floor(Math.log2(1 / this.scale))));
    this.drawLevel(tiles.levels - 1);  // the whole image at the coarsest level, under the rest
    if (level !== tiles.levels - 1) this.drawLevel(level);
  }

  drawLevel(level) {
    const tiles = this.picture.image.tiles, f = 2 ** level, size = tiles.tile * f;
    const [bx0, by0, bx1, by1] = this.visibleBounds();
    const x0 = Math.max(0, Math.floor(bx0 / size)), y0 = Math.max(0, Math.floor(by0 / size));
    const x1 = Math.min(Math.ceil(tiles.sizes[level][0] / tiles.tile) - 1, Math.floor(bx1 / size));
    const y1 = Math.min(Math.ceil(tiles.sizes[level][1] / tiles.tile) - 1, Math.floor(by1 / size));
    for (let row = y0; row <= y1; row++) {
      for (let col = x0; col <= x1; col++) {
        const tile = this.tileAt(`${level}/${col}/${row}`);
        if (tile.ready) this.ctx.drawImage(tile, col * size, row * size, tile.width * f, tile.height * f);
      }
    }
  }

  tileAt(key) {
    let tile = this.picture.tiles.get(key);
    if (!tile) {
      tile = new Image();
      tile.onload = () => { tile.ready = true; this.store.set(); };
      tile.src = `/api/images/${this.picture.image.id}/tiles/${key}`;
      this.picture.tiles.set(key, tile);
    }
    return tile;
  }
}

// the pixels of an image, decoded (an image shown from tiles has none)
export async function loadPixels(image) {
  if (image.tiles) return null;
  const img = new Image();
  img.src = `/api/images/${image.id}/file`;
  await img.decode();
  return img;
}

export function poly(ctx, pts) {
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
  ctx.closePath();
  ctx.stroke();
}

export function strokeBox(ctx, b) { ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]); }

// squares of `size` image pixels on a box's corners
function handles(ctx, b, {size, color}) {
  ctx.fillStyle = color;
  for (const [cx, cy] of boxCorners(b)) ctx.fillRect(cx - size / 2, cy - size / 2, size, size);
}

export function cross(ctx, x, y, color, lw) {
  const r = 6 * lw;
  ctx.strokeStyle = color; ctx.lineWidth = 2 * lw;
  ctx.beginPath(); ctx.moveTo(x - r, y); ctx.lineTo(x + r, y); ctx.moveTo(x, y - r); ctx.lineTo(x, y + r); ctx.stroke();
}

// a filled dot with an outline (an extreme point)
export function dot(ctx, x, y, r, fill, stroke, lw) {
  ctx.fillStyle = fill; ctx.strokeStyle = stroke; ctx.lineWidth = lw;
  ctx.beginPath(); ctx.arc(x, y, r, 0, 7); ctx.fill(); ctx.stroke();
}

// a point annotation: the click, a line, and the snapped point
function pointMark(ctx, g, color, lw) {
  const [px, py] = g.point, [ox, oy] = g.original;
  ctx.beginPath(); ctx.moveTo(ox, oy); ctx.lineTo(px, py); ctx.stroke();
  ctx.beginPath(); ctx.arc(ox, oy, 3 * lw, 0, 7); ctx.stroke();
  ctx.fillStyle = color; ctx.beginPath(); ctx.arc(px, py, 4 * lw, 0, 7); ctx.fill();
}
