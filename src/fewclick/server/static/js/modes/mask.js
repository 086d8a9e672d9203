// Box-to-mask (M): drag a box (or click a box object) and its mask appears; left clicks add
// to it, right clicks remove; Tab (Shift+Tab) switches to SAM's other candidate masks;
// Ctrl+Z / Ctrl+Shift+Z undo and redo the clicks and switches; Enter accepts the mask shown
// (replacing the box object it came from).
import {api, esc, say} from "../api.js";
import {change} from "../changes.js";
import {logEvent} from "../events.js";
import {helpPanel, prepareLine, renderPanel} from "../panel.js";
import {rleCanvas} from "../rle.js";
import {S} from "../state.js";
import {dragRect, hit, insideImage} from "../view.js";

export const mask = {
  name: "mask", key: "m", title: "Mask (M)",
  init() { S.seg = null; },
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
    } else if (S.seg && !moved) {
      if (!insideImage(d.x0, d.y0)) return say("that click is outside the image", true);
      remember();
      S.seg.clicks.push([d.x0, d.y0, d.button === 0]);
      logEvent("click", {mode: "mask", positive: d.button === 0});
      await segmentNow();
    }
  },

  accept: acceptMask,

  // Tab / Shift+Tab: the next / previous of SAM's candidate masks for the same prompt
  keydown(e) {
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
    helpPanel(el, "mask", S.seg ? `Left click: add to the mask, right click: remove. Tab: another candidate mask. Enter accepts, Esc drops. ${S.seg.clicks.length} clicks.` : "Drag a box (or click a box object) and its mask appears.");
    prepareLine(el, "sam", S.prep?.backend === "sam");
    if (S.seg) {
      const r = S.seg.result;
      el.insertAdjacentHTML("beforeend", `<div id="mask-info">backend <b id="mask-backend">${esc(r?.method ?? "...")}</b>${r?.chosen_by === "you" ? " (chosen by you)" : ""}<br>
        ${candidatesLine(S.seg)}score ${r ? shownMask(S.seg).score.toFixed(2) : "-"}, ${r?.quality != null ? `estimated quality <b id="mask-quality">${r.quality.toFixed(2)}</b>` : "no quality estimate yet (compare the backends on 10 finished masks)"}</div>`);
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
    } else if (S.drag?.kind === "press") {
      dragRect(S.drag, lw);
    }
  },
};

// a mask in the making: its box, clicks, the last answer and which of its candidates shows;
// history / future: snapshots for undo / redo
const fresh = (box, from) => ({box, clicks: [], result: null, shown: 0, from, history: [], future: []});
const snapshot = (seg) => ({clicks: [...seg.clicks], result: seg.result, shown: seg.shown});

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

async function segmentNow() {
  const seg = S.seg;
  seg.busy = (seg.busy || Promise.resolve()).then(async () => {
    // the candidate shown when the click was made is the one SAM refines
    const candidate = seg.clicks.length ? seg.shown : 0;
    const out = await api("POST", `/api/images/${S.image.id}/segment`, {box: seg.box, clicks: seg.clicks, candidate});
    seg.result = out;
    seg.answered = seg.clicks.length;
    showCandidate(0);
  }).catch((err) => { seg.error = err.message; });  // api() has already shown it
  return seg.busy;
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
