// Click-to-detect (D): a click on an object of the picked class; boxes of every object of
// every class come back as proposals; more clicks refine; Enter (or Submit) accepts those
// shown. A drag draws a box of the picked class by hand, the proposals staying as they are,
// but for the one it is drawn over (IoU >= REPLACE_IOU), which it takes the place of: a
// loose proposal is fixed by drawing it right, with no Enter first. On a large image (served
// as tiles) the answer comes from the windows around the clicks, and the server then sweeps
// the rest of the image (those on screen first): its boxes join the proposals as it goes.
// E fits the edges: once a box is drawn over a proposal of its class, E moves every
// proposal of that class by the mean of the edges' moves of the boxes drawn over (an image
// whose boxes are all drawn 2 px looser than SAM's is fixed by one box and E), and keeps
// them moved in the answers to further clicks.
import {api, say} from "../api.js";
import {iou, rboxCorners} from "../geometry.js";
import {helpPanel} from "../panel.js";
import {createStore} from "../store.js";
import {cross, poly, strokeBox} from "../view.js";
import {SAME_IOU, alreadyBoxed, drawnOver, edgeMove, holds, moveEdges, proposalAt, rejectedIn} from "./detect_boxes.js";
import {exemplarsPanel} from "./detect_exemplars.js";
import {fitText, panelTexts as texts} from "./detect_text.js";

const REPLACE_IOU = 0.3;  // the campaign's NEAR_IOU: a box this close to an object is dragged onto it
const SWEEP_POLL_MS = 1000;  // how often the page asks how far the sweep of a large image is

// the mode for one visit of the annotation page (`page`: see pages/annotate.js); its state:
// `det`, the clicks and the last answer (replaced whole when dropped: an answer to dropped
// clicks lands in the old one), and the score slider
export function detect(page) {
  const m = {page, st: createStore({det: fresh(), minScore: 0.3, minScoreByHand: false}, page.redraw)};
  return {
    name: "detect", key: "d", title: "Detect (D)",
    state: () => state(m),
    leave: () => leave(m),
    escape: () => dismiss(m),
    release: (d, moved, rect) => release(m, d, moved, rect),
    accept: () => accept(m),
    keydown: (e, key) => (key === "e" && (fitEdges(m), true)) || (key === "x" && rejectUnder(m)),
    panel: (el) => panel(m, el),
    draw: (ctx, lw, drag) => draw(m, ctx, lw, drag),
    // the proposals a submit accepts: those shown
    acceptOnSubmit: () => (det(m).result ? shown(m).length : 0),
    // what the page has not saved yet, for the status lines
    unsaved: () => (det(m).result && shown(m).length ? `${count(shown(m).length)} not accepted` : ""),
    opened: () => opened(m),
    openedElsewhere: () => opened(m),
    picked: (anew) => anew && picked(m),
    proposalsReady: () => proposalsReady(m),
    proposalsMore: () => proposalsMore(m),
    waiting: () => waiting(m),
  };
}

// the clicks and the slider, as the test hook and shownProposals see them
const state = (m) => ({...m.st.get().det, minScore: m.st.get().minScore, minScoreByHand: m.st.get().minScoreByHand});
const shown = (m) => shownProposals(state(m));
const det = (m) => m.st.get().det;
function drop(m) {
  const d = det(m);
  if (d.sweep?.status === "running") stopSweep(m);
  m.st.set({det: fresh()});
}

// Esc: the proposals dropped, and those of the image's windows still being searched not shown
// by themselves either (a click asks for them)
function dismiss(m) {
  drop(m);
  det(m).dismissed = true;
}
const cls = (m) => m.page.doc.get().cls;
const count = (n) => `${n} proposal${n === 1 ? "" : "s"}`;  // "1 proposal", "12 proposals"
const showing = (m) => m.page.doc.get().mode === "detect";

// another mode picked: the proposals the image opened with wait for D (with what was
// rejected of them); clicks, their answer and a sweep are dropped
function leave(m) {
  const d = det(m);
  if (d.clicks.length || d.sweep || d.error || !d.result) drop(m);
}

// Once a trained detector serves, an image nobody has started opens with its proposals:
// no click needed; a click of a class then reruns the detector with that click. A large
// image's come from the sweep, what is on screen first. Before that, once an image is
// finished, an image opens with SAM's proposals like the finished objects (asked again when
// its proposals are made, if they were not yet).
// In another mode they are asked all the same, and wait for D (waiting()); a large image's
// sweep starts once D is picked.
function opened(m) {
  const {project, prep} = m.page.doc.get(), d = det(m);
  if (!opensWith(m) || d.dismissed || (d.result && (!partly(d) || touched(d))) || d.asking) return;
  if (m.page.doc.get().image.tiles && !showing(m)) return;
  if (servedDetector(project)) return detectNow(m, "on open");
  if (prep?.proposals === "ready" || prep?.proposals_partial) return detectNow(m, "on open");
}

// the answer shown came from the windows of the image searched so far
const partly = (d) => d.result?.proposals?.state === "partial";
// the person acted on the answer shown (accepted, rejected or drew over one of its proposals,
// or fitted its edges): it is not asked again by itself as more of the image is searched
const touched = (d) => !!d.touched;

// whether the image opens with proposals once they are made: nothing saved or clicked yet,
// and a trained detector serves or an image of the project is finished (SAM's proposals;
// not on a large image, whose proposals come from the sweep)
function opensWith(m) {
  const {project, anns, image} = m.page.doc.get();
  if (anns.size || det(m).clicks.length) return false;
  return !!servedDetector(project) || (finishedImages(project) > 0 && !image.tiles);
}

// a version whose pick was the training-free start has no network: null
const servedDetector = (project) => (project.detector && project.detector.method !== "training-free" ? project.detector : null);
const finishedImages = (project) => (project.by_status?.done ?? 0) + (project.by_status?.reviewed ?? 0);

// D picked on the open image: what waited shows (less what was saved meanwhile), else it
// is asked as on open
function picked(m) {
  const d = det(m);
  if (!d.result) return opened(m);
  for (const i of alreadyBoxed(m.page.doc.get().anns.values(), d.result)) d.replaced.add(i);
  m.st.set();
  m.page.panel();
  say(`${count(shown(m).length)} on open: Enter accepts, a click adds what is missing`);
}

// in the other modes' panels: the proposals waiting for D, or those being made for it
function waiting(m) {
  const d = det(m), r = d.result, prep = m.page.doc.get().prep;
  if (r && !d.clicks.length) {
    const saved = alreadyBoxed(m.page.doc.get().anns.values(), r);
    const n = shown(m).filter((i) => !saved.has(i)).length;
    return n ? `${n} proposal${n === 1 ? "" : "s"} waiting: D shows them` : "";
  }
  if (!opensWith(m) || prep?.proposals !== "making") return "";
  const windows = prep.proposals_windows ? `: ${prep.proposals_done} of ${prep.proposals_windows} windows` : "";
  return `finding objects${windows}; D shows them when they are ready`;
}

// the image's SAM proposals are made: clicks feature similarity answered are asked again
// (their look-alikes now come from the proposals); else the image opens with them
function proposalsReady(m) {
  const d = det(m);
  if (d.clicks.length && d.result?.method === "training-free") return detectNow(m, "from this image's SAM proposals, now made");
  if (partly(d) && !touched(d)) return detectNow(m, d.clicks.length ? "from all of this image's SAM proposals" : "on open");
  if (d.more && !d.result) return detectNow(m, "from the rest of the image");
  return opened(m);
}

// another window of the image is searched: an answer from the windows before, not acted on
// yet, is asked again; after Enter on one, what the windows hold beyond the boxes saved;
// else the image opens with what they hold (not after Esc)
function proposalsMore(m) {
  const d = det(m);
  if (d.dismissed) return;
  if (partly(d) && !touched(d)) return detectNow(m, "");
  if (d.more && !d.result) return detectNow(m, "from more of the image");
  if (!d.result) return opened(m);
}

// a drag draws a box; a click on a proposal of the picked class accepts that one alone, a
// right-click on a proposal rejects it; any other click is a click-to-detect
async function release(m, d, moved, rect) {
  if (d.button === 0 && moved) return drawBox(m, rect);
  if (moved || ![0, 2].includes(d.button)) return;
  if (!m.page.view.inside(d.x0, d.y0)) return say("that click is outside the image", true);
  if (det(m).busy) await det(m).busy;  // the proposals the person sees once the answer under way lands
  const r = det(m).result;
  const hit = r ? proposalAt(r, shown(m), d.x0, d.y0, d.button === 0 ? cls(m) : null) : null;
  if (d.button === 2) return hit == null ? say("a right-click on a proposal rejects it: there is none here", true) : reject(m, hit);
  if (hit != null) return acceptOne(m, hit);
  // a click on an object whose proposal was rejected: the person says it is one after all
  det(m).rejected = det(m).rejected.filter((p) => p.label !== cls(m) || !holds(p.box, d.x0, d.y0));
  det(m).clicks.push([d.x0, d.y0, cls(m)]);
  m.page.log("click", {mode: "detect", x: d.x0, y: d.y0, class_id: cls(m)});
  await detectNow(m);
}

// what the proposals missed, drawn without leaving the mode: it takes the place of the
// proposals it is drawn over (detect_boxes.drawnOver), and the one of its class it overlaps
// most shows how this image's edges are drawn (E)
async function drawBox(m, rect) {
  const d = det(m), r = d.result;
  const under = r && !r.rboxes ? drawnOver(r, shown(m), rect, cls(m), REPLACE_IOU) : [];
  const own = under.find((i) => r.labels[i] === cls(m));
  if (own != null) d.drawn.push({label: cls(m), from: (r.unfitted ?? r.boxes)[own], to: rect});
  const hide = hider(m, d, r, under, []);
  hide(true);
  if (under.length) d.touched = true;
  await m.page.changes.change([{class_id: cls(m), kind: "box", geometry: {box: rect}, source: "manual"}], [], "draw", {undo: () => hide(false), redo: () => hide(true)});
  if (under.length) say(`the ${under.length === 1 ? "proposal" : `${under.length} proposals`} under the box you drew ${under.length === 1 ? "is" : "are"} replaced by it`);
  m.page.panel();
}

// the proposal `i` accepted alone, with the shown proposals its box holds (duplicates); the
// others stay shown; Ctrl+Z shows them again
async function acceptOne(m, i) {
  const d = det(m), r = d.result;
  const create = [{class_id: r.labels[i], kind: r.rboxes ? "rbox" : "box", score: r.scores[i], source: "detect",
    geometry: r.rboxes ? {rbox: r.rboxes[i]} : {box: r.boxes[i]}}];
  const held = [...alreadyBoxed(create, r)].filter((k) => !d.replaced.has(k));
  const hide = hider(m, d, r, [i, ...held], create);
  hide(true);
  d.touched = true;
  const made = await m.page.changes.change(create, [], "accept", {undo: () => hide(false), redo: () => hide(true)});
  if (!made) return hide(false);
  if (d.result !== r) hide(true);  // an answer that landed meanwhile: its boxes the saved one holds
  say(`1 proposal accepted; ${shown(m).length} still shown: Enter accepts them, a right-click or X rejects one`);
  m.page.panel();
}

// what shows or hides the proposals `indices` of the answer `r` as a step is redone (on) or
// undone; once another answer replaced `r`, a redo hides those the saved boxes `create` hold
// in it, and an undo leaves it as it is
function hider(m, d, r, indices, create) {
  return (on) => {
    if (det(m) !== d) return;
    if (d.result === r) for (const k of indices) on ? d.replaced.add(k) : d.replaced.delete(k);
    else if (on) for (const k of alreadyBoxed(create, d.result)) d.replaced.add(k);
    m.st.set();
  };
}

// the proposal `i` rejected: hidden, and kept hidden in the answers to further clicks
function reject(m, i) {
  const d = det(m), r = d.result;
  d.replaced.add(i);
  d.touched = true;
  d.rejected.push({label: r.labels[i], box: r.boxes[i]});
  m.page.log("reject", {mode: "detect", class_id: r.labels[i], box: r.boxes[i], score: r.scores[i]});
  m.st.set();
  m.page.panel();
  say(`proposal rejected; ${shown(m).length} still shown (Esc drops them all)`);
}

// X: the proposal under the pointer rejected
function rejectUnder(m) {
  const r = det(m).result, at = m.page.mouse;
  const hit = r && at ? proposalAt(r, shown(m), at[0], at[1]) : null;
  if (hit == null) say("X rejects the proposal under the pointer: there is none there", true);
  else reject(m, hit);
  return true;
}

async function detectNow(m, when = "") {
  const t0 = performance.now();
  const d = det(m);
  Object.assign(d, {asking: (d.asking ?? 0) + 1, error: null});
  m.page.panel();
  d.busy = (d.busy || Promise.resolve()).then(async () => {
    // the proposals rejected: negative exemplars of the look-alikes (E-fitted boxes, as shown)
    const rejected = d.rejected.map((p) => [...p.box, p.label]);
    const out = await api("POST", `/api/images/${m.page.doc.get().image.id}/detect`, {clicks: d.clicks, ...(rejected.length ? {rejected} : {})});
    // replaced: the answer's boxes a saved box already holds (no duplicate on Enter), then those drawn over
    Object.assign(d, {answer: out, result: out, replaced: alreadyBoxed(m.page.doc.get().anns.values(), out), answered: d.clicks.length});
    for (const [label, delta] of d.fitted) moveEdges(out, +label, delta);  // E's fit holds for the new answer
    for (const i of rejectedIn(d.rejected, out)) d.replaced.add(i);  // rejected stays rejected (as shown: fitted)
    if (d.sweep) combine(m, d, d.sweep);  // what the last sweep found stays shown until the next one's boxes come
    // the serving detector's best-F1 threshold on held-out finished images, until the user moves the slider
    // (the look-alikes among SAM's proposals: their default score)
    const from = out.min_score ?? out.proposals?.threshold;
    if (from != null && !m.st.get().minScoreByHand) m.st.set({minScore: sliderValue(from)});
    const how = when ? ` ${when}: Enter accepts, a click adds what is missing` : "";
    if (showing(m)) say(`${count(shown(m).length)}${how} in ${(performance.now() - t0).toFixed(0)} ms`);
  }).catch((err) => { d.error = err.message; })  // api() has already shown it
    .finally(() => { d.asking -= 1; m.st.set(); m.page.panel(); });
  await d.busy;
  // a large image: the rest swept in the background (on open, the trained detector's proposals)
  if (m.page.doc.get().image.tiles && (d.clicks.length || when) && !d.error) sweep(m, d, d.clicks.length);
  return d.busy;
}

// the rest of a large image, swept by the server in the background: started (or joined,
// for the same clicks) and followed until it ends, the clicks change or the proposals go
async function sweep(m, d, clicks) {
  const url = `/api/images/${m.page.doc.get().image.id}/lookalikes`;
  const live = () => det(m) === d && d.clicks.length === clicks;
  let s = null;
  try {
    s = await api("POST", url, {clicks: d.clicks.slice(0, clicks), view: m.page.view.visibleBounds()});
    while (live()) {
      combine(m, d, s);
      m.st.set();
      m.page.panel();
      if (s.status === "done") say(`${count(shown(m).length)}: the whole image was looked over in ${s.seconds.toFixed(0)} s`);
      if (s.status !== "running") break;
      await new Promise((done) => setTimeout(done, SWEEP_POLL_MS));
      if (live()) s = await api("GET", url);
    }
  } catch (err) {  // api() has shown it; the click's proposals stay
    if (live()) { d.sweepError = err.message; m.page.panel(); }
  }
}

function stopSweep(m) {
  api("DELETE", `/api/images/${m.page.doc.get().image.id}/lookalikes`).catch(() => {});
}

// the click's answer with the sweep's boxes that are not already in it appended (the
// replaced ones among those stay replaced)
function combine(m, d, s) {
  const a = d.answer, n = a.boxes.length, before = d.result, own = a.unfitted ?? a.boxes;  // SAM's boxes, as the sweep's
  const gone = new Set([...d.replaced].filter((i) => i >= n).map((i) => String(before.boxes[i])));
  const oriented = n ? !!a.rboxes : !!s.rboxes;  // an empty answer (on open) takes the sweep's kind
  const extra = s.boxes.map((_, i) => i).filter((i) => !!s.rboxes === oriented && own.every((b) => iou(b, s.boxes[i]) < SAME_IOU));
  d.sweep = s;
  d.result = {
    ...a,
    method: a.method === "none" ? s.method : a.method,  // on open, no window was detected but the sweep's
    boxes: [...(a.unfitted ?? a.boxes), ...extra.map((i) => s.boxes[i])],
    unfitted: undefined,  // E's fit is applied again below, to the sweep's boxes too
    scores: [...a.scores, ...extra.map((i) => s.scores[i])],
    labels: [...a.labels, ...extra.map((i) => s.labels[i])],
    rboxes: oriented ? [...(a.rboxes ?? []), ...extra.map((i) => s.rboxes[i])] : null,
    swept: true,
  };
  for (const [label, delta] of d.fitted) moveEdges(d.result, label, delta);
  d.replaced = new Set([...d.replaced].filter((i) => i < n));
  d.result.boxes.forEach((b, i) => { if (i >= n && gone.has(String(b))) d.replaced.add(i); });
  for (const i of alreadyBoxed(m.page.doc.get().anns.values(), d.result)) if (i >= n) d.replaced.add(i);  // the sweep's, already saved
  for (const i of rejectedIn(d.rejected, d.result)) if (i >= n) d.replaced.add(i);
}

async function accept(m) {
  if (det(m).busy) await det(m).busy;
  const r = det(m).result;
  if (!r) return;
  const sweeping = det(m).sweep?.status === "running";
  const create = shown(m).map((i) => ({
    class_id: r.labels[i], kind: r.rboxes ? "rbox" : "box",
    geometry: r.rboxes ? {rbox: r.rboxes[i]} : {box: r.boxes[i]}, score: r.scores[i], source: "detect"}));
  const [vx0, vy0, vx1, vy1] = m.page.view.visibleBounds();
  const off = shown(m).filter((i) => { const b = r.boxes[i]; return b[2] < vx0 || b[0] > vx1 || b[3] < vy0 || b[1] > vy1; }).length;
  const {drawn, fitted, rejected} = det(m), more = partly(det(m));
  drop(m);
  Object.assign(det(m), {drawn, fitted, rejected});  // E's edges and the rejections hold for the next clicks
  det(m).more = more;  // accepted from part of the image: the rest shows as it is searched
  const rest = sweeping ? " (the sweep of the rest of the image stopped: click again to go on)" : "";
  const unseen = off ? `; ${off} of them off screen: Review (R) lists them from the least sure` : "";
  if (await m.page.changes.change(create, [], "accept")) say(`${create.length} proposals accepted${rest}${unseen}: Ctrl+Z takes them back`);
  m.page.panel();
}

function buildPanel(m, el) {
  helpPanel(el, "detect", "");
  el.querySelector("#mode-help").insertAdjacentHTML("beforebegin", `<div id="detect-status"></div><progress id="detect-progress" hidden></progress>`);
  el.insertAdjacentHTML("beforeend", `<div id="boxes-from"></div><div id="exemplars" hidden></div><div id="fit-edges" class="muted" hidden></div><div id="sweep" class="muted" hidden></div><label class="muted">proposals from score
    <input id="min-score" type="range" min="0.05" max="0.95" step="0.05" value="${m.st.get().minScore}"></label>
    <span class="muted" id="below-score"></span>
    <div class="muted" id="suggested-score"></div>`);
  const slider = el.querySelector("#min-score");
  slider.addEventListener("input", (e) => { m.st.set({minScore: +e.target.value, minScoreByHand: true}); m.page.panel(); });
  slider.addEventListener("change", (e) => m.page.log("threshold", {mode: "detect", min_score: +e.target.value}));
}

// built once, then updated in place: a redraw in the middle of a drag of the score
// slider would end the drag (each drag moved it one step)
function panel(m, el) {
  if (!el.querySelector("#min-score")) buildPanel(m, el);
  const s = state(m), r = s.result, doc = m.page.doc.get(), said = panelTexts(s, doc);
  el.querySelector("#detect-status").textContent = said.status;
  showProgress(el.querySelector("#detect-progress"), s.result || s.asking ? null : doc.prep);
  el.querySelector("#mode-help").textContent = said.help;
  for (const [id, text] of [["#boxes-from", said.from], ["#fit-edges", said.fit], ["#sweep", said.sweep], ["#suggested-score", said.suggested]]) {
    el.querySelector(id).textContent = text;
    el.querySelector(id).hidden = !text;
  }
  exemplarsPanel(el.querySelector("#exemplars"), r?.proposals?.exemplar_boxes ?? [], doc.classes, (e) => removeExemplar(m, e));
  const slider = el.querySelector("#min-score");
  if (+slider.value !== s.minScore) slider.value = s.minScore;
  el.querySelector("#below-score").textContent = said.below;
}

// the bar under the status line while the image's proposals are made, window by window
function showProgress(bar, prep) {
  bar.hidden = !(prep?.proposals === "making" && prep.proposals_windows);
  if (bar.hidden) return;
  bar.max = prep.proposals_windows;
  bar.value = prep.proposals_done;
}

// what the panel's texts are said from (detect_text.js's panelTexts), of a detect state
// (state()) and the page's doc (image, project, prep, anns, classes)
export function statusView(s, doc) {
  const {project, prep, image, anns} = doc;
  return {
    prep, clicks: s.clicks.length, result: s.result, shown: shownProposals(s), below: belowSlider(s),
    floor: rescueFloor(s), rescueSpan: RESCUE_SPAN, minScore: s.minScore, asking: !!s.asking, error: s.error ?? null,
    sweep: s.sweep ?? null, finished: finishedImages(project), detector: servedDetector(project), saved: anns.size,
    large: !!image.tiles,
  };
}

// every text of the panel: the status line says the count shown; the rest says none
export const panelTexts = (s, doc) => texts(s, statusView(s, doc), doc.classes);

async function removeExemplar(m, e) {
  try {
    await api("PUT", `/api/annotations/${e.annotation_id}/exemplar`, {exemplar: false});
  } catch { return; }  // api() has said why
  m.page.log("exemplar", {mode: "detect", annotation_id: e.annotation_id, class_id: e.class_id, exemplar: false});
  await detectNow(m, "matched without that object");
}

function draw(m, ctx, lw, drag) {
  const r = det(m).result;
  if (r) {
    ctx.setLineDash([5 * lw, 3 * lw]);
    ctx.lineWidth = 1.5 * lw;
    for (const i of shown(m)) {
      ctx.strokeStyle = m.page.color(r.labels[i]);
      if (r.rboxes) poly(ctx, rboxCorners(r.rboxes[i])); else strokeBox(ctx, r.boxes[i]);
    }
    ctx.setLineDash([]);
  }
  for (const [cx, cy, c] of det(m).clicks) cross(ctx, cx, cy, m.page.color(c), lw);
  m.page.dragRect(ctx, drag, lw);
}


// the proposals shown and accepted, of a detect state {result, clicks, replaced, minScore,
// minScoreByHand}: at or above the chosen score (a click's own box has score 1); until the
// slider is moved, a class nobody clicked yet shows from its own score, where the serving
// detector's proposals without clicks saved the most on the images it never saw (test, then train)
export function shownProposals(s) {
  const r = s.result;
  if (!r) return [];
  const floor = rescueFloor(s);
  const clicked = new Set(s.clicks.map((c) => c[2]));
  const own = (label) => (s.minScoreByHand || clicked.has(label) ? null : r.min_scores?.[label]);
  const least = (i) => floor ?? Math.min(1, own(r.labels[i]) ?? s.minScore);
  return r.boxes.map((_, i) => i).filter((i) => r.scores[i] >= least(i) && !s.replaced?.has(i));
}

// The scores the page starts from never hide every box of an image the detector boxes
// objects on (issue 53): when, slider untouched, they hide them all, the boxes from the best
// score less RESCUE_SPAN show (from RESCUE_FLOOR up, the page's lowest start). That score,
// or null when the page's own scores show something (or the person moved the slider).
export const RESCUE_SPAN = 0.2, RESCUE_FLOOR = 0.3;
export function rescueFloor(s) {
  const r = s.result;
  if (!r || s.minScoreByHand || !r.scores.length) return null;
  const clicked = new Set(s.clicks.map((c) => c[2]));
  const own = (label) => (clicked.has(label) ? null : r.min_scores?.[label]);
  if (r.scores.some((score, i) => score >= Math.min(1, own(r.labels[i]) ?? s.minScore))) return null;
  const floor = Math.max(RESCUE_FLOOR, Math.max(...r.scores) - RESCUE_SPAN);
  return Math.max(...r.scores) >= floor ? floor : null;
}

// the proposals of the answer the slider's scores leave out (those replaced left out too)
export function belowSlider(s) {
  const r = s.result;
  if (!r) return [];
  const shown = new Set(shownProposals(s));
  return r.boxes.map((_, i) => i).filter((i) => !shown.has(i) && !s.replaced?.has(i));
}

// no clicks, no answer, no proposal replaced by a box drawn over it, no edges fitted (drawn:
// the boxes drawn over a proposal of their class, each {label, from, to}; fitted: class ->
// the edges' move E applied)
const fresh = () => ({clicks: [], result: null, replaced: new Set(), drawn: [], fitted: new Map(), rejected: []});

// E: the proposals of the class of the last box drawn over one, moved by the mean of the
// edges' moves of every box of that class drawn over one (edgeMove)
function fitEdges(m) {
  const d = det(m), r = d.result, last = d.drawn.at(-1);
  if (!r || !last || r.rboxes) return say("draw a box over a proposal of its class first: E then moves the other proposals of that class by the same edges", true);
  const delta = edgeMove(d.drawn.filter((p) => p.label === last.label));
  d.fitted.set(last.label, delta);
  moveEdges(r, last.label, delta);
  const moved = shown(m).filter((i) => r.labels[i] === last.label).length;
  m.page.log("fit", {mode: "detect", class_id: last.label, proposals: moved, edges: delta});
  m.st.set();
  m.page.panel();
  say(`${moved} proposals moved by the edges of the ${fitText(d, last.label)}`);
}

// the slider's step at or below the threshold, so that proposals scored at it still show
export function sliderValue(threshold) {
  return Math.min(0.95, Math.max(0.05, Math.floor(threshold * 20 + 1e-9) / 20));
}
