// The annotation page: one canvas (a view, view.js), the modes (modes/index.js) and the
// image's saved annotations. A visit of the page is one object `V`, made when the page
// opens and dropped when it is left; what the modes are given of it (`page`):
//   doc: the store of the image (image, project, classes, cls: the picked class, mode,
//     revision, anns: Map id -> saved annotation, selected: Set of ids, prep, prepSeen);
//   view, changes (changes.js), log (events.js), panel() renders the mode panel again,
//   redraw() draws the canvas on the next frame, color(classId), dragRect(ctx, drag, lw),
//   live(): whether this visit is still the page shown.
// The canvas redraws when the doc, the view, the pointer or a mode's store changes. The
// mouse and the keys are in annotate_input.js; what differs between modes, in its file.
import {$, api, esc, say, sayNext} from "../api.js";
import {Changes} from "../changes.js";
import {startEventLog} from "../events.js";
import {lookControls} from "../look.js";
import {MODES} from "../modes/index.js";
import {createStore} from "../store.js";
import {showing} from "../testhook.js";
import {loadPixels, View} from "../view.js";
import {visit} from "../visit.js";
import {listen} from "./annotate_input.js";

let V = null;  // the visit shown, or null

const mode = (v) => v.modes.find((m) => m.name === v.doc.get().mode);

// what leaving the image now would lose (proposals not accepted, a mask or an outline in
// progress), or "": asked about before the page goes (the app's links, the back button, a
// reload or a closed tab)
export function unsavedWork() {
  if (!V || V.submitted) return "";
  const m = mode(V);
  return m.drafted ? "" : m.unsaved?.() ?? "";
}

window.addEventListener("beforeunload", (e) => {
  if (!unsavedWork()) return;
  e.preventDefault();
  e.returnValue = "";  // the browsers that ask only when it is set
});

export function stopAnnotating() {
  if (!V) return;
  if (!V.submitted) V.log("leave");
  V.events.flush(true);
  V.events.stop();
  V.unlisten();
  showing("annotate", null);
  V = null;
}

export async function annotatePage(id) {
  const page = visit;
  const image = await api("GET", `/api/images/${id}`);
  const project = await api("GET", `/api/projects/${image.project_id}`);
  if (page !== visit) return;
  const v = open(image, project);
  lookControls($("#look"), project.id, (look) => v.view.store.set({look}), () => v.ready && v.view.fit());
  v.resize();
  const pixels = await loadPixels(image);
  if (V !== v) return;  // another page since the pixels were asked for
  v.view.show(image, pixels);
  v.view.fit();
  // a mode holding work kept from an earlier visit (full image's draft regions) opens first
  const restored = v.modes.map((m) => [m.name, m.restore?.()]).find(([, said]) => said);
  setMode(v, restored?.[0] ?? keptMode(project.id));
  if (restored) say(restored[1]);
  pickClass(v, v.doc.get().cls);
  v.log("open");
  v.ready = true;  // pixels loaded and the view fitted: clicks land where they are aimed
  v.redraw();
  prepare(v);
  if (!restored) for (const each of v.modes) (each === mode(v) ? each.opened : each.openedElsewhere)?.();
}

// the visit: its stores, view, log, changes and modes, listening to the mouse and keys
function open(image, project) {
  const v = {ready: false, submitted: false, frames: [], mouse: null};
  v.redraw = () => v.view?.redraw();
  v.doc = createStore({
    image, project, mode: "detect", revision: image.revision,
    cls: project.classes[0]?.id, classes: new Map(project.classes.map((c) => [c.id, c])),
    anns: new Map(image.annotations.map((a) => [a.id, a])), selected: new Set(), prep: null, prepSeen: [],
  }, v.redraw);
  v.pointer = createStore({drag: null}, v.redraw);  // the drag under way
  v.events = startEventLog(image.id, project.id, () => v.ready);
  v.log = v.events.log;
  v.panel = () => { if (V === v) renderPanel(v); };
  v.live = () => V === v;
  v.color = (id) => v.doc.get().classes.get(id)?.color ?? "#fff";
  v.dragRect = (ctx, d, lw) => {
    if (d?.kind !== "press") return;
    ctx.strokeStyle = v.color(v.doc.get().cls); ctx.lineWidth = lw;
    ctx.strokeRect(d.x0, d.y0, d.x - d.x0, d.y - d.y0);
  };
  v.resize = () => { const st = $("#stage"); if (st) v.view.resize(st.clientWidth, st.clientHeight); };
  v.changes = new Changes(v.doc, {log: v.log, panel: v.panel});
  v.modes = MODES.map((make) => make(v));
  layout(image, project, v.modes);
  v.view = new View($("#canvas"), {draw: () => draw(v)});
  v.view.store.subscribe(() => showHud(v));  // a wheel or a key zooms without a mouse move
  v.unlisten = listen(v, {
    setMode: (name) => setMode(v, name), pickClass: (id) => pickClass(v, id),
    submit: () => submit(v), undoStep: (again) => undoStep(v, again), showHud: () => showHud(v),
  });
  bindButtons(v);
  V = v;
  showing("annotate", () => V);
  return v;
}

function bindButtons(v) {
  const view = $("#view");
  for (const b of view.querySelectorAll("[data-mode]")) b.addEventListener("click", () => setMode(v, b.dataset.mode));
  for (const b of view.querySelectorAll("[data-class]")) b.addEventListener("click", () => pickClass(v, +b.dataset.class));
  $("#class-filter")?.addEventListener("input", (e) => filterClasses(v, e.target.value));
  $("#undo").addEventListener("click", () => undoStep(v, false));
  $("#redo").addEventListener("click", () => undoStep(v, true));
  $("#submit").addEventListener("click", () => submit(v));
  $("#prev").addEventListener("click", () => { location.hash = `#/image/${v.doc.get().image.previous}`; });
}

// SAM's embedding of the image is made in the worker ahead of the first box (and the next
// image's after it); until it exists the panel says so. Drawing still works: a request
// made meanwhile waits for the embedding on the server.
async function prepare(v) {
  let out;
  try {
    out = await api("POST", `/api/images/${v.doc.get().image.id}/prepare`);
  } catch (err) {
    if (V === v) { v.doc.set({prep: {failed: err.message}}); v.panel(); }
    return;
  }
  if (V !== v) return;  // another page since
  v.doc.get().prepSeen.push(out.ready ? "ready" : "preparing");
  const was = v.doc.get().prep, before = was?.proposals;
  v.doc.set({prep: out});
  v.panel();
  // SAM's proposals are made after the embedding: followed until they are, then the modes are
  // told (detect asks for what the image opens with, in any mode: D shows it); meanwhile each
  // window searched is told too (detect shows what the windows done hold)
  if (before !== "ready" && out.proposals === "ready") for (const each of v.modes) each.proposalsReady?.();
  else if (out.proposals_partial && out.proposals_done < out.proposals_windows && out.proposals_done > (was?.proposals_done ?? 0)) {
    for (const each of v.modes) each.proposalsMore?.();
  }
  if (!out.ready || out.proposals === "making") setTimeout(() => prepare(v), out.ready ? 1000 : 500);
}

// the way of annotating picked last on this project's images in this tab: the next image
// opens in it (a person making masks need not press M on each one); select and review,
// which serve a moment, are not kept
const KEPT_MODES = new Set(["detect", "box", "mask", "polygon", "points", "fullimage"]);
const modeKey = (projectId) => `fewclick.mode.${projectId}`;

function keptMode(projectId) {
  let name = null;
  try { name = sessionStorage.getItem(modeKey(projectId)); } catch { /* storage refused: the default */ }
  return KEPT_MODES.has(name) ? name : "detect";
}

// the mode `name` picked (a key, its button; the page's first mode as the image opens)
function setMode(v, name) {
  const anew = v.doc.get().mode !== name;
  if (v.ready && KEPT_MODES.has(name)) {
    try { sessionStorage.setItem(modeKey(v.doc.get().project.id), name); } catch { /* not kept */ }
  }
  if (anew) {
    mode(v).leave?.();
    say("");  // what the last mode said (its proposals, their time) is not about this one
  }
  v.doc.set({mode: name});
  for (const b of $("#view").querySelectorAll("[data-mode]")) b.classList.toggle("active", b.dataset.mode === name);
  if (v.ready) mode(v).picked?.(anew);  // as the image opens, opened() follows instead
  v.panel();
}

function pickClass(v, id) {
  if (!v.doc.get().classes.has(id)) return;
  v.doc.set({cls: id});
  for (const b of $("#view").querySelectorAll("[data-class]")) b.classList.toggle("active", +b.dataset.class === id);
  mode(v).pickClass?.(id);
  v.panel();
}

// a long class list (COCO panoptic has 133) shows the classes whose names hold `text`
function filterClasses(v, text) {
  const t = text.trim().toLowerCase(), classes = v.doc.get().classes;
  for (const b of $("#view").querySelectorAll("[data-class]")) {
    b.hidden = !!t && !classes.get(+b.dataset.class).name.toLowerCase().includes(t);
  }
}

function renderPanel(v) {
  const p = $("#mode-panel");
  if (!p) return;
  mode(v).panel(p);
  waitingLine(v, p);
  const {revision, image} = v.doc.get();
  const counts = $("#counts");
  if (counts) counts.textContent = `${objectsText(v)}; revision ${revision}`;
  showHud(v);  // the counts there change with the panel's
  const st = $("#status");
  if (st) st.textContent = `status: ${image.status.replace("_", " ")}`;
}

// what the other modes hold ready for when they are picked ("12 proposals waiting: D shows
// them"), at the foot of the mode's panel
function waitingLine(v, p) {
  const said = v.modes.filter((m) => m !== mode(v)).map((m) => m.waiting?.()).filter(Boolean).join("; ");
  let el = p.querySelector("#waiting");
  if (!el) {
    p.insertAdjacentHTML("beforeend", `<div id="waiting"></div>`);
    el = p.querySelector("#waiting");
  }
  el.textContent = said;
  el.hidden = !said;
}

// the saved objects, and what the mode holds that is not saved yet (proposals, regions)
function objectsText(v) {
  const unsaved = mode(v).unsaved?.();
  return `${v.doc.get().anns.size} objects saved${unsaved ? `, ${unsaved}` : ""}`;
}

// the line over the canvas: the image pixel under the mouse, the zoom and the counts
function showHud(v) {
  const hud = $("#hud");
  if (V !== v || !hud || !v.pointerAt) return;  // a tile of the last image may land after a new one opens
  const [x, y] = v.view.toImage(v.pointerAt);  // the pixel under the pointer, after a zoom too
  hud.textContent = `${x.toFixed(0)}, ${y.toFixed(0)}  zoom ${(100 * v.view.scale).toFixed(0)}%  ${objectsText(v)}`;
}

// Ctrl+Z and the Undo button: the mode's own unsaved work first, else the saved changes
function undoStep(v, again) {
  if (mode(v).undo?.(again)) return;
  return v.changes.undo(again);
}

async function submit(v) {
  // what is shown is what is saved: proposals still shown are accepted with the submit
  // (Esc drops them first), so that a person happy with them needs no Enter
  const pending = mode(v).acceptOnSubmit?.() ?? 0;
  if (pending) await mode(v).accept();
  const {image, project, anns} = v.doc.get();
  // an image finished with no objects teaches the detector that nothing is there: asked once
  const empty = anns.size === 0;
  if (empty && project.ask_empty && !["done", "reviewed"].includes(image.status) && !confirm(`Nothing to annotate here? ${image.file_name} has no objects: submitted, it tells the detector that nothing is there.`)) {
    return say("not submitted: the image has no objects yet");
  }
  v.log("submit", {objects: anns.size, accepted_on_submit: pending});
  const out = await api("PATCH", `/api/images/${image.id}`, {status: "done", empty});
  v.submitted = true;  // the visit ends with the submit: no leave
  v.events.flush(true);
  const kept = pending ? ` with the ${pending} proposals shown` : "";
  const started = out.job ? (out.job.kind === "trainer" ? "the background trainer started by itself" : "the mask models' training started by itself") : "";
  sayNext(started ? `submitted${kept}; ${started} (after ${project.auto_train_every} finished images)` : `submitted${kept}`);
  location.hash = image.next ? `#/image/${image.next}` : `#/project/${project.id}`;
}

// the image, the saved annotations and the mode's work; its time kept for the benchmarks
function draw(v) {
  if (V !== v || !v.ready) return;
  const t0 = performance.now(), m = mode(v);
  const lw = 1.5 * v.view.begin();
  drawSaved(v, m, lw);
  m.draw?.(v.view.ctx, lw, v.pointer.get().drag);
  v.frames.push(performance.now() - t0);
  if (v.frames.length > 600) v.frames.shift();
}

// the saved annotations in view that the mode lets through (all but review's filter)
function drawSaved(v, m, lw) {
  const {anns, classes, selected} = v.doc.get();
  const [x0, y0, x1, y1] = v.view.visibleBounds();
  for (const a of anns.values()) {
    const b = a.geometry.box;
    if (b && (b[2] < x0 || b[0] > x1 || b[3] < y0 || b[1] > y1)) continue;
    if (m.visible && !m.visible(a)) continue;
    const sel = selected.has(a.id), rejected = a.review === "rejected";
    v.view.annotation(a, {color: classes.get(a.class_id)?.color ?? "#ffffff", unit: lw, width: sel ? 3 * lw : lw,
      dash: rejected ? [4 * lw, 4 * lw] : [], alpha: rejected ? 0.5 : 1,
      handles: sel && m.handles ? {size: 6 * lw, color: "#fff"} : null, mark: a.review === "accepted"});
  }
}

function layout(image, project, modes) {
  $("#crumbs").innerHTML = `/ <a href="#/project/${project.id}">${esc(project.name)}</a> / <span title="${esc(image.file_name)}">${esc(image.file_name)}</span>`;
  $("#view").innerHTML = `<div class="annotate">
    <div class="tools">
      <div><h3>Mode</h3><div class="modes">
        ${modes.map((m) => `<button data-mode="${m.name}">${esc(m.title)}</button>`).join("")}</div></div>
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
}
