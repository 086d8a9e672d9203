// The review queue of box-level active learning (server/box_queue.py): the box the
// detector is least sure of, shown zoomed with its surroundings, answered with one key.
// A (or Enter) accepts, X (or Delete) says background, 1-9 gives it another class. To fix
// the box: drag its corners (then A or Enter takes the box as it is now; Esc puts it
// back), or press E and click the object's four extreme points (Esc leaves), or drag a
// new box. A click (no drag) on a missed object nearby labels it too
// (the detector finds its box from the click). Each answer is timed from when its box showed.
// The canvas is a view (view.js) as on the annotation page.
import {$, api, esc, say, typing} from "../api.js";
import {boxCorners, pointsBox} from "../geometry.js";
import {lookControls} from "../look.js";
import {showing} from "../testhook.js";
import {dot, strokeBox, View} from "../view.js";
import {visit} from "../visit.js";

const SIDE = 520;  // the canvas, in screen pixels
const CONTEXT = 3;  // the view spans this many times the box (at least MIN_VIEW image pixels)
const MIN_VIEW = 96;
const HANDLE = 8;  // a press this close to a corner of the asked box (screen pixels) moves it
const images = new Map();  // image id -> a loaded <img>, kept for the next boxes

let Q = null;  // this visit of the page: project, classes, current box, view, timer, drag

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
  const canvas = $("#queue-canvas");
  Q = {projectId, page, classes: p.classes, next: null, shownAt: 0, shown: false, drag: null, busy: false,
    edit: null, extreme: null, view: new View(canvas, {draw, background: "#222", smoothBelow: 4})};
  showing("queue", testView(Q));
  // the reset also shows the box asked about as it first showed
  lookControls($("#look"), projectId, (look) => Q.view.store.set({look}), () => Q.next && Q.view.lookAt(...squareAround(Q.next.box, Q.next.image)));
  canvas.addEventListener("mousedown", down);
  canvas.addEventListener("mousemove", move);
  canvas.addEventListener("mouseup", up);
  $("#queue-build").addEventListener("click", build);
  document.addEventListener("keydown", key);
  show(state);
}

// what the test hook reads: the shown box and the view (image pixel -> canvas pixel)
const testView = (q) => () => {
  const {scale, ox, oy} = q.view.store.get();
  return {next: q.next, view: q.shown ? {scale, ox, oy} : null, busy: q.busy, extreme: q.extreme, edit: q.edit};
};

export function stopQueue() {
  document.removeEventListener("keydown", key);
  if (Q) showing("queue", null);
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
  Q.shown = false;  // until its image is drawn
  setExtreme(null);
  if (!Q.next) {
    $("#queue-box").textContent = state.message || "no boxes left to review";
    Q.view.redraw();
    return;
  }
  const next = Q.next, c = classOf(next.class_id);
  $("#queue-box").innerHTML = `box ${next.id}: <b>${esc(c ? c.name : "?")}</b>, probability ${next.score.toFixed(2)}
    (detector v${next.model_version ?? "-"})`;
  const img = await image(next.image_id);
  if (!Q || Q.next !== next) return;
  Q.view.show({id: next.image_id, width: next.image.width, height: next.image.height}, img);
  Q.view.lookAt(...squareAround(next.box, next.image));
  Q.shown = true;
  Q.shownAt = performance.now();
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

// the square of the image the canvas shows: the box and its surroundings, inside the
// image: [x, y, side]
function squareAround(box, size) {
  const [x0, y0, x1, y1] = box;
  // as much context as the image holds on its shorter side, and never less than the box
  const extent = Math.max(x1 - x0, y1 - y0);
  const side = Math.max(Math.min(Math.max(CONTEXT * extent, MIN_VIEW), Math.min(size.width, size.height)), extent);
  const cx = Math.min(Math.max((x0 + x1) / 2, side / 2), Math.max(size.width - side / 2, side / 2));
  const cy = Math.min(Math.max((y0 + y1) / 2, side / 2), Math.max(size.height - side / 2, side / 2));
  return [cx - side / 2, cy - side / 2, side];
}

const classOf = (id) => Q.classes.find((c) => c.id === id);

// the asked box (dashed until its corners move) with its corner handles, the box being
// dragged, and the extreme points clicked
function draw() {
  if (!Q) return;
  const view = Q.view, ctx = view.ctx;
  if (!Q.next) return view.clear();
  if (!Q.shown) return;  // the box before stays until the next one's image is in
  const px = view.begin();
  const c = classOf(Q.next.class_id), color = c ? c.color : "#ff0";
  view.annotation({kind: "box", geometry: {box: Q.edit || Q.next.box}},
    {color, width: 2 * px, unit: px, dash: Q.edit ? [] : [6 * px, 4 * px], handles: {size: 8 * px, color}});
  if (Q.drag?.moved && Q.drag.corner === undefined) {
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 2 * px;
    strokeBox(ctx, spanned(Q.drag));
  }
  for (const [x, y] of Q.extreme || []) dot(ctx, x, y, 5 * px, "#fff", "#000", 2 * px);
}

// E: the next four clicks are the object's extreme points (Papadopoulos et al., 2017)
function setExtreme(points) {
  Q.extreme = points;
  const mode = $("#queue-mode");
  if (mode) mode.textContent = points ? `extreme points: ${points.length} of 4 (Esc leaves)` : "";
  Q.view.redraw();
}

const spanned = (d) => pointsBox([[d.x0, d.y0], [d.x, d.y]]);

function down(e) {
  if (!Q?.shown || Q.busy) return;
  const d = Q.view.press(e), box = Q.edit || Q.next.box;
  // a corner of the asked box within HANDLE screen pixels: that corner moves
  const near = boxCorners(box).map(([x, y], i) => ({i, d: Math.hypot(x - d.x0, y - d.y0) * Q.view.scale}))
    .filter(({d}) => d <= HANDLE).sort((a, b) => a.d - b.d)[0];
  Q.drag = {...d, moved: false, corner: Q.extreme ? undefined : near?.i, box};
}

function move(e) {
  const d = Q?.drag;
  if (!d) return;
  [d.x, d.y] = Q.view.toImage(e);
  d.moved ||= Q.view.moved(d);
  if (d.moved && d.corner !== undefined) Q.edit = movedCorner(d);
  Q.view.redraw();
}

// the asked box with the dragged corner at the pointer (the opposite corner stays)
function movedCorner(d) {
  const fixed = boxCorners(d.box)[(d.corner + 2) % 4];
  return pointsBox([[d.x, d.y], fixed]);
}

function up(e) {
  if (!Q?.drag) return;
  const d = Q.drag, at = Q.view.toImage(e);
  Q.drag = null;
  Q.view.redraw();
  if (Q.extreme) {
    const points = [...Q.extreme, at];
    setExtreme(points);
    if (points.length === 4) answer("fix", {box: pointsBox(points), how: "extreme"});
    return;
  }
  if (d.moved && d.corner !== undefined) {  // the box as it is now waits for A, Enter or a class key
    Q.edit = movedCorner(d);
    $("#queue-mode").textContent = "corners moved: A or Enter takes this box, Esc puts it back";
  } else if (d.moved) answer("fix", {box: spanned(d), how: "drag"});
  else missed(at);
}

function key(e) {
  if (!Q?.shown || Q.busy || typing(e)) return;
  const k = e.key.toLowerCase();
  const moved = Q.edit ? {box: Q.edit, how: "corner"} : null;
  if (k === "a" || k === "enter") answer(moved ? "fix" : "accept", moved || {});
  else if (k === "x" || k === "delete" || k === "backspace") answer("background");
  else if (k === "e") { Q.edit = null; setExtreme([]); }
  else if (k === "escape" && (Q.extreme || Q.edit)) { Q.edit = null; setExtreme(null); }
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
