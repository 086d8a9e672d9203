// Mask mode's outline (L): the mask shown, as rings of few vertices the person edits, then
// fills back into the mask (Enter). The server traces the outline
// (POST /api/images/{id}/outline: fewclick.outline.editable_outline, as the simulated
// annotator's), the page edits it (outline_edit.js) and fills it (outline_fill.js, by
// fill_outline's rule), so the mask saved is the one the simulator would make.
//   drag a vertex: moves it; a click on an edge: a vertex there (a drag from an edge: a
//   vertex there, dragged); a right click on a vertex, or Delete on the one picked or under
//   the pointer: deletes it; Shift+click on a vertex, clicks, a click on another vertex of
//   the same ring: that stretch of the ring redrawn through the clicks; Shift+right click
//   on a vertex: its ring (a part, a hole) removed; Shift+click off the outline, clicks, a
//   click on the first: a new part through them.
// Each edit is one undo step of mask mode (mask.js keeps the steps); an edit that would
// spoil the outline is refused, saying why, and the outline stays as it was.
// An outline: {rings, picked (a vertex {ring, index}), redraw ({ring, from, clicks}),
// canvas (its mask drawn, made again after each edit), stamp (when the edit's input came)}.
import {api, say} from "../api.js";
import {fillRings, maskCounts, ringsWindow} from "../outline_fill.js";
import {addRing, deleteVertex, edgeAt, insertVertex, moveVertex, redrawStretch, removeRing, vertexAt} from "./outline_edit.js";

const VERTEX_PX = 7, EDGE_PX = 5;  // how near (screen pixels) a press picks a vertex, an edge
// ms from each edit's input event to the end of the frame that draws its mask (the last
// 600): the test hook's outlineTimes, which benchmarks/app.py reads
export const EDIT_TIMES = [];

export const freshOutline = (rings) => ({rings, picked: null, redraw: null, canvas: null, stamp: null});

// the outline of `mask` (a COCO RLE of the open image), traced by the server
export async function outlineOf(page, mask) {
  const out = await api("POST", `/api/images/${page.doc.get().image.id}/outline`, {mask});
  return freshOutline(out.rings);
}

// the mask the outline fills, as a COCO RLE of the image (uncompressed counts), or null
// when it covers no pixel
export function outlineMask(o, width, height) {
  const [x0, y0, x1, y1] = ringsWindow(o.rings, width, height), w = x1 - x0, h = y1 - y0;
  if (w <= 0 || h <= 0) return null;
  const win = fillRings(o.rings, x0, y0, w, h, width, height);
  if (!win.some((v) => v)) return null;
  return {size: [height, width], counts: maskCounts(win, x0, y0, w, h, width, height)};
}

// `ed`: {page, o: the outline, commit(rings, stamp, action): the edit made, one undo step,
// changed(): redraw}; d: the page's drag (annotate_input.js), with tUp its release's time
export function press(ed, d) {
  if (ed.o.redraw) return;  // clicks of a redraw are taken at release
  const tol = 1 / ed.page.view.scale, at = vertexAt(ed.o.rings, d.x0, d.y0, VERTEX_PX * tol);
  if (at) Object.assign(d, {kind: d.button === 2 ? (d.shift ? "remove" : "delete") : "vertex", at});
  else if (d.button === 0) {
    const edge = edgeAt(ed.o.rings, d.x0, d.y0, EDGE_PX * tol);
    if (edge) Object.assign(d, {kind: "edge", at: edge});
  }
}

export function release(ed, d, moved) {
  const {o} = ed, t = d.tUp ?? performance.now();
  if (o.redraw) return redrawClick(ed, d, moved, t);
  const [W, H] = imageSize(ed.page);
  if (d.kind === "delete" && !moved) return apply(ed, deleteVertex(o.rings, d.at.ring, d.at.index, W, H), t, "outline_delete");
  if (d.kind === "remove" && !moved) return apply(ed, removeRing(o.rings, d.at.ring), t, "outline_delete");
  if (d.kind === "vertex" && moved) return apply(ed, moveVertex(o.rings, d.at.ring, d.at.index, d.x, d.y, W, H), t, "outline_drag");
  if (d.kind === "vertex" && d.shift) {
    o.redraw = {ring: d.at.ring, from: d.at.index, clicks: []};
    ed.page.log("outline_redraw", {mode: "mask"});
    say("redraw: click the new boundary, then a vertex of the same ring to end (Esc: stop)");
    return ed.changed();
  }
  if (d.kind === "vertex") { o.picked = d.at; return ed.changed(); }
  if (d.kind === "edge") {
    const [x, y] = moved ? [d.x, d.y] : d.at.point;
    return apply(ed, insertVertex(o.rings, d.at.ring, d.at.index, x, y, W, H), t, "outline_insert");
  }
  if (!moved && d.shift && d.button === 0 && ed.page.view.inside(d.x0, d.y0)) {  // a new part
    o.redraw = {ring: null, from: null, clicks: [[d.x0, d.y0]]};
    ed.page.log("outline_redraw", {mode: "mask", part: true});
    say("new part: click its corners, then its first corner to close it (Esc: stop)");
    return ed.changed();
  }
  if (!moved) { o.picked = null; ed.changed(); }
}

// a click while outlining a new part: on its first corner (3 or more) it closes the part
function partClick(ed, d, t) {
  const {o, page} = ed, r = o.redraw, [x0, y0] = r.clicks[0];
  if (r.clicks.length >= 3 && Math.hypot(d.x0 - x0, d.y0 - y0) <= VERTEX_PX / page.view.scale) {
    const [W, H] = imageSize(page);
    o.redraw = null;
    return apply(ed, addRing(o.rings, r.clicks, W, H), t, "outline_redraw");
  }
  if (!page.view.inside(d.x0, d.y0)) return say("that click is outside the image", true);
  r.clicks.push([d.x0, d.y0]);
  page.log("outline_redraw", {mode: "mask", part: true});
  ed.changed();
}

// a click while redrawing: on another vertex of the ring it ends the redraw, elsewhere it
// adds a point of the new boundary; a right click takes the last point back
function redrawClick(ed, d, moved, t) {
  const {o, page} = ed, r = o.redraw;
  if (moved) return say("click, do not drag, while redrawing", true);
  if (d.button !== 0) { if (!r.clicks.pop() || (r.ring === null && !r.clicks.length)) o.redraw = null; return ed.changed(); }
  if (r.ring === null) return partClick(ed, d, t);
  const at = vertexAt(o.rings, d.x0, d.y0, VERTEX_PX / page.view.scale);
  if (at && at.ring === r.ring) {
    if (at.index === r.from) return say("end the redraw on another vertex of the ring", true);
    const [W, H] = imageSize(page);
    o.redraw = null;
    return apply(ed, redrawStretch(o.rings, r.ring, r.from, at.index, r.clicks, W, H), t, "outline_redraw");
  }
  if (at && at.ring !== r.ring) return say("end the redraw on a vertex of the ring it started on", true);
  if (!page.view.inside(d.x0, d.y0)) return say("that click is outside the image", true);
  r.clicks.push([d.x0, d.y0]);
  page.log("outline_redraw", {mode: "mask"});
  ed.changed();
}

function apply(ed, result, stamp, action) {
  if (result.problem) {
    say(`${result.problem}: the outline is kept as it was`, true);
    return ed.changed();
  }
  say("");
  ed.commit(result.rings, stamp, action);
}

// Delete / Backspace: the picked vertex (else the one under the pointer) deleted; while
// redrawing, Backspace takes the last point back. True when it used the key.
export function keydown(ed, e, mouse) {
  const {o, page} = ed;
  if (e.key !== "Delete" && e.key !== "Backspace") return false;
  if (o.redraw) {
    if (!o.redraw.clicks.pop() || (o.redraw.ring === null && !o.redraw.clicks.length)) o.redraw = null;
    ed.changed();
    return true;
  }
  const at = o.picked ?? (mouse && vertexAt(o.rings, mouse[0], mouse[1], VERTEX_PX / page.view.scale));
  if (!at) { say("pick a vertex first (click it), or point at it", true); return true; }
  const [W, H] = imageSize(page);
  apply(ed, deleteVertex(o.rings, at.ring, at.index, W, H), e.timeStamp, "outline_delete");
  return true;
}

// the panel's help while the outline is edited
export function outlineHelp(o) {
  const vertices = o.rings.reduce((n, r) => n + r.points.length, 0), holes = o.rings.filter((r) => r.hole).length;
  const doing = o.redraw?.ring === null ? `New part: ${o.redraw.clicks.length} corners; click the first to close it. ` : o.redraw ? `Redrawing: ${o.redraw.clicks.length} points; click a vertex of the same ring to end, right click or Backspace takes a point back, Esc stops. ` : "";
  return `${doing}Drag a vertex to move it; click an edge to add one; right-click a vertex (or Delete) to delete it; Shift+click a vertex, click the new boundary and click another vertex to redraw that stretch; Shift+right-click a vertex to remove its part or hole; Shift+click outside the outline, click corners and the first again for a new part. Ctrl+Z undoes an edit. Enter saves the mask, L goes back to the mask, Esc drops it. ${count(o.rings.length - holes, "part")}, ${count(holes, "hole")}, ${count(vertices, "vertex", "vertices")}.`;
}

const count = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const imageSize = (page) => { const im = page.doc.get().image; return [im.width, im.height]; };

// the outline's mask, its rings and vertices; a vertex dragged or a redraw shown as it goes.
// The time from the edit's input to here is kept once its new mask is drawn.
export function drawOutline(ctx, lw, o, color, drag, mouse, size) {
  if (!o.canvas) o.canvas = maskCanvas(o, color, size);
  if (o.canvas) ctx.drawImage(o.canvas.canvas, o.canvas.x, o.canvas.y);
  const rings = previewRings(o, drag);
  ctx.lineWidth = 1.5 * lw;
  for (const r of rings) {
    ctx.strokeStyle = r.hole ? "#ffd84a" : "#ffffff";
    ctx.setLineDash(r.hole ? [4 * lw, 3 * lw] : []);
    ctx.beginPath();
    r.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath(); ctx.stroke();
  }
  ctx.setLineDash([]);
  rings.forEach((r, ring) => r.points.forEach(([x, y], index) => {
    const special = (o.picked?.ring === ring && o.picked.index === index) || (o.redraw?.ring === ring && o.redraw.from === index);
    ctx.fillStyle = special ? "#ff3bd4" : color;
    const s = (special ? 7 : 5) * lw;
    ctx.fillRect(x - s / 2, y - s / 2, s, s);
  }));
  if (o.redraw) drawRedraw(ctx, lw, o, mouse);
  if (o.stamp != null) {
    EDIT_TIMES.push(performance.now() - o.stamp);
    if (EDIT_TIMES.length > 600) EDIT_TIMES.shift();
    o.stamp = null;
  }
}

// the rings as the drag under way would leave them (unchecked: it is checked at release)
function previewRings(o, d) {
  if (!d || !d.at || (d.kind !== "vertex" && d.kind !== "edge") || (d.x === d.x0 && d.y === d.y0)) return o.rings;
  return o.rings.map((r, i) => {
    if (i !== d.at.ring) return r;
    const p = r.points;
    if (d.kind === "vertex") return {...r, points: p.map((q, k) => (k === d.at.index ? [d.x, d.y] : q))};
    return {...r, points: [...p.slice(0, d.at.index + 1), [d.x, d.y], ...p.slice(d.at.index + 1)]};
  });
}

function drawRedraw(ctx, lw, o, mouse) {
  const start = o.redraw.ring === null ? [] : [o.rings[o.redraw.ring].points[o.redraw.from]];
  const path = [...start, ...o.redraw.clicks, ...(mouse ? [mouse] : [])];
  ctx.strokeStyle = "#ff3bd4"; ctx.lineWidth = 2 * lw; ctx.setLineDash([5 * lw, 3 * lw]);
  ctx.beginPath();
  path.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.stroke(); ctx.setLineDash([]);
  ctx.fillStyle = "#ff3bd4";
  for (const [x, y] of o.redraw.clicks) { ctx.beginPath(); ctx.arc(x, y, 3 * lw, 0, 7); ctx.fill(); }
}

// the filled outline as a canvas over its window, in `color` at 0.45 alpha (as SAM's mask)
function maskCanvas(o, color, [width, height]) {
  const [x0, y0, x1, y1] = ringsWindow(o.rings, width, height), w = x1 - x0, h = y1 - y0;
  if (w <= 0 || h <= 0) return null;
  const win = fillRings(o.rings, x0, y0, w, h, width, height);
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const c = canvas.getContext("2d"), img = c.createImageData(w, h);
  const rgb = [1, 3, 5].map((k) => parseInt(color.slice(k, k + 2), 16)), a = Math.round(0.45 * 255);
  for (let i = 0; i < win.length; i++) {
    if (!win[i]) continue;
    img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = a;
  }
  c.putImageData(img, 0, 0);
  return {canvas, x: x0, y: y0};
}
