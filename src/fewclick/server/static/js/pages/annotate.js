// The annotation page: one canvas, the modes (modes/index.js) and the image's saved
// annotations. The page owns the mouse, the keys and the frame loop and hands each event to
// the current mode; what differs between modes lives in the mode's own file.
import {$, api, esc, say, sayNext, typing} from "../api.js";
import {change, redo, rotate, undo} from "../changes.js";
import {flushEvents, logEvent} from "../events.js";
import {proposeOnOpen} from "../modes/detect.js";
import {MODES} from "../modes/index.js";
import {renderPanel, setPanelRenderer} from "../panel.js";
import {S, setState} from "../state.js";
import {visit} from "../visit.js";
import {drawScene, fit, loadPixels, lookControls, resize, toImage, zoom} from "../view.js";

const modeNamed = (name) => MODES.find((m) => m.name === name);
const mode = () => modeNamed(S.mode);

export function stopAnnotating() {
  if (S) {
    if (!S.submitted) logEvent("leave");
    flushEvents(true);
    clearInterval(S.flushTimer);
    window.removeEventListener("keydown", S.onKey);
    window.removeEventListener("keyup", S.onKeyUp);
    window.removeEventListener("resize", S.onResize);
    setState(null);
  }
}

export async function annotatePage(id) {
  const page = visit;
  const image = await api("GET", `/api/images/${id}`);
  const project = await api("GET", `/api/projects/${image.project_id}`);
  if (page !== visit) return;
  $("#crumbs").innerHTML = `/ <a href="#/project/${project.id}">${esc(project.name)}</a> / <span title="${esc(image.file_name)}">${esc(image.file_name)}</span>`;
  const view = $("#view");
  view.innerHTML = `<div class="annotate">
    <div class="tools">
      <div><h3>Mode</h3><div class="modes">
        ${MODES.map((m) => `<button data-mode="${m.name}">${esc(m.title)}</button>`).join("")}</div></div>
      <div><h3>Class</h3>${project.classes.length > 12 ? `<input id="class-filter" placeholder="find a class">` : ""}<div class="classes">${project.classes.map((c) => `<button data-class="${c.id}">
        <span class="swatch" style="background:${c.color}"></span>${c.key ?? ""} ${esc(c.name)}</button>`).join("")}</div></div>
      <div id="mode-panel"></div>
      <div><h3>Image</h3><div id="counts" class="muted"></div>
        <div class="modes"><button id="undo">Undo</button><button id="redo">Redo</button>
        <button id="prev" ${image.previous ? "" : "disabled"}>Previous</button><button id="submit">Submit (S)</button></div>
        <div class="muted" id="status"></div></div>
      <div><h3>View</h3><div id="look"></div></div>
    </div>
    <div id="stage"><canvas id="canvas"></canvas><div id="hud"></div></div>
  </div>`;
  setState({
    image, project, revision: image.revision, mode: "detect",
    cls: project.classes[0]?.id, classes: new Map(project.classes.map((c) => [c.id, c])),
    anns: new Map(image.annotations.map((a) => [a.id, a])), masks: new Map(),
    view: {scale: 1, ox: 0, oy: 0}, bitmap: null, tiles: new Map(),
    minScore: 0.3, minScoreByHand: false, selected: new Set(), drag: null, space: false,
    undo: [], redo: [], events: [], opened: performance.now(), filter: {cls: "", minScore: 0},
    canvas: $("#canvas"), dirty: true, frames: [], prep: null, prepSeen: [],
  });
  for (const m of MODES) m.init?.();
  S.ctx = S.canvas.getContext("2d");
  S.onKey = onKey; S.onKeyUp = (e) => { if (e.code === "Space") S.space = false; };
  S.onResize = () => { resize(); S.dirty = true; };
  window.addEventListener("keydown", S.onKey);
  window.addEventListener("keyup", S.onKeyUp);
  window.addEventListener("resize", S.onResize);
  for (const b of view.querySelectorAll("[data-mode]")) b.addEventListener("click", () => setMode(b.dataset.mode));
  for (const b of view.querySelectorAll("[data-class]")) b.addEventListener("click", () => pickClass(+b.dataset.class));
  $("#class-filter")?.addEventListener("input", (e) => filterClasses(e.target.value));
  $("#undo").addEventListener("click", () => undoStep(false));
  $("#redo").addEventListener("click", () => undoStep(true));
  $("#submit").addEventListener("click", submit);
  $("#prev").addEventListener("click", () => { location.hash = `#/image/${image.previous}`; });
  S.canvas.addEventListener("mousedown", onDown);
  S.canvas.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp, {once: false});
  S.canvas.addEventListener("wheel", zoom, {passive: false});
  S.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  S.flushTimer = setInterval(() => flushEvents(false), 3000);
  setPanelRenderer(panel);
  lookControls($("#look"), project.id, (look) => { S.look = look; S.dirty = true; });
  resize();
  const state = S;
  await loadPixels(state);
  if (S !== state) return;  // another page since the pixels were asked for
  fit();
  // a mode holding work kept from an earlier visit (full image's draft regions) opens first
  const restored = MODES.map((m) => [m.name, m.restore?.()]).find(([, said]) => said);
  setMode(restored?.[0] ?? "detect");
  if (restored) say(restored[1]);
  pickClass(S.cls);
  logEvent("open");
  S.ready = true;  // pixels loaded and the view fitted: clicks land where they are aimed
  requestAnimationFrame(frame);
  prepare(S);
  if (!restored) proposeOnOpen();
}

// SAM's embedding of the image is made in the worker ahead of the first box (and the next
// image's after it); until it exists the panel says so. Drawing still works: a request
// made meanwhile waits for the embedding on the server.
async function prepare(state) {
  let out;
  try {
    out = await api("POST", `/api/images/${state.image.id}/prepare`);
  } catch (err) {
    if (S === state) { state.prep = {failed: err.message}; renderPanel(); }
    return;
  }
  if (S !== state) return;  // another page since
  state.prep = out;
  state.prepSeen.push(out.ready ? "ready" : "preparing");
  renderPanel();
  if (!out.ready) setTimeout(() => prepare(state), 500);
}

function setMode(name) {
  if (S.mode !== name) {
    mode().leave?.();
    say("");  // what the last mode said (its proposals, their time) is not about this one
  }
  S.mode = name;
  for (const b of $("#view").querySelectorAll("[data-mode]")) b.classList.toggle("active", b.dataset.mode === name);
  renderPanel();
  S.dirty = true;
}

function pickClass(id) {
  if (!S.classes.has(id)) return;
  S.cls = id;
  for (const b of $("#view").querySelectorAll("[data-class]")) b.classList.toggle("active", +b.dataset.class === id);
  mode().pickClass?.(id);
  renderPanel();
}

// a long class list (COCO panoptic has 133) shows the classes whose names hold `text`
function filterClasses(text) {
  const t = text.trim().toLowerCase();
  for (const b of $("#view").querySelectorAll("[data-class]")) {
    b.hidden = !!t && !S.classes.get(+b.dataset.class).name.toLowerCase().includes(t);
  }
}

function panel() {
  if (!S) return;
  const p = $("#mode-panel");
  if (!p) return;
  mode().panel(p);
  const counts = $("#counts");
  if (counts) counts.textContent = `${objectsText()}; revision ${S.revision}`;
  showHud();  // the counts there change with the panel's
  const st = $("#status");
  if (st) st.textContent = `status: ${S.image.status.replace("_", " ")}`;
}

// the saved objects, and what the mode holds that is not saved yet (proposals, regions)
function objectsText() {
  const unsaved = mode().unsaved?.();
  return `${S.anns.size} objects saved${unsaved ? `, ${unsaved}` : ""}`;
}

// the line over the canvas: the image pixel under the mouse, the zoom and the counts
function showHud() {
  const hud = $("#hud");
  if (!hud || !S.mouse) return;
  const [x, y] = S.mouse;
  hud.textContent = `${x.toFixed(0)}, ${y.toFixed(0)}  zoom ${(100 * S.view.scale).toFixed(0)}%  ${objectsText()}`;
}

// Ctrl+Z and the Undo button: the mode's own unsaved work first, else the saved changes
function undoStep(again) {
  if (mode().undo?.(again)) return;
  return again ? redo() : undo();
}

async function submit() {
  // what is shown is what is saved: proposals still shown are accepted with the submit
  // (Esc drops them first), so that a person happy with them needs no Enter
  const pending = mode().acceptOnSubmit?.() ?? 0;
  if (pending) await mode().accept();
  logEvent("submit", {objects: S.anns.size, accepted_on_submit: pending});
  const out = await api("PATCH", `/api/images/${S.image.id}`, {status: "done"});
  S.submitted = true;  // the visit ends with the submit: no leave
  flushEvents(true);
  const kept = pending ? ` with the ${pending} proposals shown` : "";
  sayNext(out.job ? `submitted${kept}; training started by itself (after every ${S.project.auto_train_every} finished images)` : `submitted${kept}`);
  location.hash = S.image.next ? `#/image/${S.image.next}` : `#/project/${S.project.id}`;
}

// ------------------------------------------------------------------ mouse and keys
function onDown(e) {
  const [x, y] = toImage(e);
  if (S.space || e.button === 1) {
    S.drag = {kind: "pan", sx: e.clientX, sy: e.clientY, ox: S.view.ox, oy: S.view.oy, t0: performance.now()};
    return;
  }
  const m = mode();
  S.drag = {kind: "press", mode: m, x0: x, y0: y, x, y, button: e.button, shift: e.shiftKey, t0: performance.now()};
  m.press?.(e, x, y);
}

function onMove(e) {
  const [x, y] = toImage(e);
  S.mouse = [x, y];
  showHud();
  const d = S.drag;
  if (!d) {
    if (mode().hover?.(x, y)) S.dirty = true;
    return;
  }
  if (d.kind === "pan") {
    S.view.ox = d.ox + e.clientX - d.sx;
    S.view.oy = d.oy + e.clientY - d.sy;
  } else {
    d.x = x; d.y = y;
    d.mode.move?.(d);
  }
  S.dirty = true;
}

// the drag ends: the mode it started in takes it (whether it moved over 4 screen pixels,
// and the rectangle it spans)
async function onUp() {
  if (!S || !S.drag) return;
  const d = S.drag;
  S.drag = null;
  S.dirty = true;
  if (d.kind === "pan") return;
  const moved = Math.hypot(d.x - d.x0, d.y - d.y0) * S.view.scale > 4;
  const box = [Math.min(d.x0, d.x), Math.min(d.y0, d.y), Math.max(d.x0, d.x), Math.max(d.y0, d.y)];
  await d.mode.release?.(d, moved, box);
}

function onKey(e) {
  if (!S || typing(e)) return;
  const key = e.key.toLowerCase();
  if (e.code === "Space") { S.space = true; e.preventDefault(); return; }
  if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); return undoStep(e.shiftKey); }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (/^[1-9]$/.test(e.key)) {
    const c = [...S.classes.values()].find((c) => c.key === +e.key);
    if (c) pickClass(c.id);
    return;
  }
  const switchTo = MODES.find((m) => m.key === key);
  if (switchTo) return setMode(switchTo.name);
  if (key === "f") return fit();
  if (key === "s") return submit();
  if (e.key === "Enter") return mode().accept?.();
  if (e.key === "Escape") {
    mode().escape?.(); S.selected.clear(); S.dirty = true; renderPanel();
    return;
  }
  if (mode().keydown?.(e, key)) return;
  if ((e.key === "Delete" || e.key === "Backspace") && S.selected.size) return change([], [...S.selected], "delete");
  if ((e.key === "[" || e.key === "]") && S.selected.size && S.project.oriented) return rotate(e.key === "]" ? -5 : 5);
}

// ------------------------------------------------------------------ drawing
function frame() {
  if (!S) return;
  if (S.dirty) {
    const t0 = performance.now();
    const m = mode();
    const lw = drawScene(m);
    m.draw?.(S.ctx, lw);
    S.frames.push(performance.now() - t0);
    if (S.frames.length > 600) S.frames.shift();
    S.dirty = false;
  }
  requestAnimationFrame(frame);
}
