// Box-to-mask (M): drag a box (or click a box object), or click inside an object, and its
// mask appears (a click on a saved mask opens it, to correct and save in its place); left clicks add to it, right clicks remove; Tab (Shift+Tab) switches to SAM's other candidate masks;
// A / E take the brush / the eraser (again: back to clicks) and [ / ] change its size: a
// drag then paints a stroke over the mask; L turns the mask shown (or, with none, the saved
// mask picked or under the pointer) into an outline of few vertices to edit (outline.js), L
// again goes back to the mask; Ctrl+Z / Ctrl+Shift+Z undo and redo the clicks, switches,
// strokes and outline edits; Enter accepts the mask shown, or the outline filled (replacing
// the box or saved mask it came from). As the mode is picked, SAM's proposals like the
// finished images' objects show (mask_proposals.js): with no mask in the making, a click on
// one saves it alone, Enter saves them all, a right-click rejects one and Esc hides them.
// Its state: the mask in the making (seg, with its outline when one is edited), the brush,
// the mouse (the brush's outline, the redraw's next point) and the proposals (props).
import {api, esc, say} from "../api.js";
import {helpPanel, prepareLine} from "../panel.js";
import {hit} from "../pick.js";
import {rleCanvas} from "../rle.js";
import {createStore} from "../store.js";
import {drawMask} from "./mask_draw.js";
import {acted, answered, madeWithSam, workClock} from "./mask_ways.js";
import {askProposals, drawProposals, hideProposals, proposalAt, proposalsLine, rejectProposal, saveProposals, shownProposals, stopProposals, takeProposal} from "./mask_proposals.js";
import * as outline from "./outline.js";

// the key that turns the mask into an outline and back: no mode's key (the page switches
// modes by their keys before a mode sees a key) nor one mask mode uses
const OUTLINE_KEY = "l";
// the brush's radii in image pixels ([ / ]); the simulated annotator's are the same
const SIZES = [1, 2, 4, 8, 16, 32];
// a click that changes under this share of the mask's pixels did little; two in a row: the brush
const LITTLE = 0.01;

export function mask(page) {
  const m = {page, st: createStore({seg: null, brush: freshBrush(), mouse: null, props: null}, page.redraw)};
  return {
    name: "mask", key: "m", title: "Mask (M)",
    state: () => ({...m.st.get(), proposalsShown: shownProposals(m), ways: m.ways}),
    leave: () => { drop(m); stopProposals(m); },
    opened: () => askProposals(m),
    // picked anew: its proposals asked for; picked again: those Esc hid show again
    picked: (anew) => (anew || !m.st.get().props ? askProposals(m) : showHidden(m)),
    escape: () => escape(m),
    release: (d, moved, box) => (act(m), seg(m)?.outline ? outline.release(editor(m), d, moved) : release(m, d, moved, box)),
    keydown: (e, key) => (act(m), keydown(m, e, key)),
    undo: (again) => (act(m), undo(m, again)),
    accept: () => (act(m), accept(m)),
    panel: (el) => panel(m, el),
    unsaved: () => (seg(m)?.outline ? "1 outline not saved" : seg(m)?.result && !untouched(seg(m)) ? "1 mask not accepted" : ""),
    // the saved mask open (or its outline edited) is drawn as the mask in the making only
    visible: (a) => !((seg(m)?.outline || seg(m)?.opened) && a.id === seg(m).from),
    // a stroke's path, point by point, while the brush or eraser drags
    press(d) {
      act(m);
      if (seg(m)?.outline) outline.press(editor(m), d);
      else if (seg(m) && brush(m).tool) d.path = [[d.x0, d.y0]];
    },
    move(d) {
      act(m);  // a drag (a stroke, an outline's vertex) is work all along
      if (d.path) d.path.push([d.x, d.y]);
      m.st.set({mouse: [d.x, d.y]});  // where the brush's outline shows once the stroke ends
    },
    // the brush's outline, or the redraw's next stretch, follows the mouse
    hover(x, y) {
      const o = seg(m)?.outline;
      if (o?.redraw) act(m);  // a redraw's stretch is traced by the pointer
      if (o?.redraw || (seg(m) && !o && brush(m).tool)) m.st.set({mouse: [x, y]});
      else m.st.get().mouse = [x, y];  // the vertex Delete takes when none is picked
    },
    draw(ctx, lw, drag) {
      const s = seg(m), im = page.doc.get().image;
      drawProposals(m, ctx, lw);  // under the mask in the making
      if (s?.outline) outline.drawOutline(ctx, lw, s.outline, page.color(page.doc.get().cls), drag, m.st.get().mouse, [im.width, im.height]);
      else if (s) drawMask(ctx, lw, m.st.get(), SIZES[brush(m).size], drag);
      else page.dragRect(ctx, drag, lw);
    },
  };
}

const seg = (m) => m.st.get().seg, brush = (m) => m.st.get().brush;
// the person acted on the mask in the making: its work clock (mask_ways.js) counts it
const act = (m) => seg(m) && acted(seg(m).clock);
const drop = (m) => m.st.set({seg: null});
// a saved mask opened and not changed: Enter or leaving has nothing to save
const untouched = (s) => s.opened && !s.clicks.length && !s.strokes.length;
// a mask in the making: each starts with clicks and the brush's size for its box
const start = (m, box, from) => m.st.set({seg: fresh(box, from), brush: freshBrush(box)});

async function release(m, d, moved, box) {
  const s = seg(m), b = brush(m);
  if (!s && moved) {
    start(m, box, null);
    m.page.log("draw", {mode: "mask"});
    await segmentNow(m);
  } else if (!s && !moved) {
    // on a shown proposal: a click saves it, a right-click (its box is enough) rejects it
    const i = proposalAt(m, d.x0, d.y0, d.button === 2);
    if (i != null && d.button === 0) return takeProposal(m, i);
    if (i != null && d.button === 2) return rejectProposal(m, i);
    const a = hit(m.page.doc.get().anns, d.x0, d.y0, m.page.view.scale);
    if (a?.kind === "mask") {
      // a saved mask opens as it is, not a new mask on top of it: clicks correct it, Enter
      // saves it in its place
      openMask(m, a);
      say("the saved mask is open: clicks correct it, L edits its outline, Enter saves it in its place, Esc leaves it as it was");
    } else if (a && a.geometry.box) {
      start(m, a.geometry.box, a.kind === "box" ? a.id : null);
      m.page.doc.set({cls: a.class_id});
      await segmentNow(m);
    } else if (!a && d.button === 0 && m.page.view.inside(d.x0, d.y0)) {
      // a click inside an object starts its mask, cheaper than a box (issue 54): the click
      // alone prompts SAM, whose candidates Tab goes through; more clicks refine it
      start(m, null, null);
      seg(m).clicks.push([d.x0, d.y0, true]);
      m.page.log("click", {mode: "mask", positive: true, start: true});
      await segmentNow(m);
    }
  } else if (b.tool && s.result) {
    const points = d.path ?? [[d.x0, d.y0]];
    if (!points.some(([x, y]) => m.page.view.inside(x, y))) return say("that stroke is outside the image", true);
    remember(m);
    if (!s.strokes.length) {  // the strokes paint this mask, sent with them (the server need not keep it)
      const shown = shownMask(s);
      s.under = {clicks: s.clicks.length, mask: shown.mask, score: shown.score};
    }
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
// A / E: the brush / the eraser (the same key again: back to clicks); [ / ]: its size;
// L: the outline (again: back to the mask); while the outline is edited, its own keys
function keydown(m, e, key) {
  const s = seg(m), b = brush(m);
  if (key === OUTLINE_KEY) { toggleOutline(m); return true; }
  if (s?.outline) return outlineKey(m, e, key);
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

// Esc stops a redraw under way, else drops the mask (and its outline), else hides the proposals
function escape(m) {
  const o = seg(m)?.outline;
  if (o?.redraw) { o.redraw = null; say("redraw stopped"); m.st.set(); } else if (seg(m)) drop(m); else hideProposals(m);
}

function showHidden(m) {
  const p = m.st.get().props;
  if (!p.hidden) return;
  p.hidden = false;
  m.st.set();
  m.page.panel();
}

// what outline.js edits with: the outline, and each edit made one undo step
const editor = (m) => ({
  page: m.page, o: seg(m).outline, changed: () => { m.st.set(); m.page.panel(); },
  commit(rings, stamp, action) {
    remember(m);
    seg(m).outline = {...outline.freshOutline(rings), stamp};
    m.page.log(action, {mode: "mask"});
    m.st.set();
    m.page.panel();
  },
});

// L: the mask shown becomes an outline (with no mask in the making: the saved mask picked
// or under the pointer is opened first), or the outline is left for the mask it came from;
// either is an undo step
async function toggleOutline(m) {
  let s = seg(m);
  if (s?.busy) await s.busy;
  if (!s && !openSaved(m)) return;
  s = seg(m);
  if (s.outline) {
    remember(m);
    s.outline = null;
    say("back to the mask: the outline's edits are dropped (Ctrl+Z brings them back)");
    return showCandidate(m, s.shown);
  }
  const shown = s.result && shownMask(s);
  if (!shown?.box) return say("no mask to outline yet: drag a box or click an object first", true);
  let o;
  try { o = await outline.outlineOf(m.page, shown.mask); } catch { return; }  // api() said why
  answered(s.clock);
  if (seg(m) !== s || s.outline) return;  // dropped or outlined meanwhile
  remember(m);
  s.outline = o;
  m.page.log("outline", {mode: "mask", rings: o.rings.length});
  say(`outline of ${o.rings.reduce((n, r) => n + r.points.length, 0)} vertices: drag, click an edge, right-click a vertex, Shift+click to redraw; Enter saves`);
  m.st.set();
  m.page.panel();
}

// the saved mask picked (select mode's selection), else the one under the pointer, as the
// mask in the making (Enter saves it in its place); false when there is none
function openSaved(m) {
  const {anns, selected} = m.page.doc.get(), mouse = m.st.get().mouse;
  const masks = new Map([...anns].filter(([, a]) => a.kind === "mask"));
  const picked = [...selected].filter((id) => masks.has(id));
  const a = picked.length === 1 ? masks.get(picked[0]) : mouse && hit(masks, mouse[0], mouse[1], m.page.view.scale);
  if (!a) { say("pick a saved mask (V, then click it) or point at one, then press L", true); return false; }
  openMask(m, a);
  return true;
}

// saved mask ``a`` as the mask in the making, shown as saved (Enter saves it in its place)
function openMask(m, a) {
  start(m, a.geometry.box, a.id);
  seg(m).opened = true;
  seg(m).result = {method: a.backend ?? null, mask: a.geometry.mask, box: a.geometry.box, score: a.score ?? 1, quality: a.quality ?? null, candidates: [], saved: true};
  m.page.doc.set({cls: a.class_id});
  showCandidate(m, 0);
}

// the outline's own keys; the mask's (Tab, the brush) wait until the outline is left
function outlineKey(m, e, key) {
  if (outline.keydown(editor(m), e, m.st.get().mouse)) return true;
  if (e.key === "Tab" || key === "a" || key === "e") {
    e.preventDefault();
    say("the outline is being edited: L goes back to the mask first", true);
    return true;
  }
  return false;
}

// Enter on an outline: its mask saved (in place of the box or saved mask it came from)
async function acceptOutline(m, s) {
  const {image, cls} = m.page.doc.get();
  const mask = outline.outlineMask(s.outline, image.width, image.height);
  if (!mask) return say("the outline covers no pixel: nothing to save", true);
  const replace = s.from != null ? [s.from] : [];
  const create = [{class_id: cls, kind: "mask", geometry: {mask}, score: null, quality: null, source: "outline", backend: s.result?.method ?? null}];
  const ms = s.clock.ms;  // the person's work ends at Enter, not at the save's answer
  drop(m);
  await m.page.changes.change(create, replace, "accept");
  if (s.from == null && s.result) madeWithSam(m, image.id, ms, mask);
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

// the last click, switch or outline edit of the mask being made, else (false) the saved
// changes; a redraw under way is stopped first
function undo(m, again) {
  const s = seg(m);
  if (s?.outline?.redraw && !again) { s.outline.redraw = null; m.st.set(); return true; }
  const from = again ? s?.future : s?.history, to = again ? s?.history : s?.future;
  if (!from?.length) return false;
  to.push(snapshot(s));
  restore(s, from.pop());
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
    if (s.strokes.length && s.under?.clicks === s.clicks.length) body.under = {mask: s.under.mask, score: s.under.score};
    const out = await api("POST", `/api/images/${m.page.doc.get().image.id}/segment`, body);
    answered(s.clock);
    // an answer to clicks or strokes an undo took back since is dropped
    if (body.clicks.length !== s.clicks.length || body.strokes.length !== s.strokes.length) return;
    Object.assign(s, {result: out, answered: body.clicks.length, answeredStrokes: body.strokes.length});
    if (clicked && out.changed != null) hintBrush(m, s, out.changed);
    if (seg(m) === s) showCandidate(m, clicked ? 0 : s.shown);
    if (out.zoom === "encoding") sharpen(m, s, body);
  }).catch((err) => { s.error = err.message; });  // api() has already shown it
  return s.busy;
}

// a small box's mask comes from the whole image while the worker encodes its zoom window:
// asked again ZOOM_AGAIN_MS later, the window's sharper mask shows, when the person has not
// clicked, painted, switched candidate or left the mask meanwhile
const ZOOM_AGAIN_MS = 1000;
function sharpen(m, s, body) {
  setTimeout(() => {
    const same = seg(m) === s && !s.outline && s.shown === 0 && s.strokes.length === 0 && s.clicks.length === body.clicks.length;
    if (same) segmentNow(m, true);
  }, ZOOM_AGAIN_MS);
}

// after two clicks in a row that changed little of the mask, the page says to try the brush
function hintBrush(m, s, changed) {
  s.changes.push(changed);
  if (s.changes.length >= 2 && s.changes.slice(-2).every((c) => c < LITTLE) && !brush(m).tool) {
    say("the last two clicks changed little: try the brush (A), the eraser (E) or edit the outline (L)");
  }
}

// Enter: the mask in the making saved (a click's answer awaited first), else the proposals shown
async function accept(m) {
  const s = seg(m);
  if (!s) return saveProposals(m);
  if (s.busy) await s.busy;  // the answer to the last click first
  if (s.outline) return acceptOutline(m, s);
  const r = s.result, shown = shownMask(s);
  if (!r || !shown?.box) return;
  if (untouched(s)) return drop(m);
  const replace = s.from != null ? [s.from] : [];
  const create = [{class_id: m.page.doc.get().cls, kind: "mask", geometry: {mask: shown.mask}, score: unscored(shown) ? null : shown.score, quality: s.shown ? null : r.quality,
                   source: shown.shape ?? "segment", backend: shown.shape ? null : r.method}];  // the box's ellipse, a proposal: no backend's
  const image = m.page.doc.get().image.id, ms = s.clock.ms;  // timed at Enter
  drop(m);
  await m.page.changes.change(create, replace, "accept");
  if (s.from == null) madeWithSam(m, image, ms, shown.mask);
}

function panel(m, el) {
  const s = seg(m), prep = m.page.doc.get().prep;
  if (s?.outline) return helpPanel(el, "mask: outline", outline.outlineHelp(s.outline));
  helpPanel(el, "mask", s ? `Left click: add to the mask, right click: remove. Tab: another candidate mask. A / E: brush / eraser, [ ]: its size. L: edit its outline. Enter accepts, Esc drops. ${s.clicks.length} clicks, ${s.strokes.length} strokes.` : "Drag a box, click a box object or click inside an object, and its mask appears. A click on a saved mask opens it to correct. L: edit the outline of the saved mask picked (V) or under the pointer.");
  const line = proposalsLine(m);
  if (line) el.insertAdjacentHTML("beforeend", `<div class="muted" id="mask-proposals">${esc(line)}</div>`);
  const ways = m.ways?.image === m.page.doc.get().image?.id ? m.ways.line : null;
  if (ways) el.insertAdjacentHTML("beforeend", `<div class="advice" id="mask-ways">${esc(ways)}</div>`);
  prepareLine(el, prep, "sam", ["sam", "sam_tuned"].includes(prep?.backend));
  if (!s) return;
  const r = s.result;
  el.insertAdjacentHTML("beforeend", `<div id="mask-info">backend <b id="mask-backend">${esc(r?.method ?? "...")}</b>${r?.chosen_by === "you" ? " (chosen by you)" : ""}<br>
    ${decoderLine(r)}${r?.zoom === "encoding" ? `<span id="mask-zoom">zooming in on this small object: a sharper mask shows in a moment</span><br>` : ""}
    ${toolLine(brush(m))}${candidatesLine(s)}${scoreLine(s)}${r?.quality != null ? `estimated quality <b id="mask-quality">${r.quality.toFixed(2)}</b>` : "no quality estimate yet (compare the backends on 10 finished masks)"}</div>`);
}


// history / future: snapshots for undo / redo; shown: which of the answer's candidates
// shows (the one the strokes paint over)
// clock: the person's work on it since its first prompt (mask_ways.js times the masks made with SAM)
// under: the mask the strokes paint and the clicks it answered
const fresh = (box, from) => ({box, clicks: [], strokes: [], result: null, shown: 0, under: null, from, history: [], future: [], changes: [], clock: workClock()});
// the brush's size as a mask starts: the largest at most an eighth of the box's short side,
// 8 px at most (simulate/brush.py's page_radius): one stroke on a small object stays on it
const freshBrush = (box = null) => {
  const side = box ? Math.min(box[2] - box[0], box[3] - box[1]) / 8 : 8;
  return {tool: null, size: Math.max(0, SIZES.findLastIndex((r) => r <= Math.min(side, 8)))};
};
// an outline's rings are never changed in place (outline_edit.js): the snapshot keeps them
const snapshot = (seg) => ({clicks: [...seg.clicks], strokes: [...seg.strokes], result: seg.result, shown: seg.shown, under: seg.under, rings: seg.outline?.rings ?? null});
function restore(seg, {rings, ...rest}) {
  Object.assign(seg, rest);
  seg.outline = rings ? outline.freshOutline(rings) : null;
}

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

// a candidate that is not the backend's answer is named: the box's ellipse (a shape prior,
// no score of SAM's) or the proposal under a click (made before it, with its own score)
const SHAPES = {ellipse: "the box's ellipse", proposal: "the object found here before the click"};
const unscored = (mask) => mask?.shape === "ellipse";
const candidatesLine = (seg) => {
  const n = seg.result?.candidates?.length ?? 0, shape = SHAPES[shownMask(seg)?.shape];
  return n > 1 ? `candidate <b id="mask-candidate">${seg.shown + 1} of ${n}</b>${shape ? ` (<span id="mask-shape">${shape}</span>)` : ""} (Tab, Shift+Tab), ` : "";
};
const scoreLine = (seg) => (unscored(shownMask(seg)) ? "" : `score ${seg.result ? shownMask(seg).score.toFixed(2) : "-"}, `);
