// Box-to-mask (M): drag a box (or click a box object) and its mask appears; left clicks add
// to it, right clicks remove; Enter accepts the mask (replacing the box object it came from).
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
      S.seg = {box, clicks: [], result: null, from: null};
      logEvent("draw", {mode: "mask"});
      await segmentNow();
    } else if (!S.seg && !moved) {
      const a = hit(d.x0, d.y0);
      if (a && a.geometry.box) {
        S.seg = {box: a.geometry.box, clicks: [], result: null, from: a.kind === "box" ? a.id : null};
        S.cls = a.class_id;
        await segmentNow();
      }
    } else if (S.seg && !moved) {
      if (!insideImage(d.x0, d.y0)) return say("that click is outside the image", true);
      S.seg.clicks.push([d.x0, d.y0, d.button === 0]);
      logEvent("click", {mode: "mask", positive: d.button === 0});
      await segmentNow();
    }
  },

  accept: acceptMask,

  panel(el) {
    helpPanel(el, "mask", S.seg ? `Left click: add to the mask, right click: remove. Enter accepts, Esc drops. ${S.seg.clicks.length} clicks.` : "Drag a box (or click a box object) and its mask appears.");
    prepareLine(el, "sam", S.prep?.backend === "sam");
    if (S.seg) {
      const r = S.seg.result;
      el.insertAdjacentHTML("beforeend", `<div id="mask-info">backend <b id="mask-backend">${esc(r?.method ?? "...")}</b>${r?.chosen_by === "you" ? " (chosen by you)" : ""}<br>
        score ${r ? r.score.toFixed(2) : "-"}, ${r?.quality != null ? `estimated quality <b id="mask-quality">${r.quality.toFixed(2)}</b>` : "no quality estimate yet (compare the backends on 10 finished masks)"}</div>`);
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

async function segmentNow() {
  const seg = S.seg;
  seg.busy = (seg.busy || Promise.resolve()).then(async () => {
    const out = await api("POST", `/api/images/${S.image.id}/segment`, {box: seg.box, clicks: seg.clicks});
    seg.result = out;
    seg.canvas = out.box ? rleCanvas(out.mask, out.box, S.classes.get(S.cls).color, 0.45) : null;
    seg.answered = seg.clicks.length;
    S.dirty = true;
    renderPanel();
  }).catch((err) => { seg.error = err.message; });  // api() has already shown it
  return seg.busy;
}

async function acceptMask() {
  if (S.seg?.busy) await S.seg.busy;  // the answer to the last click first
  const r = S.seg?.result;
  if (!r || !r.box) return;
  const replace = S.seg.from != null ? [S.seg.from] : [];
  const create = [{class_id: S.cls, kind: "mask", geometry: {mask: r.mask}, score: r.score, quality: r.quality,
                   source: "segment", backend: r.method}];
  S.seg = null;
  await change(create, replace, "accept");
}
