// Box-to-mask (M): drag a box (or click a box object) and its mask appears; left clicks add
// to it, right clicks remove; Tab (Shift+Tab) switches to SAM's other candidate masks;
// A / E take the brush / the eraser (again: back to clicks) and [ / ] change its size: a
// drag then paints a stroke over the mask; Ctrl+Z / Ctrl+Shift+Z undo and redo the clicks,
// switches and strokes; Enter accepts the mask shown (replacing the box object it came from).
import {api, esc, say} from "../api.js";
import {change} from "../changes.js";
import {logEvent} from "../events.js";
import {helpPanel, prepareLine, renderPanel} from "../panel.js";
import {rleCanvas} from "../rle.js";
import {S} from "../state.js";
import {dragRect, hit, insideImage} from "../view.js";

// the brush's radii in image pixels ([ / ]); the simulated annotator's are the same
const SIZES = [1, 2, 4, 8, 16, 32];
// a click that changes under this share of the mask's pixels did little; two in a row: the brush
const LITTLE = 0.01;

export const mask = {
  name: "mask", key: "m", title: "Mask (M)",
  init() { S.seg = null; S.brush = {tool: null, size: SIZES.indexOf(8)}; },
  leave() { S.seg = null; },
  escape() { S.seg = null; },
  unsaved: () => (S.seg?.result ? "1 mask not accepted" : ""),

  async release(d, moved, box) {
    if (!S.seg && moved) {
      S.seg = fresh(box, null);
      logEvent("draw", {mode: "mask"});
      await segmentNow();
    } else if (!S.seg && !moved) {
      const a = hit(d.x0, d.y0);
      if (a && a.geometry.box) {
        S.seg = fresh(a.geometry.box, a.kind === "box" ? a.id : null);
        S.cls = a.class_id;
        await segmentNow();
      }
    } else if (S.seg && S.brush.tool && S.seg.result) {
      const points = d.path ?? [[d.x0, d.y0]];
      if (!points.some(([x, y]) => insideImage(x, y))) return say("that stroke is outside the image", true);
      remember();
      S.seg.strokes.push({points, radius: SIZES[S.brush.size], add: S.brush.tool === "brush"});
      logEvent("stroke", {mode: "mask", tool: S.brush.tool, radius: SIZES[S.brush.size], points: points.length});
      await segmentNow(false);
    } else if (S.seg && !moved) {
      if (!insideImage(d.x0, d.y0)) return say("that click is outside the image", true);
      remember();
      S.seg.clicks.push([d.x0, d.y0, d.button === 0]);
      logEvent("click", {mode: "mask", positive: d.button === 0});
      await segmentNow(true);
    }
  },

  // a stroke's path, point by point, while the brush or eraser drags
  press(e, x, y) { if (S.seg && S.brush.tool) S.drag.path = [[x, y]]; },
  move(d) { if (d.path) d.path.push([d.x, d.y]); },
  hover() { return Boolean(S.seg && S.brush.tool); },  // the brush's outline follows the mouse

  accept: acceptMask,

  // Tab / Shift+Tab: the next / previous of SAM's candidate masks for the same prompt;
  // A / E: the brush / the eraser (the same key again: back to clicks); [ / ]: its size
  keydown(e, key) {
    if (key === "a" || key === "e") return pickTool(key === "a" ? "brush" : "eraser");
    if ((key === "[" || key === "]") && S.brush.tool) {
      S.brush.size = Math.max(0, Math.min(SIZES.length - 1, S.brush.size + (key === "]" ? 1 : -1)));
      logEvent("brush", {mode: "mask", radius: SIZES[S.brush.size]});
      S.dirty = true;
      renderPanel();
      return true;
    }
    const n = S.seg?.result?.candidates?.length ?? 0;
    if (e.key !== "Tab" || !S.seg) return false;
    e.preventDefault();  // else the browser moves the focus
    if (n < 2) { say("this prompt gave one mask: no other to switch to"); return true; }
    remember();
    showCandidate((S.seg.shown + (e.shiftKey ? n - 1 : 1)) % n);
    logEvent("tab", {mode: "mask", candidate: S.seg.shown});
    return true;
  },

  // the last click or switch of the mask being made, else (false) the saved changes
  undo(again) {
    const seg = S.seg;
    const from = again ? seg?.future : seg?.history, to = again ? seg?.history : seg?.future;
    if (!from?.length) return false;
    to.push(snapshot(seg));
    Object.assign(seg, from.pop());
    showCandidate(seg.shown);
    logEvent(again ? "redo" : "undo", {mode: "mask"});
    return true;
  },

  panel(el) {
    helpPanel(el, "mask", S.seg ? `Left click: add to the mask, right click: remove. Tab: another candidate mask. A / E: brush / eraser, [ ]: its size. Enter accepts, Esc drops. ${S.seg.clicks.length} clicks, ${S.seg.strokes.length} strokes.` : "Drag a box (or click a box object) and its mask appears.");
    prepareLine(el, "sam", ["sam", "sam_tuned"].includes(S.prep?.backend));
    if (S.seg) {
      const r = S.seg.result;
      el.insertAdjacentHTML("beforeend", `<div id="mask-info">backend <b id="mask-backend">${esc(r?.method ?? "...")}</b>${r?.chosen_by === "you" ? " (chosen by you)" : ""}<br>
        ${decoderLine(r)}
        ${toolLine()}${candidatesLine(S.seg)}score ${r ? shownMask(S.seg).score.toFixed(2) : "-"}, ${r?.quality != null ? `estimated quality <b id="mask-quality">${r.quality.toFixed(2)}</b>` : "no quality estimate yet (compare the backends on 10 finished masks)"}</div>`);
    }
  },

  draw(ctx, lw) {
    if (S.seg) {
      const b = S.seg.box;
      ctx.setLineDash([5 * lw, 3 * lw]); ctx.strokeStyle = "#ffffff"; ctx.lineWidth = lw;
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]); ctx.setLineDash([]);
      if (S.seg.canvas) ctx.drawImage(S.seg.canvas.canvas, S.seg.canvas.x, S.seg.canvas.y);
      for (const [cx, cy, pos] of S.seg.clicks) {
        ctx.fillStyle = pos ? "#2ee86b" : "#ff3b3b";
        ctx.beginPath(); ctx.arc(cx, cy, 4 * lw, 0, 7); ctx.fill();
      }
      if (S.brush.tool) drawBrush(ctx, lw);
    } else if (S.drag?.kind === "press") {
      dragRect(S.drag, lw);
    }
  },
};

// a mask in the making: its box, clicks, strokes, the last answer and which of its
// candidates shows (the one the strokes paint over); history / future: snapshots for undo / redo
// (each mask starts with clicks and the brush's middle size again)
const fresh = (box, from) => {
  S.brush = {tool: null, size: SIZES.indexOf(8)};
  return {box, clicks: [], strokes: [], result: null, shown: 0, from, history: [], future: [], changes: []};
};
const snapshot = (seg) => ({clicks: [...seg.clicks], strokes: [...seg.strokes], result: seg.result, shown: seg.shown});

function pickTool(tool) {
  S.brush.tool = S.brush.tool === tool ? null : tool;
  logEvent("brush", {mode: "mask", tool: S.brush.tool});
  say(S.brush.tool ? `${S.brush.tool}: drag over the mask ([ ] changes its size); ${tool === "brush" ? "A" : "E"} again for clicks` : "clicks again");
  S.dirty = true;
  renderPanel();
  return true;
}

// which decoder serves SAM's masks and what it scored on held-out finished masks
const decoderLine = (r) => {
  if (r?.note) return `<span class="warn" id="mask-note">${esc(r.note)}</span><br>`;
  const d = r?.decoder;
  if (!d?.tuned) return "";
  const click = (s, what = "") => (s.click_mIoU === undefined ? "" : `, ${s.click_mIoU.toFixed(3)}${what}`); // older jobs: none
  return `<span id="mask-decoder">decoder tuned on this project: held-out mIoU ${d.tuned.box_mIoU.toFixed(3)} from the box, ${d.tuned.clicks_mIoU.toFixed(3)} after 2 clicks${click(d.tuned, " from one click")} (pretrained ${d.pretrained.box_mIoU.toFixed(3)}, ${d.pretrained.clicks_mIoU.toFixed(3)}${click(d.pretrained)}; ${d.held_out_masks} masks)</span><br>`;
};

const toolLine = () => (S.brush.tool ? `<b id="mask-tool">${S.brush.tool} ${SIZES[S.brush.size]} px</b>, ` : "");

// the stroke being dragged, else the brush's outline at the mouse
function drawBrush(ctx, lw) {
  const r = SIZES[S.brush.size], path = S.drag?.path;
  ctx.strokeStyle = S.brush.tool === "brush" ? "#2ee86b" : "#ff3b3b";
  ctx.lineCap = "round"; ctx.lineJoin = "round";
  if (path) {
    ctx.globalAlpha = 0.5; ctx.lineWidth = 2 * r;
    ctx.beginPath(); ctx.moveTo(...path[0]);
    for (const p of path.slice(1)) ctx.lineTo(...p);
    if (path.length === 1) ctx.lineTo(path[0][0] + 0.01, path[0][1]);
    ctx.stroke(); ctx.globalAlpha = 1;
  } else if (S.mouse) {
    ctx.lineWidth = lw;
    ctx.beginPath(); ctx.arc(S.mouse[0], S.mouse[1], r, 0, 7); ctx.stroke();
  }
}

function remember() {
  S.seg.history.push(snapshot(S.seg));
  S.seg.future = [];
}

// the mask shown: the candidate switched to, else the answer's own
const shownMask = (seg) => seg.result?.candidates?.[seg.shown] ?? seg.result;

const candidatesLine = (seg) => {
  const n = seg.result?.candidates?.length ?? 0;
  return n > 1 ? `candidate <b id="mask-candidate">${seg.shown + 1} of ${n}</b> (Tab), ` : "";
};

function showCandidate(i) {
  const seg = S.seg;
  seg.shown = i;
  const m = shownMask(seg);
  seg.canvas = m?.box ? rleCanvas(m.mask, m.box, S.classes.get(S.cls).color, 0.45) : null;
  S.dirty = true;
  renderPanel();
}

// ask for the mask of the box, clicks and strokes so far; ``clicked``: a click was added (the
// candidate shown is the one SAM refines, and the new answer's first shows), else a stroke
// (painted over the candidate shown)
async function segmentNow(clicked = true) {
  const seg = S.seg;
  seg.busy = (seg.busy || Promise.resolve()).then(async () => {
    const body = {box: seg.box, clicks: [...seg.clicks], candidate: seg.shown, strokes: [...seg.strokes]};
    const out = await api("POST", `/api/images/${S.image.id}/segment`, body);
    // an answer to clicks or strokes an undo took back since is dropped
    if (body.clicks.length !== seg.clicks.length || body.strokes.length !== seg.strokes.length) return;
    seg.result = out;
    seg.answered = body.clicks.length;
    seg.answeredStrokes = body.strokes.length;
    if (clicked && out.changed != null) hintBrush(seg, out.changed);
    showCandidate(clicked ? 0 : seg.shown);
  }).catch((err) => { seg.error = err.message; });  // api() has already shown it
  return seg.busy;
}

// after two clicks in a row that changed little of the mask, the page says to try the brush
function hintBrush(seg, changed) {
  seg.changes.push(changed);
  if (seg.changes.length >= 2 && seg.changes.slice(-2).every((c) => c < LITTLE) && !S.brush.tool) {
    say("the last two clicks changed little: try the brush (A) or the eraser (E)");
  }
}

async function acceptMask() {
  if (S.seg?.busy) await S.seg.busy;  // the answer to the last click first
  const r = S.seg?.result, m = S.seg && shownMask(S.seg);
  if (!r || !m?.box) return;
  const replace = S.seg.from != null ? [S.seg.from] : [];
  const create = [{class_id: S.cls, kind: "mask", geometry: {mask: m.mask}, score: m.score, quality: S.seg.shown ? null : r.quality,
                   source: "segment", backend: r.method}];
  S.seg = null;
  await change(create, replace, "accept");
}
