// Click-to-detect (D): a click on an object of the picked class; boxes of every object of
// every class come back as proposals; more clicks refine; Enter (or Submit) accepts those
// shown. A drag draws a box of the picked class by hand, the proposals staying as they are,
// but for the one it is drawn over (IoU >= REPLACE_IOU), which it takes the place of: a
// loose proposal is fixed by drawing it right, with no Enter first.
import {api, say} from "../api.js";
import {change} from "../changes.js";
import {logEvent} from "../events.js";
import {helpPanel, renderPanel} from "../panel.js";
import {S} from "../state.js";
import {METHODS} from "../text.js";
import {cross, dragRect, insideImage, poly, rboxCorners} from "../view.js";

const REPLACE_IOU = 0.3;  // the campaign's NEAR_IOU: a box this close to an object is dragged onto it

export const detect = {
  name: "detect", key: "d", title: "Detect (D)",
  init() { S.detect = fresh(); },
  leave() { S.detect = fresh(); },
  escape() { S.detect = fresh(); },

  async release(d, moved, rect) {
    if (d.button !== 0) return;
    if (moved) {  // what the proposals missed, drawn without leaving the mode
      const under = S.detect.result?.rboxes ? null : drawnOver(rect);
      if (under != null) { S.detect.replaced.add(under); S.dirty = true; }
      await change([{class_id: S.cls, kind: "box", geometry: {box: rect}, source: "manual"}], [], "draw");
      if (under != null) say("the proposal under the box you drew is replaced by it");
      renderPanel();
      return;
    }
    if (!insideImage(d.x0, d.y0)) return say("that click is outside the image", true);
    S.detect.clicks.push([d.x0, d.y0, S.cls]);
    logEvent("click", {mode: "detect", x: d.x0, y: d.y0, class_id: S.cls});
    await detectNow();
  },

  accept: acceptDetections,
  // the proposals a submit accepts: those shown
  acceptOnSubmit: () => (S.detect.result ? shownProposals().length : 0),

  // built once, then updated in place: a redraw in the middle of a drag of the score
  // slider would end the drag (each drag moved it one step)
  panel(el) {
    if (!el.querySelector("#min-score")) buildPanel(el);
    el.querySelector("#mode-help").textContent = `Click an object of the picked class: boxes for all such objects appear. More clicks refine; a drag draws a box (drawn over a proposal, it takes its place). Enter (or Submit) accepts, Esc drops. ${S.detect.clicks.length} clicks, ${shownProposals().length} proposals ${scoreText()}.`;
    const from = el.querySelector("#boxes-from"), suggested = el.querySelector("#suggested-score");
    from.textContent = S.detect.result ? boxesFrom(S.detect.result) : "";
    from.hidden = !S.detect.result;
    suggested.textContent = S.detect.result?.min_score != null ? suggestion(S.detect.result.min_score) : "";
    suggested.hidden = S.detect.result?.min_score == null;
    const slider = el.querySelector("#min-score");
    if (+slider.value !== S.minScore) slider.value = S.minScore;
  },

  // what the page has not saved yet, for the status lines
  unsaved: () => (S.detect.result ? `${shownProposals().length} proposals not accepted` : ""),

  draw(ctx, lw) {
    const r = S.detect.result;
    if (r) {
      ctx.setLineDash([5 * lw, 3 * lw]);
      ctx.lineWidth = 1.5 * lw;
      for (const i of shownProposals()) {
        const b = r.boxes[i];
        ctx.strokeStyle = S.classes.get(r.labels[i])?.color ?? "#fff";
        if (r.rboxes) poly(rboxCorners(r.rboxes[i])); else ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      }
      ctx.setLineDash([]);
    }
    for (const [cx, cy, c] of S.detect.clicks) cross(cx, cy, S.classes.get(c)?.color ?? "#fff", lw);
    if (S.drag?.kind === "press") dragRect(S.drag, lw);
  },
};

function buildPanel(el) {
  helpPanel(el, "detect", "");
  el.insertAdjacentHTML("beforeend", `<div id="boxes-from"></div><label class="muted">proposals from score
    <input id="min-score" type="range" min="0.05" max="0.95" step="0.05" value="${S.minScore}"></label>
    <div class="muted" id="suggested-score"></div>`);
  const slider = el.querySelector("#min-score");
  slider.addEventListener("input", (e) => { S.minScore = +e.target.value; S.minScoreByHand = true; S.dirty = true; renderPanel(); });
  slider.addEventListener("change", (e) => logEvent("threshold", {mode: "detect", min_score: +e.target.value}));
}

// Once a trained detector serves, an image nobody has started opens with its proposals:
// no click needed; a click of a class then reruns the detector with that click.
export async function proposeOnOpen() {
  const served = S.project.detector;  // a version whose pick was the training-free start has no network
  if (!served || served.method === "training-free" || S.anns.size || S.detect.clicks.length) return;
  await detectNow("on open");
}

async function detectNow(when = "") {
  const t0 = performance.now();
  const det = S.detect;
  det.busy = (det.busy || Promise.resolve()).then(async () => {
    const out = await api("POST", `/api/images/${S.image.id}/detect`, {clicks: det.clicks});
    det.result = out;
    det.replaced = new Set();  // the indices of the answer before
    det.answered = det.clicks.length;
    // the serving detector's best-F1 threshold on held-out finished images, until the user moves the slider
    if (out.min_score != null && !S.minScoreByHand) S.minScore = sliderValue(out.min_score);
    S.lastLatency = performance.now() - t0;
    S.dirty = true;
    renderPanel();
    const how = when ? ` ${when}: Enter accepts, a click adds what is missing` : "";
    say(`${shownProposals().length} proposals${how} in ${S.lastLatency.toFixed(0)} ms`);
  }).catch((err) => { det.error = err.message; });  // api() has already shown it
  return det.busy;
}

// the proposals shown and accepted: at or above the chosen score (a click's own box has score 1);
// until the slider is moved, a class nobody clicked yet shows from its own score, where the
// serving detector's proposals without clicks left the least work on held-out finished images
export function shownProposals() {
  const r = S.detect.result;
  if (!r) return [];
  const clicked = new Set(S.detect.clicks.map((c) => c[2]));
  const own = (label) => (S.minScoreByHand || clicked.has(label) ? null : r.min_scores?.[label]);
  const least = (i) => own(r.labels[i]) ?? S.minScore;
  return r.boxes.map((_, i) => i).filter((i) => r.scores[i] >= Math.min(1, least(i)) && !S.detect.replaced?.has(i));
}

// no clicks, no answer, no proposal replaced by a box drawn over it
const fresh = () => ({clicks: [], result: null, replaced: new Set()});

// the shown proposal a box drawn at ``rect`` is drawn over: the one it overlaps most, at
// IoU >= REPLACE_IOU, or null
function drawnOver(rect) {
  let best = null, most = REPLACE_IOU;
  for (const i of shownProposals()) {
    const v = iou(rect, S.detect.result.boxes[i]);
    if (v >= most) { best = i; most = v; }
  }
  return best;
}

function iou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

async function acceptDetections() {
  if (S.detect.busy) await S.detect.busy;
  const r = S.detect.result;
  if (!r) return;
  const create = shownProposals().map((i) => ({
    class_id: r.labels[i], kind: r.rboxes ? "rbox" : "box",
    geometry: r.rboxes ? {rbox: r.rboxes[i]} : {box: r.boxes[i]}, score: r.scores[i], source: "detect"}));
  S.detect = fresh();
  if (await change(create, [], "accept")) say(`${create.length} proposals accepted: Ctrl+Z takes them back`);
  renderPanel();
}

// what the training-free start found besides the clicked objects (which come back at score 1):
// only what is nearly as like them as they are to themselves, and no texture when nothing is
function lookAlikes(r) {
  const n = r.scores.filter((s) => s < 1).length;
  if (n === 0) return "Nothing else here is as like the clicked objects as they are to themselves: click another object, or draw its box.";
  const cap = r.look_alike_limit != null ? `, at most ${r.look_alike_limit} (3 per object of your fullest finished image)` : "";
  return `${n} look-alike${n === 1 ? "" : "s"} nearly as like the clicked objects as they are to themselves${cap}.`;
}

// where the shown proposals start: the slider's score, or each class's own
function scoreText() {
  const clicked = new Set(S.detect.clicks.map((c) => c[2]));
  const per = Object.entries((S.minScoreByHand ? null : S.detect.result?.min_scores) ?? {}).filter(([c]) => !clicked.has(+c));
  if (!per.length) return `at score >= ${S.minScore.toFixed(2)}`;
  const each = per.map(([c, t]) => `${S.classes.get(+c)?.name ?? c} ${t > 1 ? "none" : t.toFixed(2)}`);
  return `from each unclicked class's score of least work on held-out finished images (${each.join(", ")}; others ${S.minScore.toFixed(2)}; the slider sets one for all)`;
}

// the slider's step at or below the threshold, so that proposals scored at it still show
function sliderValue(threshold) {
  return Math.min(0.95, Math.max(0.05, Math.floor(threshold * 20 + 1e-9) / 20));
}

function suggestion(threshold) {
  const where = S.minScoreByHand ? "you moved the slider" : "the slider starts there";
  return `best F1 on held-out finished images at score ${threshold.toFixed(2)} (${where})`;
}

// which model made the proposals: the detect answer's model_version and method
function boxesFrom(r) {
  if (r.model_version == null && r.method === "training-free") return `boxes from: training-free start (feature similarity) — no trained detector yet. ${lookAlikes(r)}${fitted(r)}`;
  if (r.model_version == null) return "boxes from: training-free start (feature similarity) — no trained detector yet";
  return `boxes from: detector v${r.model_version} (${METHODS[r.method] ?? r.method})${fitted(r)}${tight(r)}`;
}

// the classes whose SAM boxes (a click's own box) take the edges of your finished boxes
// the classes whose proposals SAM makes tight: where that put more at IoU 0.7 on held-out finished images
function tight(r) {
  const names = (r.tight_classes ?? []).map((c) => S.classes.get(c)?.name ?? c);
  return names.length ? ` Proposals of ${names.join(", ")} are made tight by SAM (it boxed more of them right on your held-out images).` : "";
}

function fitted(r) {
  const names = (r.fitted_classes ?? []).map((c) => S.classes.get(c)?.name ?? c);
  return names.length ? ` SAM's boxes of ${names.join(", ")} are fitted to the edges of your finished boxes.` : "";
}
