// Mask mode's proposals (issue 54): SAM's proposals of the image that look like the objects
// of the project's finished images, each with its mask, asked of the server as the image
// opens in mask mode or the mode is picked (POST /api/images/{id}/mask_proposals), and
// again every POLL_MS while they are being made. Those at or above their class's score show
// under the mask being made, lighter than the saved masks and with a dashed box. With no
// mask in the making, a click on one saves it alone as a mask (logged "take"), a right-click
// rejects one, Esc hides them all (logged "hide"), Enter saves them all as masks; each save
// is one undo step. A proposal a saved object already covers is not shown.
// Its state, `props` in mask mode's store (null: none asked): {image, state ("asking",
// "making", "ready", "none"), note, answer, bits (each mask's pixels in its box, or null),
// areas (each mask's pixels, else its box's), rejected (Set of indices), hidden (Esc),
// saving (Set: the indices being saved), drawn (index -> its canvas), cache (the indices
// shown, and what they were worked out from)}.
import {api, say} from "../api.js";
import {iou} from "../geometry.js";
import {bitsCanvas, rleBits} from "../rle.js";
import {strokeBox} from "../view.js";
import {SAME_IOU, holds} from "./detect_boxes.js";

const POLL_MS = 1500;  // how often the page asks again while the proposals are being made
const FILL = 0.18, EDGE = 0.9;  // a proposal's alpha inside and on its edge (a saved mask: 0.4)

// `m`: mask mode's own {page, st}
const props = (m) => m.st.get().props;
const fresh = (image) => ({image, state: "asking", note: null, answer: null, bits: [], areas: [], rejected: new Set(), hidden: false, saving: new Set(), drawn: new Map(), cache: null});

// Ask for the image's proposals, again while they are being made, as long as this image
// stays open in mask mode and no newer ask started (an old answer never shows)
export async function askProposals(m) {
  const {page} = m, image = page.doc.get().image.id, p = fresh(image);
  m.st.set({props: p});
  const live = () => props(m) === p && page.live() && page.doc.get().mode === "mask";
  while (live()) {
    let out;
    try {
      out = await api("POST", `/api/images/${image}/mask_proposals`);
    } catch (err) {  // api() has shown why
      if (live()) update(m, p, {state: "none", note: err.message});
      return;
    }
    if (!live()) return;
    if (out.state === "ready") return ready(m, p, out);
    update(m, p, {state: out.state, note: out.note});
    if (out.state !== "making") return;
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}

export const stopProposals = (m) => m.st.set({props: null});

// the proposals `p` changed: redrawn, and the panel too while they are the mode's
function update(m, p, patch) {
  Object.assign(p, patch);
  if (props(m) !== p) return;
  m.st.set();
  m.page.panel();
}

const boxArea = (b) => (b[2] - b[0]) * (b[3] - b[1]);

function ready(m, p, answer) {
  const bits = answer.masks.map((rle, i) => {
    try { return rleBits(rle, answer.boxes[i]); } catch { return null; }  // its box still shows and picks
  });
  const areas = bits.map((b, i) => (b ? b.bits.reduce((n, v) => n + v, 0) : boxArea(answer.boxes[i])));
  update(m, p, {state: "ready", note: answer.note, answer, bits, areas});
  const n = shownProposals(m).length;
  if (n && !m.st.get().seg) say(proposalsText(n));
}

// the indices of the answer's proposals shown: at or above their class's score (at most
// 1), not rejected, hidden or being saved, and not over a saved object (box IoU >= SAME_IOU)
export function shownProposals(m) {
  const p = props(m), r = p?.answer;
  if (!r || p.hidden) return [];
  const {anns, revision} = m.page.doc.get();
  const key = `${revision} ${anns.size} ${p.rejected.size} ${[...p.saving]}`;
  if (p.cache?.key === key) return p.cache.shown;
  const least = (label) => Math.min(1, r.min_scores?.[label] ?? r.threshold ?? 0);
  const saved = [...anns.values()].map((a) => a.geometry?.box).filter(Boolean);
  const shown = r.boxes.map((_, i) => i).filter((i) => r.scores[i] >= least(r.labels[i]) && !p.rejected.has(i)
    && !p.saving.has(i) && !saved.some((b) => iou(b, r.boxes[i]) >= SAME_IOU));
  p.cache = {key, shown};
  return shown;
}

export function proposalsText(n) {
  return `${n} proposal${n === 1 ? "" : "s"} like your finished objects: click one to save it, Enter saves them all, right-click rejects one, Esc hides them`;
}

// the panel's line: what the proposals are doing, or how many show
export function proposalsLine(m) {
  const p = props(m);
  if (!p) return "";
  if (p.state === "asking") return "asking for proposals like your finished objects...";
  if (p.state === "making") return "SAM's proposals of this image are being made...";
  if (p.state === "none") return p.note ? `no proposals shown on open: ${p.note}` : "";
  if (p.hidden) return "proposals hidden (Esc): M shows them again";
  const n = shownProposals(m).length;
  return n ? proposalsText(n) : "no proposal like your finished objects left to show";
}

// each shown proposal: its mask lighter than a saved one, its edge solid, its box dashed
export function drawProposals(m, ctx, lw) {
  const p = props(m), r = p?.answer;
  if (!r) return;
  ctx.setLineDash([4 * lw, 3 * lw]);
  ctx.lineWidth = lw;
  for (const i of shownProposals(m)) {
    const color = m.page.color(r.labels[i]);
    if (p.bits[i]) {
      if (!p.drawn.has(i)) p.drawn.set(i, bitsCanvas(p.bits[i], color, FILL, EDGE));
      const c = p.drawn.get(i);
      ctx.drawImage(c.canvas, c.x, c.y);
    }
    ctx.strokeStyle = color;
    strokeBox(ctx, r.boxes[i]);
  }
  ctx.setLineDash([]);
}

// the shown proposal at image point (x, y), the smallest (fewest pixels: the most specific)
// whose mask holds it (a mask not read: its box); else, with `boxes`, the smallest whose box
// does; or null
export function proposalAt(m, x, y, boxes = true) {
  const p = props(m), r = p?.answer;
  if (!r) return null;
  const smallest = (list) => (list.length ? list.reduce((a, b) => (p.areas[b] < p.areas[a] ? b : a)) : null);
  const boxed = shownProposals(m).filter((i) => holds(r.boxes[i], x, y));
  return smallest(boxed.filter((i) => !p.bits[i] || maskHolds(p.bits[i], x, y))) ?? (boxes ? smallest(boxed) : null);
}

function maskHolds(b, x, y) {
  const col = Math.floor(x) - b?.x, row = Math.floor(y) - b?.y;
  return !!b && col >= 0 && row >= 0 && col < b.width && row < b.height && b.bits[row * b.width + col] === 1;
}

// the proposal `i` rejected: hidden for this visit of the mode
export function rejectProposal(m, i) {
  const p = props(m), r = p.answer;
  p.rejected.add(i);
  m.page.log("reject", {mode: "mask", class_id: r.labels[i], box: r.boxes[i], score: r.scores[i]});
  update(m, p, {});
  const n = shownProposals(m).length;
  say(n ? `proposal rejected; ${proposalsText(n)}` : "proposal rejected; none left");
}

// Esc: every proposal hidden (logged); false when none showed
export function hideProposals(m) {
  const n = shownProposals(m).length;
  if (!n) return false;
  update(m, props(m), {hidden: true});
  m.page.log("hide", {mode: "mask", proposals: n});
  say("proposals hidden: M shows them again");
  return true;
}

// Enter: every shown proposal saved as a mask, one undo step (undone, they show again);
// false when none showed
export async function saveProposals(m) {
  const shown = shownProposals(m);
  if (!shown.length) return false;
  const made = await save(m, shown, "accept");
  if (made) say(`${made.length} proposal${made.length === 1 ? "" : "s"} saved as masks: Ctrl+Z takes them back`);
  return true;
}

// a click on the shown proposal `i`: its mask saved alone, one undo step logged "take"
// (undone, it shows again)
export async function takeProposal(m, i) {
  const r = props(m).answer;
  const made = await save(m, [i], "take", {mode: "mask", class_id: r.labels[i], box: r.boxes[i], score: r.scores[i]});
  if (!made) return;
  const n = shownProposals(m).length;
  say(`proposal saved as a mask (Ctrl+Z takes it back); ${n ? proposalsText(n) : "none left"}`);
}

// the proposals `ids` saved as masks, one undo step logged as `action` (with `detail`); not
// shown while they are saved, so a second click or Enter meanwhile does not save them twice.
// The ids made, or null when refused (they show again)
async function save(m, ids, action, detail = {}) {
  const p = props(m), r = p.answer;
  const create = ids.map((i) => ({class_id: r.labels[i], kind: "mask", geometry: {mask: r.masks[i]}, score: r.scores[i], source: "proposal"}));
  for (const i of ids) p.saving.add(i);
  update(m, p, {});
  const made = await m.page.changes.change(create, [], action, {detail});
  for (const i of ids) p.saving.delete(i);
  update(m, p, {});  // saved, those over a saved mask hide
  return made;
}
