// Box-to-mask (M): drag a box (or click a box object) and its mask appears; left clicks add
// to it, right clicks remove; Tab (Shift+Tab) switches to SAM's other candidate masks;
// A / E take the brush / the eraser (again: back to clicks) and [ / ] change its size: a
// drag then paints a stroke over the mask; Ctrl+Z / Ctrl+Shift+Z undo and redo the clicks,
// switches and strokes; Enter accepts the mask shown (replacing the box object it came from).
// Its state: the mask in the making (seg), the brush, and the mouse (the brush's outline).
import {api, esc, say} from "../api.js";
import {helpPanel, prepareLine} from "../panel.js";
import {hit} from "../pick.js";
import {rleCanvas} from "../rle.js";
import {createStore} from "../store.js";
import {drawMask} from "./mask_draw.js";

// the brush's radii in image pixels ([ / ]); the simulated annotator's are the same
const SIZES = [1, 2, 4, 8, 16, 32];
// a click that changes under this share of the mask's pixels did little; two in a row: the brush
const LITTLE = 0.01;

export function mask(page) {
  const m = {page, st: createStore({seg: null, brush: freshBrush(), mouse: null}, page.redraw)};
  return {
    name: "mask", key: "m", title: "Mask (M)",
    state: () => m.st.get(),
    leave: () => drop(m),
    escape: () => drop(m),
    release: (d, moved, box) => release(m, d, moved, box),
    keydown: (e, key) => keydown(m, e, key),
    undo: (again) => undo(m, again),
    accept: () => accept(m),
    panel: (el) => panel(m, el),
    unsaved: () => (seg(m)?.result ? "1 mask not accepted" : ""),
    // a stroke's path, point by point, while the brush or eraser drags
    press(d) { if (seg(m) && brush(m).tool) d.path = [[d.x0, d.y0]]; },
    move(d) {
      if (d.path) d.path.push([d.x, d.y]);
      m.st.set({mouse: [d.x, d.y]});  // where the brush's outline shows once the stroke ends
    },
    // the brush's outline follows the mouse
    hover(x, y) { if (seg(m) && brush(m).tool) m.st.set({mouse: [x, y]}); },
    draw(ctx, lw, drag) {
      if (seg(m)) drawMask(ctx, lw, m.st.get(), SIZES[brush(m).size], drag);
      else page.dragRect(ctx, drag, lw);
    },
  };
}

const seg = (m) => m.st.get().seg, brush = (m) => m.st.get().brush;
const drop = (m) => m.st.set({seg: null});
// a mask in the making: each starts with clicks and the brush's size for its box
const start = (m, box, from) => m.st.set({seg: fresh(box, from), brush: freshBrush(box)});

async function release(m, d, moved, box) {
  const s = seg(m), b = brush(m);
  if (!s && moved) {
    start(m, box, null);
    m.page.log("draw", {mode: "mask"});
    await segmentNow(m);
  } else if (!s && !moved) {
    const a = hit(m.page.doc.get().anns, d.x0, d.y0, m.page.view.scale);
    if (a && a.geometry.box) {
      start(m, a.geometry.box, a.kind === "box" ? a.id : null);
      m.page.doc.set({cls: a.class_id});
      await segmentNow(m);
    }
  } else if (b.tool && s.result) {
    const points = d.path ?? [[d.x0, d.y0]];
    if (!points.some(([x, y]) => m.page.view.inside(x, y))) return say("that stroke is outside the image", true);
    remember(m);
    s.strokes.push({points, radius: SIZES[b.size], add: b.tool === "brush"});
    m.page.log("stroke", {mode: "mask", tool: b.tool, radius: SIZES[b.size], points: points.length});
    await segmentNow(m, false);
  } else if (!moved) {
    if (!m.page.view.inside(d.x0, d.y0)) return say("that click is outside the image", true);
    remember(m);
    s.clicks.push([d.x0, d.y0, d.button === 0]);
    m.page.log("click", {mode: "mask", positive: d.button === 0});
    await segmentNow(m, true);
  }
}

// Tab / Shift+Tab: the next / previous of SAM's candidate masks for the same prompt;
// A / E: the brush / the eraser (the same key again: back to clicks); [ / ]: its size
function keydown(m, e, key) {
  const s = seg(m), b = brush(m);
  if (key === "a" || key === "e") return pickTool(m, key === "a" ? "brush" : "eraser");
  if ((key === "[" || key === "]") && b.tool) {
    b.size = Math.max(0, Math.min(SIZES.length - 1, b.size + (key === "]" ? 1 : -1)));
    m.page.log("brush", {mode: "mask", radius: SIZES[b.size]});
    m.st.set();
    m.page.panel();
    return true;
  }
  const n = s?.result?.candidates?.length ?? 0;
  if (e.key !== "Tab" || !s) return false;
  e.preventDefault();  // else the browser moves the focus
  if (n < 2) { say("this prompt gave one mask: no other to switch to"); return true; }
  remember(m);
  showCandidate(m, (s.shown + (e.shiftKey ? n - 1 : 1)) % n);
  m.page.log("tab", {mode: "mask", candidate: s.shown});
  return true;
}

function pickTool(m, tool) {
  const b = brush(m);
  b.tool = b.tool === tool ? null : tool;
  m.page.log("brush", {mode: "mask", tool: b.tool});
  say(b.tool ? `${b.tool}: drag over the mask ([ ] changes its size); ${tool === "brush" ? "A" : "E"} again for clicks` : "clicks again");
  m.st.set();
  m.page.panel();
  return true;
}

// the last click or switch of the mask being made, else (false) the saved changes
function undo(m, again) {
  const s = seg(m);
  const from = again ? s?.future : s?.history, to = again ? s?.history : s?.future;
  if (!from?.length) return false;
  to.push(snapshot(s));
  Object.assign(s, from.pop());
  showCandidate(m, s.shown);
  m.page.log(again ? "redo" : "undo", {mode: "mask"});
  return true;
}

function remember(m) {
  seg(m).history.push(snapshot(seg(m)));
  seg(m).future = [];
}

function showCandidate(m, i) {
  const s = seg(m);
  s.shown = i;
  const shown = shownMask(s);
  s.canvas = shown?.box ? rleCanvas(shown.mask, shown.box, m.page.color(m.page.doc.get().cls), 0.45) : null;
  m.st.set();
  m.page.panel();
}

// ask for the mask of the box, clicks and strokes so far; ``clicked``: a click was added (the
// candidate shown is the one SAM refines, and the new answer's first shows), else a stroke
// (painted over the candidate shown)
async function segmentNow(m, clicked = true) {
  const s = seg(m);
  s.busy = (s.busy || Promise.resolve()).then(async () => {
    const body = {box: s.box, clicks: [...s.clicks], candidate: s.shown, strokes: [...s.strokes]};
    const out = await api("POST", `/api/images/${m.page.doc.get().image.id}/segment`, body);
    // an answer to clicks or strokes an undo took back since is dropped
    if (body.clicks.length !== s.clicks.length || body.strokes.length !== s.strokes.length) return;
    Object.assign(s, {result: out, answered: body.clicks.length, answeredStrokes: body.strokes.length});
    if (clicked && out.changed != null) hintBrush(m, s, out.changed);
    if (seg(m) === s) showCandidate(m, clicked ? 0 : s.shown);
  }).catch((err) => { s.error = err.message; });  // api() has already shown it
  return s.busy;
}

// after two clicks in a row that changed little of the mask, the page says to try the brush
function hintBrush(m, s, changed) {
  s.changes.push(changed);
  if (s.changes.length >= 2 && s.changes.slice(-2).every((c) => c < LITTLE) && !brush(m).tool) {
    say("the last two clicks changed little: try the brush (A) or the eraser (E)");
  }
}

async function accept(m) {
  const s = seg(m);
  if (s?.busy) await s.busy;  // the answer to the last click first
  const r = s?.result, shown = s && shownMask(s);
  if (!r || !shown?.box) return;
  const replace = s.from != null ? [s.from] : [];
  const create = [{class_id: m.page.doc.get().cls, kind: "mask", geometry: {mask: shown.mask}, score: shown.score, quality: s.shown ? null : r.quality,
                   source: "segment", backend: r.method}];
  drop(m);
  await m.page.changes.change(create, replace, "accept");
}

function panel(m, el) {
  const s = seg(m), prep = m.page.doc.get().prep;
  helpPanel(el, "mask", s ? `Left click: add to the mask, right click: remove. Tab: another candidate mask. A / E: brush / eraser, [ ]: its size. Enter accepts, Esc drops. ${s.clicks.length} clicks, ${s.strokes.length} strokes.` : "Drag a box (or click a box object) and its mask appears.");
  prepareLine(el, prep, "sam", ["sam", "sam_tuned"].includes(prep?.backend));
  if (!s) return;
  const r = s.result;
  el.insertAdjacentHTML("beforeend", `<div id="mask-info">backend <b id="mask-backend">${esc(r?.method ?? "...")}</b>${r?.chosen_by === "you" ? " (chosen by you)" : ""}<br>
    ${decoderLine(r)}
    ${toolLine(brush(m))}${candidatesLine(s)}score ${r ? shownMask(s).score.toFixed(2) : "-"}, ${r?.quality != null ? `estimated quality <b id="mask-quality">${r.quality.toFixed(2)}</b>` : "no quality estimate yet (compare the backends on 10 finished masks)"}</div>`);
}


// history / future: snapshots for undo / redo; shown: which of the answer's candidates
// shows (the one the strokes paint over)
const fresh = (box, from) => ({box, clicks: [], strokes: [], result: null, shown: 0, from, history: [], future: [], changes: []});
// the brush's size as a mask starts: the largest at most an eighth of the box's short side,
// 8 px at most (simulate/brush.py's page_radius): one stroke on a small object stays on it
const freshBrush = (box = null) => {
  const side = box ? Math.min(box[2] - box[0], box[3] - box[1]) / 8 : 8;
  return {tool: null, size: Math.max(0, SIZES.findLastIndex((r) => r <= Math.min(side, 8)))};
};
const snapshot = (seg) => ({clicks: [...seg.clicks], strokes: [...seg.strokes], result: seg.result, shown: seg.shown});

// which decoder serves SAM's masks and what it scored on held-out finished masks
const decoderLine = (r) => {
  if (r?.note) return `<span class="warn" id="mask-note">${esc(r.note)}</span><br>`;
  const d = r?.decoder;
  if (!d?.tuned) return "";
  const click = (s, what = "") => (s.click_mIoU === undefined ? "" : `, ${s.click_mIoU.toFixed(3)}${what}`); // older jobs: none
  return `<span id="mask-decoder">decoder tuned on this project: held-out mIoU ${d.tuned.box_mIoU.toFixed(3)} from the box, ${d.tuned.clicks_mIoU.toFixed(3)} after 2 clicks${click(d.tuned, " from one click")} (pretrained ${d.pretrained.box_mIoU.toFixed(3)}, ${d.pretrained.clicks_mIoU.toFixed(3)}${click(d.pretrained)}; ${d.held_out_masks} masks)</span><br>`;
};

const toolLine = (brush) => (brush.tool ? `<b id="mask-tool">${brush.tool} ${SIZES[brush.size]} px</b>, ` : "");

// the mask shown: the candidate switched to, else the answer's own
const shownMask = (seg) => seg.result?.candidates?.[seg.shown] ?? seg.result;

const candidatesLine = (seg) => {
  const n = seg.result?.candidates?.length ?? 0;
  return n > 1 ? `candidate <b id="mask-candidate">${seg.shown + 1} of ${n}</b> (Tab), ` : "";
};
