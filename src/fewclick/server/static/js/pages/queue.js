// The review queue of box-level active learning (server/box_queue.py): the box the
// detector is least sure of, shown zoomed with its surroundings, answered with one key.
// A (or Enter) accepts, X (or Delete) says background, 1-9 gives it another class. To fix
// the box: drag its corners (then A or Enter takes the box as it is now; Esc puts it
// back), or press E and click the object's four extreme points (Esc leaves), or drag a
// new box. A click (no drag) on a missed object nearby labels it too
// (the detector finds its box from the click). Each answer is timed from when its box showed.
import {$, api, esc, say, typing} from "../api.js";
import {lookControls, lookFilter} from "../view.js";
import {visit} from "../visit.js";

const SIDE = 520;  // the canvas, in screen pixels
const CONTEXT = 3;  // the view spans this many times the box (at least MIN_VIEW image pixels)
const MIN_VIEW = 96;
const HANDLE = 8;  // a press this close to a corner of the asked box (screen pixels) moves it
const images = new Map();  // image id -> a loaded <img>, kept for the next boxes

let Q = null;  // the page's state: project, classes, current box, view, timer, drag

export async function queuePage(projectId) {
  const page = visit;
  const [p, state] = await Promise.all([api("GET", `/api/projects/${projectId}`), api("GET", `/api/projects/${projectId}/queue`)]);
  if (page !== visit) return;
  $("#crumbs").innerHTML = `/ <a href="#/project/${projectId}">${esc(p.name)}</a> / review queue`;
  $("#view").innerHTML = `<div class="page queue" data-queue="${projectId}">
    <h2>Review queue</h2>
    <p class="muted">The boxes the detector is least sure of, across the whole project. <b>A</b> or Enter: right;
      <b>X</b> or Delete: no object (background); <b>1-9</b>: another class; to fix the box, drag its
      corners and press <b>A</b>, or press <b>E</b> and click the object's leftmost, topmost, rightmost and bottommost points,
      or drag a new box; click a missed object nearby to label it.</p>
    <div class="queue-row"><canvas id="queue-canvas" width="${SIDE}" height="${SIDE}"></canvas>
      <div class="queue-side"><p id="queue-box"></p><p id="queue-mode" class="muted"></p><p id="queue-counts"></p>
      <div id="queue-classes">${p.classes.map((c) => `<div><span class="swatch" style="background:${c.color}"></span>
        ${c.key ?? "-"} ${esc(c.name)}</div>`).join("")}</div>
      <p><button id="queue-build">Build the queue from the serving detector</button></p>
      <p id="queue-job" class="muted"></p><div id="look"></div></div></div></div>`;
  Q = {projectId, page, classes: p.classes, next: null, shownAt: 0, view: null, drag: null, busy: false,
    edit: null, extreme: null, look: null};
  lookControls($("#look"), projectId, (look) => { Q.look = look; if (Q.view) draw0(); });
  const canvas = $("#queue-canvas");
  canvas.addEventListener("mousedown", down);
  canvas.addEventListener("mousemove", move);
  canvas.addEventListener("mouseup", up);
  $("#queue-build").addEventListener("click", build);
  document.addEventListener("keydown", key);
  show(state);
}

// for the browser tests: the shown box and the view (image pixel -> canvas pixel)
export const queueState = () => Q && {next: Q.next, view: Q.view, busy: Q.busy, extreme: Q.extreme, edit: Q.edit};

export function stopQueue() {
  document.removeEventListener("keydown", key);
  Q = null;
}

function counts(state) {
  const a = state.answers || {};
  return `${state.open} open, ${state.answered} answered (${a.accept || 0} right, ${a.fix || 0} fixed,
    ${a.background || 0} background) in ${Math.round(state.seconds || 0)} s`;
}

async function show(state) {
  if (!Q || Q.page !== visit) return;
  if (state.open !== undefined) $("#queue-counts").textContent = counts(state);
  Q.next = state.next;
  Q.edit = null;
  setExtreme(null);
  if (!Q.next) {
    Q.view = null;
    $("#queue-box").textContent = state.message || "no boxes left to review";
    clear();
    return;
  }
  const next = Q.next, c = classOf(next.class_id);
  Q.view = null;  // until its image is drawn
  $("#queue-box").innerHTML = `box ${next.id}: <b>${esc(c ? c.name : "?")}</b>, probability ${next.score.toFixed(2)}
    (detector v${next.model_version ?? "-"})`;
  const img = await image(next.image_id);
  if (!Q || Q.next !== next) return;
  Q.view = viewAround(next.box, next.image);
  Q.shownAt = performance.now();
  draw(img);
}

function image(id) {
  if (images.has(id)) return images.get(id);
  const loaded = new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`image ${id} did not load`));
    img.src = `/api/images/${id}/file`;
  });
  images.set(id, loaded);
  return loaded;
}

// the square of the image the canvas shows: the box and its surroundings, inside the image
function viewAround(box, size) {
  const [x0, y0, x1, y1] = box;
  // as much context as the image holds on its shorter side, and never less than the box
  const extent = Math.max(x1 - x0, y1 - y0);
  const side = Math.max(Math.min(Math.max(CONTEXT * extent, MIN_VIEW), Math.min(size.width, size.height)), extent);
  const cx = Math.min(Math.max((x0 + x1) / 2, side / 2), Math.max(size.width - side / 2, side / 2));
  const cy = Math.min(Math.max((y0 + y1) / 2, side / 2), Math.max(size.height - side / 2, side / 2));
  return {x: cx - side / 2, y: cy - side / 2, scale: SIDE / side};
}

const toCanvas = (x, y) => [(x - Q.view.x) * Q.view.scale, (y - Q.view.y) * Q.view.scale];
const toImage = (cx, cy) => [Q.view.x + cx / Q.view.scale, Q.view.y + cy / Q.view.scale];
const classOf = (id) => Q.classes.find((c) => c.id === id);

function clear() {
  const ctx = $("#queue-canvas")?.getContext("2d");
  if (ctx) ctx.clearRect(0, 0, SIDE, SIDE);
}

function draw(img) {
  const ctx = $("#queue-canvas").getContext("2d");
  const v = Q.view, side = SIDE / v.scale;
  ctx.fillStyle = "#222";
  ctx.fillRect(0, 0, SIDE, SIDE);
  ctx.imageSmoothingEnabled = v.scale < 4;
  ctx.filter = lookFilter(Q.look);
  ctx.drawImage(img, v.x, v.y, side, side, 0, 0, SIDE, SIDE);
  ctx.filter = "none";
  const c = classOf(Q.next.class_id), color = c ? c.color : "#ff0";
  const box = Q.edit || Q.next.box;
  rect(ctx, box, color, Q.edit ? [] : [6, 4]);
  for (const [x, y] of corners(box)) {  // the handles that move a corner
    const [cx, cy] = toCanvas(x, y);
    ctx.fillStyle = color;
    ctx.fillRect(cx - 4, cy - 4, 8, 8);
  }
  if (Q.drag?.moved && Q.drag.corner === undefined) rect(ctx, boxOf(Q.drag), "#fff", []);
  for (const [x, y] of Q.extreme || []) {
    const [cx, cy] = toCanvas(x, y);
    ctx.beginPath();
    ctx.arc(cx, cy, 5, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }
}

const corners = (b) => [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];

// E: the next four clicks are the object's extreme points (Papadopoulos et al., 2017)
function setExtreme(points) {
  Q.extreme = points;
  const mode = $("#queue-mode");
  if (mode) mode.textContent = points ? `extreme points: ${points.length} of 4 (Esc leaves)` : "";
}

function rect(ctx, box, color, dash) {
  const [ax, ay] = toCanvas(box[0], box[1]);
  const [bx, by] = toCanvas(box[2], box[3]);
  ctx.setLineDash(dash);
  ctx.lineWidth = 2;
  ctx.strokeStyle = color;
  ctx.strokeRect(ax, ay, bx - ax, by - ay);
  ctx.setLineDash([]);
}

function point(e) {
  const r = e.target.getBoundingClientRect();
  return toImage(e.clientX - r.left, e.clientY - r.top);
}

function down(e) {
  if (!Q?.view || Q.busy) return;
  const at = point(e), box = Q.edit || Q.next.box;
  // a corner of the asked box within HANDLE screen pixels: that corner moves
  const near = corners(box).map(([x, y], i) => ({i, d: Math.hypot(x - at[0], y - at[1]) * Q.view.scale}))
    .filter(({d}) => d <= HANDLE).sort((a, b) => a.d - b.d)[0];
  Q.drag = {from: at, to: at, moved: false, corner: Q.extreme ? undefined : near?.i, box};
}

async function move(e) {
  if (!Q?.drag) return;
  Q.drag.to = point(e);
  const [dx, dy] = [Q.drag.to[0] - Q.drag.from[0], Q.drag.to[1] - Q.drag.from[1]].map((d) => Math.abs(d) * Q.view.scale);
  Q.drag.moved ||= dx > 4 || dy > 4;
  if (Q.drag.moved && Q.drag.corner !== undefined) Q.edit = movedCorner(Q.drag);
  draw(await image(Q.next.image_id));
}

// the asked box with the dragged corner at the pointer (the opposite corner stays)
function movedCorner(drag) {
  const b = drag.box, [x, y] = drag.to;
  const fixed = corners(b)[(drag.corner + 2) % 4];
  return [Math.min(x, fixed[0]), Math.min(y, fixed[1]), Math.max(x, fixed[0]), Math.max(y, fixed[1])];
}

function boxOf(drag) {
  const [a, b] = [drag.from, drag.to];
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
}

function up(e) {
  if (!Q?.drag) return;
  const drag = Q.drag;
  Q.drag = null;
  if (Q.extreme) {
    const points = [...Q.extreme, point(e)];
    setExtreme(points);
    if (points.length < 4) return draw0();
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    return answer("fix", {box: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)], how: "extreme"});
  }
  if (drag.moved && drag.corner !== undefined) {  // the box as it is now waits for A, Enter or a class key
    Q.edit = movedCorner(drag);
    $("#queue-mode").textContent = "corners moved: A or Enter takes this box, Esc puts it back";
    draw0();
  } else if (drag.moved) answer("fix", {box: boxOf(drag), how: "drag"});
  else missed(point(e));
}

async function draw0() {
  if (Q?.next) draw(await image(Q.next.image_id));
}

function key(e) {
  if (!Q?.view || Q.busy || typing(e)) return;
  const k = e.key.toLowerCase();
  const moved = Q.edit ? {box: Q.edit, how: "corner"} : null;
  if (k === "a" || k === "enter") answer(moved ? "fix" : "accept", moved || {});
  else if (k === "x" || k === "delete" || k === "backspace") answer("background");
  else if (k === "e") { Q.edit = null; setExtreme([]); draw0(); }
  else if (k === "escape" && (Q.extreme || Q.edit)) { Q.edit = null; setExtreme(null); draw0(); }
  else if (/^[1-9]$/.test(k)) {
    const c = Q.classes.find((c) => c.key === Number(k));
    if (!c) return;
    const same = c.id === Q.next.class_id;
    if (same && !moved) answer("accept");
    else answer("fix", {...(moved || {}), ...(same ? {} : {class_id: c.id})});
  } else return;
  e.preventDefault();
}

async function answer(kind, extra = {}) {
  const q = Q.next;
  const seconds = (performance.now() - Q.shownAt) / 1000;
  Q.busy = true;
  try {
    const out = await api("POST", `/api/queries/${q.id}/answer`, {answer: kind, seconds: Math.round(seconds * 100) / 100, ...extra});
    say(`box ${q.id}: ${kind === "accept" ? "right" : kind}${out.training ? "; training started by itself" : ""}`);
    const state = await api("GET", `/api/projects/${Q.projectId}/queue`);
    Q.busy = false;
    await show({...state, next: out.next, message: out.message});
  } catch (err) {
    if (Q) Q.busy = false;
    if (err.status === 409 && Q) show(await api("GET", `/api/projects/${Q.projectId}/queue`));
  }
}

// a click beside the asked box: the object there was missed; the detector finds its box
// from the click (with the class of the asked box) and it becomes an annotation
async function missed([x, y]) {
  const q = Q.next;
  Q.busy = true;
  try {
    const found = await api("POST", `/api/images/${q.image_id}/detect`, {clicks: [[x, y, q.class_id]]});
    const hit = found.boxes.map((b, i) => ({b, i})).filter(({b, i}) => found.labels[i] === q.class_id
      && b[0] <= x && x <= b[2] && b[1] <= y && y <= b[3]).sort((s, t) => found.scores[t.i] - found.scores[s.i])[0];
    if (!hit) { say("no object found at that click: drag its box instead", true); return; }
    const im = await api("GET", `/api/images/${q.image_id}`);
    await api("POST", `/api/images/${q.image_id}/annotations?revision=${im.revision}`,
      {class_id: q.class_id, kind: "box", geometry: {box: hit.b}, source: "queue"});
    await api("POST", `/api/projects/${Q.projectId}/events`, [{action: "queue_missed", image_id: q.image_id,
      duration_ms: performance.now() - Q.shownAt, detail: {query: q.id, box: hit.b}}]);
    say(`a missed ${esc(classOf(q.class_id)?.name ?? "object")} labeled; now this box`);
  } catch (err) {
    // api() said what went wrong
  } finally {
    if (Q) Q.busy = false;
  }
}

async function build() {
  const job = await api("POST", `/api/projects/${Q.projectId}/queue`).catch(() => null);
  if (job) follow(job.id, Q.page);
}

async function follow(jobId, page) {
  if (!Q || page !== visit) return;
  const job = await api("GET", `/api/jobs/${jobId}`);
  $("#queue-job").textContent = job.status === "running" || job.status === "queued"
    ? `building: ${Math.round(100 * job.progress)}%` : job.message;
  if (job.status === "queued" || job.status === "running") setTimeout(() => follow(jobId, page), 1000);
  else if (job.status === "done") show(await api("GET", `/api/projects/${Q.projectId}/queue`));
}
