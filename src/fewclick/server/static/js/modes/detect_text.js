// Detect mode's panel text (modes/detect.js): what made the proposals, how many, where the
// slider starts and how far a large image's sweep has gone.
import {METHODS} from "../text.js";

// what the training-free start found besides the clicked objects (which come back at score 1):
// only what is nearly as like them as they are to themselves, and no texture when nothing is
function lookAlikes(r) {
  const n = r.scores.filter((s) => s < 1).length;
  if (n === 0) return "Nothing else here is as like the clicked objects as they are to themselves: click another object, or draw its box.";
  const where = r.swept ? " per window of 1024 px" : "";  // a large image: the cap holds in each window
  const cap = r.look_alike_limit != null ? `, at most ${r.look_alike_limit}${where} (3 per object of your fullest finished image)` : "";
  return `${n} look-alike${n === 1 ? "" : "s"} nearly as like the clicked objects as they are to themselves${cap}.`;
}

// the look-alikes among the image's SAM proposals: how many, of how many, and the clicks SAM found nothing at
function proposalsText(r) {
  const p = r.proposals, n = p.shown;
  const found = n === 0 ? `Nothing like ${matchedTo(r)} among this image's ${p.made} SAM proposals: click an object, or draw its box.`
    : `${n} look-alike${n === 1 ? "" : "s"} among this image's ${p.made} SAM proposals.`;
  const none = p.unboxed.length ? ` SAM found no object of its own at click${p.unboxed.length === 1 ? "" : "s"} ${p.unboxed.map((i) => i + 1).join(", ")}: boxed from the click alone.` : "";
  const rejected = p.rejected ? ` ${p.rejected} proposal${p.rejected === 1 ? "" : "s"} you rejected kept what is like ${p.rejected === 1 ? "it" : "them"} out.` : "";
  return found + none + rejected;
}

// what the look-alikes are like: the clicked objects, the finished images' objects, or both
function matchedTo(r) {
  const n = r.proposals.exemplars ?? 0;
  const finished = `${n} object${n === 1 ? "" : "s"} of your finished images`;
  const clicked = r.scores.some((s) => s === 1);
  return n && clicked ? `the clicked objects and ${finished}` : n ? finished : "the clicked objects";
}

// the image's SAM proposals are still being made: what answers meanwhile
function making(r) {
  return r.proposals?.state === "making" ? " This image's SAM proposals are still being made: your clicks are asked again once they are." : "";
}

// how far the sweep of a large image has gone, and what it found
export function sweepText(s, error) {
  const found = `${s.boxes.length} box${s.boxes.length === 1 ? "" : "es"} found`;
  const where = `${s.windows_done} of ${s.windows} windows of 1024 px`;
  if (error) return `The rest of the image: ${where}, ${found}; the page stopped following it (${error}).`;
  if (s.status === "running") return `Looking over the rest of the image (what is on screen first): ${where}, ${found} so far, ${s.seconds.toFixed(0)} s.`;
  if (s.status === "done") return `The whole image was looked over: ${found} in ${s.seconds.toFixed(0)} s.`;
  if (s.status === "failed") return `The sweep of the rest of the image failed after ${where}: ${s.message}`;
  return `The sweep of the rest of the image stopped after ${where}; ${found}.`;
}

// where the shown proposals start: the slider's score, or each class's own
export function scoreText(s, classes) {
  const clicked = new Set(s.clicks.map((c) => c[2]));
  const per = Object.entries((s.minScoreByHand ? null : s.result?.min_scores) ?? {}).filter(([c]) => !clicked.has(+c));
  if (!per.length) return `at score >= ${s.minScore.toFixed(2)}`;
  const each = per.map(([c, t]) => `${classes.get(+c)?.name ?? c} ${t > 1 ? "none" : t.toFixed(2)}`);
  return `from each unclicked class's score of least work on held-out finished images (${each.join(", ")}; others ${s.minScore.toFixed(2)}; the slider sets one for all)`;
}


export function suggestion(threshold, byHand) {
  const where = byHand ? "you moved the slider" : "the slider starts there";
  return `best F1 on held-out finished images at score ${threshold.toFixed(2)} (${where})`;
}

// which model made the proposals: the detect answer's model_version and method
export function boxesFrom(r, classes) {
  const said = r.fallback ? `${fellBack(r)} ` : "";
  return said + servedBy(r, classes);
}

// the serving detector did not answer (its file cannot be read, or it knows other classes): why, and who did
function fellBack(r) {
  return `${r.fallback[0].toUpperCase()}${r.fallback.slice(1)}.`;
}

function servedBy(r, classes) {
  if (r.model_version == null && r.method === "look-alikes") return `boxes from: SAM's proposals of this image, matched to ${matchedTo(r)} — no trained detector yet. ${proposalsText(r)}${fitted(r, classes)}`;
  if (r.model_version == null && r.method === "training-free") return `boxes from: training-free start (feature similarity) — no trained detector yet. ${lookAlikes(r)}${making(r)}${fitted(r, classes)}`;
  if (r.model_version == null && r.fallback) return `boxes from: ${r.method === "template" ? "template correlation" : "training-free start"}`;
  if (r.model_version == null) return "boxes from: training-free start (feature similarity) — no trained detector yet";
  return `boxes from: detector v${r.model_version} (${METHODS[r.method] ?? r.method})${fitted(r, classes)}${tight(r, classes)}`;
}

// the classes whose proposals SAM makes tight: where that put more at IoU 0.7 on held-out finished images
function tight(r, classes) {
  const names = (r.tight_classes ?? []).map((c) => classes.get(c)?.name ?? c);
  return names.length ? ` Proposals of ${names.join(", ")} are made tight by SAM (it boxed more of them right on your held-out images).` : "";
}

// the classes whose SAM boxes (a click's own box) take the edges of your finished boxes
function fitted(r, classes) {
  const names = (r.fitted_classes ?? []).map((c) => classes.get(c)?.name ?? c);
  return names.length ? ` SAM's boxes of ${names.join(", ")} are fitted to the edges of your finished boxes.` : "";
}
