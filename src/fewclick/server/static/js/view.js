// The annotation canvas: the view (zoom and pan), the image (whole, or tiles of a large
// one), the saved annotations, and the drawing helpers the modes use. Coordinates are image
// pixels (x, y) unless a name says screen.
import {$} from "./api.js";
import {rleCanvas} from "./rle.js";
import {S} from "./state.js";

export function resize() {
  const st = $("#stage");
  if (!st || !S) return;
  S.canvas.width = st.clientWidth;
  S.canvas.height = st.clientHeight;
}

export function fit() {
  const {width, height} = S.image;
  const s = Math.min(S.canvas.width / width, S.canvas.height / height) * 0.95;
  S.view = {scale: s, ox: (S.canvas.width - width * s) / 2, oy: (S.canvas.height - height * s) / 2};
  S.dirty = true;
}

// the image pixel under a mouse event
export const toImage = (e) => {
  const r = S.canvas.getBoundingClientRect();
  return [(e.clientX - r.left - S.view.ox) / S.view.scale, (e.clientY - r.top - S.view.oy) / S.view.scale];
};

export const insideImage = (x, y) => x >= 0 && y >= 0 && x < S.image.width && y < S.image.height;

export function zoom(e) {
  e.preventDefault();
  const r = S.canvas.getBoundingClientRect();
  const mx = e.clientX - r.left, my = e.clientY - r.top;
  const k = Math.exp(-e.deltaY * 0.0015);
  const scale = Math.min(40, Math.max(0.005, S.view.scale * k));
  S.view.ox = mx - (mx - S.view.ox) * scale / S.view.scale;
  S.view.oy = my - (my - S.view.oy) * scale / S.view.scale;
  S.view.scale = scale;
  S.dirty = true;
}

// the pixels of the state's image; the state may be gone when they arrive (another page since)
export async function loadPixels(state) {
  if (state.image.tiles) return;  // drawn from tiles as they arrive
  const img = new Image();
  img.src = `/api/images/${state.image.id}/file`;
  await img.decode();
  state.bitmap = img;
}

// the smallest annotation whose box holds (x, y), or a point annotation within 8 screen px
export function hit(x, y) {
  let best = null, area = Infinity;
  for (const a of S.anns.values()) {
    const b = a.geometry.box;
    if (b && x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]) {
      const ar = (b[2] - b[0]) * (b[3] - b[1]);
      if (ar < area) { best = a; area = ar; }
    } else if (a.geometry.point) {
      const [px, py] = a.geometry.point;
      if (Math.hypot(px - x, py - y) * S.view.scale < 8) return a;
    }
  }
  return best;
}

// the corner of a selected box within 7 screen px of (x, y): {id, corner 0-3}, or null
export function handleAt(x, y) {
  for (const id of S.selected) {
    const b = S.anns.get(id)?.geometry.box;
    if (!b || S.anns.get(id).kind !== "box") continue;
    const corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
    for (let i = 0; i < 4; i++) {
      if (Math.hypot(corners[i][0] - x, corners[i][1] - y) * S.view.scale < 7) return {id, corner: i};
    }
  }
  return null;
}

// the image and the saved annotations under the view's transform (left set on the context
// for the mode to draw on); `mode.visible(a)` filters them, `mode.handles` draws the
// corners of selected boxes. Returns the line width of 1.5 screen pixels.
export function drawScene(mode) {
  const {ctx, canvas, view: v} = S;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#2b2f38";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(v.scale, 0, 0, v.scale, v.ox, v.oy);
  ctx.imageSmoothingEnabled = v.scale < 2;
  ctx.filter = lookFilter(S.look);  // the image only: annotations keep their colours
  if (S.bitmap) ctx.drawImage(S.bitmap, 0, 0, S.image.width, S.image.height);
  else if (S.image.tiles) drawTiles();
  ctx.filter = "none";
  const lw = 1.5 / v.scale;
  const x0 = -v.ox / v.scale, y0 = -v.oy / v.scale;
  const x1 = x0 + canvas.width / v.scale, y1 = y0 + canvas.height / v.scale;
  for (const a of S.anns.values()) {
    const g = a.geometry, b = g.box;
    if (b && (b[2] < x0 || b[0] > x1 || b[3] < y0 || b[1] > y1)) continue;
    if (mode.visible && !mode.visible(a)) continue;
    const color = S.classes.get(a.class_id)?.color ?? "#ffffff";
    const sel = S.selected.has(a.id);
    ctx.strokeStyle = color;
    ctx.lineWidth = sel ? 3 * lw : lw;
    ctx.setLineDash(a.review === "rejected" ? [4 * lw, 4 * lw] : []);
    ctx.globalAlpha = a.review === "rejected" ? 0.5 : 1;
    if (a.kind === "mask") {
      let m = S.masks.get(a.id);
      if (!m) { m = rleCanvas(g.mask, b, color, 0.4); S.masks.set(a.id, m); }
      ctx.drawImage(m.canvas, m.x, m.y);
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    } else if (a.kind === "rbox") {
      poly(drawnCorners(a));
    } else if (a.kind === "point") {
      const [px, py] = g.point, [ox, oy] = g.original;
      ctx.beginPath(); ctx.moveTo(ox, oy); ctx.lineTo(px, py); ctx.stroke();
      ctx.beginPath(); ctx.arc(ox, oy, 3 * lw, 0, 7); ctx.stroke();
      ctx.fillStyle = color; ctx.beginPath(); ctx.arc(px, py, 4 * lw, 0, 7); ctx.fill();
    } else {
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      if (sel && mode.handles) for (const [cx, cy] of [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]) {
        ctx.fillStyle = "#fff"; ctx.fillRect(cx - 3 * lw, cy - 3 * lw, 6 * lw, 6 * lw);
      }
    }
    if (a.review === "accepted") { ctx.fillStyle = color; ctx.fillRect(b ? b[0] : g.point[0], b ? b[1] - 4 * lw : g.point[1], 6 * lw, 4 * lw); }
  }
  ctx.globalAlpha = 1;
  ctx.setLineDash([]);
  return lw;
}

export function poly(pts) {
  const ctx = S.ctx;
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
  ctx.closePath();
  ctx.stroke();
}

// an oriented box's corners as fewclick/types.py's rboxes_to_polygons gives them: the angle
// turns counter-clockwise on screen (y down), corners from (-w/2, -h/2) in the box frame
export function rboxCorners([cx, cy, w, h, a]) {
  const c = Math.cos(a), s = Math.sin(a);
  return [[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]].map(([x, y]) => [cx + x * c + y * s, cy - x * s + y * c]);
}

// the corners the canvas draws for a box or oriented box annotation, in image pixels
export function drawnCorners(a) {
  const g = a.geometry, b = g.box;
  return a.kind === "rbox" ? rboxCorners(g.rbox) : [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
}

export function cross(x, y, color, lw) {
  const ctx = S.ctx, r = 6 * lw;
  ctx.strokeStyle = color; ctx.lineWidth = 2 * lw;
  ctx.beginPath(); ctx.moveTo(x - r, y); ctx.lineTo(x + r, y); ctx.moveTo(x, y - r); ctx.lineTo(x, y + r); ctx.stroke();
}

// the rectangle being dragged from (x0, y0), in the picked class's colour
export function dragRect(d, lw) {
  const ctx = S.ctx;
  ctx.strokeStyle = S.classes.get(S.cls)?.color ?? "#fff"; ctx.lineWidth = lw;
  ctx.strokeRect(d.x0, d.y0, d.x - d.x0, d.y - d.y0);
}

function drawTiles() {
  const t = S.image.tiles, v = S.view, ctx = S.ctx;
  const level = Math.max(0, Math.min(t.levels - 1, Math.floor(Math.log2(1 / v.scale))));
  const top = t.levels - 1;
  drawLevel(top, ctx);  // the whole image at the coarsest level, under the rest
  if (level !== top) drawLevel(level, ctx);
}

function drawLevel(level, ctx) {
  const t = S.image.tiles, v = S.view, f = 2 ** level, size = t.tile * f;
  const x0 = Math.max(0, Math.floor(-v.ox / v.scale / size)), y0 = Math.max(0, Math.floor(-v.oy / v.scale / size));
  const x1 = Math.min(Math.ceil(t.sizes[level][0] / t.tile) - 1, Math.floor((S.canvas.width - v.ox) / v.scale / size));
  const y1 = Math.min(Math.ceil(t.sizes[level][1] / t.tile) - 1, Math.floor((S.canvas.height - v.oy) / v.scale / size));
  for (let row = y0; row <= y1; row++) {
    for (let col = x0; col <= x1; col++) {
      const key = `${level}/${col}/${row}`;
      let tile = S.tiles.get(key);
      if (!tile) {
        tile = new Image();
        tile.onload = () => { tile.ready = true; if (S) S.dirty = true; };
        tile.src = `/api/images/${S.image.id}/tiles/${key}`;
        S.tiles.set(key, tile);
      }
      if (tile.ready) ctx.drawImage(tile, col * size, row * size, tile.width * f, tile.height * f);
    }
  }
}

// ------------------------------------------------------------------ brightness and contrast
// How the image is shown (dim microscopy needs it brighter): brightness and contrast as
// factors (1: as the file has it), kept per project in this browser's localStorage. Only
// the drawing changes, never the pixels the models see.
const LOOK = {brightness: [0.2, 4], contrast: [0.2, 4]};  // each factor's range
const lookKey = (projectId) => `fewclick.look.${projectId}`;

export function savedLook(projectId) {
  let look = {};
  try { look = JSON.parse(localStorage.getItem(lookKey(projectId)) ?? "{}") ?? {}; } catch { look = {}; }
  const factor = (name) => {
    const v = Number(look[name]), [lo, hi] = LOOK[name];
    return Number.isFinite(v) && v >= lo && v <= hi ? v : 1;
  };
  return {brightness: factor("brightness"), contrast: factor("contrast")};
}

// the canvas filter that shows an image with `look`
export const lookFilter = (look) => (look && (look.brightness !== 1 || look.contrast !== 1)
  ? `brightness(${look.brightness}) contrast(${look.contrast})` : "none");

// the brightness and contrast sliders (and a reset) in `el`; onChange(look) at once with the
// project's saved look and after every change
export function lookControls(el, projectId, onChange) {
  let look = savedLook(projectId);
  const slider = (name) => `<label class="muted look">${name}
    <input id="look-${name}" type="range" min="${LOOK[name][0]}" max="${LOOK[name][1]}" step="0.05" value="${look[name]}">
    <span id="look-${name}-value">${look[name].toFixed(2)}</span></label>`;
  el.innerHTML = `${slider("brightness")}${slider("contrast")}<button id="look-reset">Reset view</button>`;
  const set = (next) => {
    look = next;
    localStorage.setItem(lookKey(projectId), JSON.stringify(look));
    for (const name of Object.keys(LOOK)) {
      el.querySelector(`#look-${name}`).value = look[name];
      el.querySelector(`#look-${name}-value`).textContent = look[name].toFixed(2);
    }
    onChange(look);
  };
  for (const name of Object.keys(LOOK)) {
    el.querySelector(`#look-${name}`).addEventListener("input", (e) => set({...look, [name]: +e.target.value}));
  }
  el.querySelector("#look-reset").addEventListener("click", () => set({brightness: 1, contrast: 1}));
  onChange(look);
}
