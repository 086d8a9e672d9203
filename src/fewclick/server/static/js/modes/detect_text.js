// Detect mode's panel text (modes/detect.js): the one status line (what the page is doing,
// or what it shows and from what), what made the proposals, where the slider starts, what E
// does and how far a large image's sweep has gone. Only the status line counts the proposals shown, and
// it counts them as the page shows them: the details say no count that could differ.
import {METHODS} from "../text.js";

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

// Every text of the panel, of a detect state `s`, what detect.js's statusView reads of it
// and the page (`v`) and the classes by id: the status line says the count shown; the rest
// says none.
export function panelTexts(s, v, names) {
  const r = s.result;
  return {
    status: statusLine(v),
    help: `Click an object of the picked class: boxes for all such objects appear. More clicks refine; a right-click or X rejects one; a drag draws a box (drawn over a proposal, it takes its place, and E moves the rest of its class by the same edges). Enter (or Submit) accepts, Esc drops. Proposals show ${v.floor == null ? scoreText(s, names) : `from score ${v.floor.toFixed(2)}: none reached its own`}.`,
    from: r ? boxesFrom(r, names) : "",
    fit: fitHint(s, names),
    sweep: s.sweep ? sweepText(s.sweep, s.sweepError) : "",
    suggested: suggestion(r, s.minScoreByHand),
    below: r ? belowText(v) : "",
  };
}

// "12 more below it (the best 0.41)"; when the page's scores would hide every box, what shows instead
function belowText(v) {
  const {below, floor} = v, scores = v.result.scores;
  const top = Math.max(...below.map((i) => scores[i]));
  const more = below.length ? `${below.length} more below it (the best of them ${top.toFixed(2)})` : "none below it";
  if (floor == null) return more;
  return `none reached its score, so those from ${floor.toFixed(2)} show (the best ${Math.max(...scores).toFixed(2)} less ${v.rescueSpan}); ${more}`;
}

// "the 2 boxes you drew over proposals of this class"
export function fitText(d, label) {
  const n = d.drawn.filter((p) => p.label === label).length;
  return `${n === 1 ? "box" : `${n} boxes`} you drew over ${n === 1 ? "a proposal" : "proposals"} of this class`;
}

// what E would do, or has done, for the class of the last box drawn over a proposal
function fitHint(d, names) {
  const last = d.drawn.at(-1);
  if (!last) return "";
  const name = names.get(last.label)?.name ?? last.label;
  const delta = d.fitted.get(last.label);
  if (!delta) return `E moves every ${name} proposal by the edges of the ${fitText(d, last.label)}.`;
  const edges = delta.map((v) => `${v >= 0 ? "+" : ""}${v.toFixed(1)}`).join(", ");
  return `${name} proposals moved by the edges of the ${fitText(d, last.label)} (x0, y0, x1, y1: ${edges} px); E again after another such box.`;
}

// The status line, from `v` (detect.js's statusView): prep (the image's preparation:
// null while asked, {failed}, or the server's {ready, needs_sam, proposals, proposals_done,
// proposals_windows}), clicks, result, shown and below (the indices the page shows, and
// those under the slider), floor (the score shown from when none reached its own, else
// null) and rescueSpan, minScore, asking (an answer under way), error (the last one
// failed), sweep (a large image's), large (the image is) and the project's: finished
// (images), detector (the served version, or null) and saved (this image's objects).
export function statusLine(v) {
  if (v.error) return `the last answer failed (${v.error}): click again, or draw the box`;
  if (v.asking) return asking(v);
  if (v.result) return answered(v);
  return preparing(v) ?? ready(v);
}

function asking(v) {
  const windows = findingWindows(v.prep);
  const also = windows ? ` (the proposals: ${windows})` : "";
  if (!v.clicks) return `asking for the proposals this image opens with...${also}`;
  return `boxing your ${plural(v.clicks, "click")}...${also}`;
}

// "3 of 6 windows" while the image's proposals are made, "" before their windows are counted
function findingWindows(p) {
  return p?.proposals_windows ? `${p.proposals_done} of ${p.proposals_windows} windows` : "";
}

// before any answer: the preparation under way, or null once there is none
function preparing(v) {
  const p = v.prep;
  if (!p) return "preparing image...";
  if (p.failed) return `cannot prepare this image (${p.failed}): a click is still answered, more slowly`;
  if (!p.needs_sam) return null;
  if (!p.ready) return "preparing image: SAM encodes it once (a second or two on a free core, longer on a busy machine)...";
  if (p.proposals === "making") {
    const windows = findingWindows(p);
    const then = v.finished && !v.saved ? "; those like your finished images show when it is done" : "; a click meanwhile is boxed by SAM alone";
    return `finding objects${windows ? `: ${windows}` : ""}${then}`;
  }
  if (p.proposals && p.proposals !== "ready") return `no proposals for this image (${p.proposals}): click an object, or draw its box`;
  return null;
}

// ready, nothing asked yet: what to do, and why nothing showed on open
function ready(v) {
  const todo = "click an object of the picked class to find the others like it";
  if (v.large) return `ready: ${todo}; the windows around your click are looked over first`;
  if (v.saved) return `ready: ${todo} (this image has saved objects, so nothing shows on open)`;
  if (!v.finished && !v.detector) return `ready: ${todo} (nothing shows on open before an image is finished)`;
  return `ready: ${todo}`;
}

// an answer is shown: how many proposals, from what, and what to do with them
function answered(v) {
  const r = v.result, n = v.shown.length;
  if (r.proposals?.state === "making" && v.clicks) {
    const windows = findingWindows(v.prep);
    return `your ${v.clicks === 1 ? "click is" : "clicks are"} boxed by SAM alone; look-alikes come when the proposals are ready${windows ? ` (${windows})` : ""}`;
  }
  if (v.sweep?.status === "running") return `${plural(n, "proposal")} shown; looking over the rest of the image: ${v.sweep.windows_done} of ${v.sweep.windows} windows`;
  const p = r.proposals, searched = p?.state === "partial" ? `; ${p.windows_done != null ? `${p.windows_done} of ${p.windows} windows` : "part"} of the image searched so far` : "";
  if (!n) return searched ? `nothing like your objects yet${searched}` : nothingShown(v);
  if (!v.clicks) return `${plural(n, "proposal")} shown on open, ${openedFrom(v)}${searched}: Enter accepts, a click adds what is missing`;
  const alike = r.model_version == null ? alikeText(v) : "";
  return `${plural(n, "proposal")} shown after your ${plural(v.clicks, "click")}${alike}${searched}: Enter accepts`;
}

// of the proposals shown, those that are not the clicked objects (at score 1)
function alikeText(v) {
  const k = v.shown.filter((i) => v.result.scores[i] < 1).length;
  if (k) return `, ${plural(k, "look-alike")} among them`;
  return v.below.length ? `, no look-alike above the slider (${v.below.length} below it)` : ", no look-alike found";
}

// what the proposals shown on open were found by
function openedFrom(v) {
  const r = v.result;
  if (r.model_version != null) return `found by detector v${r.model_version}`;
  const n = r.proposals?.exemplars ?? 0;
  if (n) return `like ${plural(n, "object")} of your ${plural(v.finished, "finished image")}`;
  return "from this image's SAM proposals";
}

function nothingShown(v) {
  const what = v.clicks ? "click another object" : "click an object of the picked class";
  if (v.below.length) return `nothing shown at score >= ${v.minScore.toFixed(2)} (${v.below.length} below it): lower the slider, ${what}, or draw its box`;
  const when = v.clicks ? `after your ${plural(v.clicks, "click")}` : "on open";
  return `nothing found ${when}: ${what}, or draw its box`;
}

// what the training-free start found besides the clicked objects (which come back at score 1):
// only what is nearly as like them as they are to themselves, and no texture when nothing is
function lookAlikes(r) {
  const where = r.swept ? " per window of 1024 px" : "";  // a large image: the cap holds in each window
  const cap = r.look_alike_limit != null ? `, at most ${r.look_alike_limit}${where} (3 per object of your fullest finished image)` : "";
  return `Look-alikes: only what is nearly as like the clicked objects as they are to themselves${cap}.`;
}

// the clicks SAM found nothing at, and the rejected proposals that kept their like out
function proposalsText(r) {
  const p = r.proposals;
  const none = p.unboxed.length ? ` SAM found no object of its own at click${p.unboxed.length === 1 ? "" : "s"} ${p.unboxed.map((i) => i + 1).join(", ")}: boxed from the click alone.` : "";
  const rejected = p.rejected ? ` ${p.rejected} proposal${p.rejected === 1 ? "" : "s"} you rejected kept what is like ${p.rejected === 1 ? "it" : "them"} out.` : "";
  return none + rejected;
}

// what the look-alikes are like: the clicked objects, the finished images' objects, or both
function matchedTo(r) {
  const n = r.proposals.exemplars ?? 0;
  const finished = `${n} object${n === 1 ? "" : "s"} of your finished images`;
  const clicked = r.scores.some((s) => s === 1);
  return n && clicked ? `the clicked objects and ${finished}` : n ? finished : "the clicked objects";
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
  return `from the score that saved most on the images the detector never saw, each unclicked class (${each.join(", ")}; others ${s.minScore.toFixed(2)}; the slider sets one for all)`;
}


// where the slider starts: the serving detector's best F1, or the look-alikes' default
// (and each class not clicked at its own score, when the finished images gave it one)
export function suggestion(r, byHand) {
  const where = byHand ? "you moved the slider" : "the slider starts there";
  if (r?.min_score != null) return `best F1 on held-out finished images at score ${r.min_score.toFixed(2)} (${where})`;
  const alike = r?.proposals?.threshold;
  if (alike == null) return "";
  const own = Object.keys(r.min_scores ?? {}).length ? "; a class not clicked starts at its own score of least work on your finished images" : "";
  return `look-alikes from score ${alike.toFixed(2)}, their default for a clicked class (${where})${own}`;
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
  if (r.model_version == null && r.proposals?.state === "making") return `boxes from: training-free start (SAM's own box of each clicked object) — no trained detector yet; the image's proposals are being made.${fitted(r, classes)}`;
  if (r.model_version == null && r.method === "look-alikes") return `boxes from: SAM's proposals of this image (${r.proposals.made} made), matched to ${matchedTo(r)} — no trained detector yet.${proposalsText(r)}${fitted(r, classes)}`;
  if (r.model_version == null && r.method === "training-free") return `boxes from: training-free start (feature similarity) — no trained detector yet. ${lookAlikes(r)}${fitted(r, classes)}`;
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
