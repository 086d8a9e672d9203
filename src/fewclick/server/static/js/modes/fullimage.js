// Full image (G): every pixel of the image in one region. Pick a class, click a region's
// left-, right-, top- and bottom-most points (any order): after the 4th click every region
// is computed again and the image fills with them. A drag that starts inside a region is a
// scribble: the pixels it crosses belong to that region, and every region it touches
// changes. Regions are listed with their areas; Delete removes the selected one, 1-9
// changes its class; Ctrl+Z / Ctrl+Shift+Z undo and redo; Enter saves every region as a
// mask annotation (as mask mode saves masks). The server: POST /api/images/{id}/fullimage.
// Every pixel goes to some region, so objects of one class on a background need a
// background region (X, or the panel's button): its box is the whole image, the pixels no
// object claims go to it, and it is not saved. Regions not saved yet are kept as a draft in
// this browser (localStorage, per image) and come back when the image opens again.
import {api, esc, say} from "../api.js";
import {change} from "../changes.js";
import {logEvent} from "../events.js";
import {prepareLine, renderPanel} from "../panel.js";
import {rleRuns} from "../rle.js";
import {S} from "../state.js";
import {cross, insideImage} from "../view.js";

const FILL_ALPHA = 0.45, SELECTED_ALPHA = 0.7;
const EDGE_PX = 8;  // screen pixels past the image's edge an extreme click still counts as on it

export const fullimage = {
  name: "fullimage", key: "g", title: "Full image (G)",

  init() {
    S.full = {
      regions: [],  // per region {cls, extreme: [[x, y] x 4], scribbles: [[[x, y], ...], ...], background?}
      pending: [],  // the extreme clicks of the region being placed (fewer than 4)
      answer: null,  // the server's last answer: {regions: [{index, rle, area}], method, ms}
      labels: null,  // Int32Array, row-major: the region of every pixel in that answer
      overlay: null,  // the regions drawn into a canvas of the image's size
      selected: null,  // the index of the region selected in the list
      history: [], future: [],  // snapshots of `regions` for undo / redo
      good: [], goodHistory: 0,  // the regions of the last answer, and the undo steps to them:
                                 // what a refused request goes back to
      asked: 0, answered: 0, error: null, busy: null,
    };
  },

  escape() {
    S.full.pending = [];
    select(null);
  },

  // the draft of an earlier visit: its regions, computed again; what to say, or null
  restore() {
    const regions = loadDraft();
    if (!regions.length) return null;
    S.full.regions = regions;
    compute(null);
    return `${regions.length} region${regions.length > 1 ? "s" : ""} not saved on your last visit restored: Enter saves, Delete removes`;
  },

  unsaved() {
    const n = S.full.regions.filter((r) => !r.background).length;
    return n ? `${n} region${n > 1 ? "s" : ""} not saved` : "";
  },

  press(e, x, y) {
    if (e.button === 0) S.drag.points = [clamped(x, y)];
  },

  move(d) {
    if (!d.points) return;
    const p = clamped(d.x, d.y), last = d.points[d.points.length - 1];
    if (Math.hypot(p[0] - last[0], p[1] - last[1]) * S.view.scale >= 2) d.points.push(p);
  },

  async release(d, moved) {
    if (d.button !== 0) return;
    if (!moved) return extremeClick(d.x0, d.y0);
    const region = regionAt(d.x0, d.y0);
    if (region == null) {
      return say("a scribble starts inside a region: give a region its 4 extreme points first, then drag from inside it", true);
    }
    const points = [...d.points, clamped(d.x, d.y)];
    logEvent("draw", {mode: "fullimage", scribble: points.length, region});
    edit((regions) => regions[region].scribbles.push(points));
    await compute([region]);
  },

  keydown(e, key) {
    if ((e.key === "Delete" || e.key === "Backspace") && S.full.selected != null) {
      deleteRegion(S.full.selected);
      return true;
    }
    if (key === "x") { addBackground(); return true; }
    return false;
  },

  // undo: the last extreme click of an unfinished region, else the last change to the regions
  undo(again) {
    const f = S.full;
    if (!again && f.pending.length) { f.pending.pop(); S.dirty = true; renderPanel(); return true; }
    const from = again ? f.future : f.history, to = again ? f.history : f.future;
    if (!from.length) return false;
    to.push(structuredClone(f.regions));
    f.regions = from.pop();
    saveDraft();
    if (f.selected != null && f.selected >= f.regions.length) f.selected = null;
    logEvent(again ? "redo" : "undo", {mode: "fullimage"});
    compute(null);
    return true;
  },

  pickClass(id) {
    const f = S.full;
    if (f.selected == null || f.regions[f.selected].background || f.regions[f.selected].cls === id) return;
    edit((regions) => { regions[f.selected].cls = id; });
    logEvent("class change", {mode: "fullimage"});
    paint();
  },

  accept: acceptRegions,

  panel(el) {
    const f = S.full, next = S.classes.get(S.cls);
    const total = S.image.width * S.image.height;
    el.innerHTML = `<h3>full image</h3><div class="muted" id="mode-help">Click a region's left-, right-, top- and
      bottom-most points (any order) for the picked class; after the 4th every region is computed again. Drag from
      inside a region to scribble. In the list: select, then 1-9 or Delete. Enter saves all; Esc drops the clicks.</div>`;
    prepareLine(el, "sam");
    el.insertAdjacentHTML("beforeend", `<div id="full-next">next region: <span class="swatch" style="background:${next?.color}"></span>
        ${esc(next?.name ?? "-")}, ${f.pending.length} of 4 clicks</div>
      <div id="full-method" class="muted">${f.answer ? `regions from ${esc(f.answer.method)} in ${Math.round(f.answer.ms)} ms` : ""}${f.busy ? " (computing...)" : ""}</div>
      ${backgroundOffer()}
      <div class="region-list" id="regions">${f.regions.map((r, i) => {
        const c = r.background ? BACKGROUND : S.classes.get(r.cls), area = f.answer?.regions[i]?.area;
        const size = area == null ? "..." : area === 0 ? "0 px: covered by the others" : `${area} px (${(100 * area / total).toFixed(1)}%)`;
        return `<div data-region="${i}" class="${f.selected === i ? "current" : ""}"><span class="swatch" style="background:${c?.color}"></span>
          <span>${i + 1} ${esc(c?.name ?? "?")}</span><span class="area">${size}</span>
          <button data-delete="${i}" title="delete this region">x</button></div>`;
      }).join("")}</div>`);
    el.querySelector("#add-background")?.addEventListener("click", addBackground);
    for (const row of el.querySelectorAll("[data-region]")) {
      row.addEventListener("click", (e) => {
        const i = +row.dataset.region;
        if (e.target.dataset.delete != null) return deleteRegion(i);
        select(S.full.selected === i ? null : i);
      });
    }
  },

  draw(ctx, lw) {
    const f = S.full;
    if (f.overlay) ctx.drawImage(f.overlay, 0, 0);
    f.regions.forEach((r, i) => {
      const color = r.background ? BACKGROUND.color : S.classes.get(r.cls)?.color ?? "#fff";
      for (const s of r.scribbles) polyline(ctx, s, color, lw);
      if (r.background) return;  // its points are the image's edges
      for (const [x, y] of r.extreme) dot(ctx, x, y, color, lw);
      if (i === f.selected) {
        const [x0, y0, x1, y1] = box(r.extreme);
        ctx.setLineDash([5 * lw, 3 * lw]); ctx.strokeStyle = "#fff"; ctx.lineWidth = lw;
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0); ctx.setLineDash([]);
      }
    });
    for (const [x, y] of f.pending) cross(x, y, S.classes.get(S.cls)?.color ?? "#fff", lw);
    const d = S.drag;
    if (d?.points && d.points.length > 1) {
      const region = regionAt(d.x0, d.y0);
      polyline(ctx, d.points, region == null ? "#ff3b3b" : regionColor(f.regions[region]), lw);
    }
  },
};

// ------------------------------------------------------------------ regions
const BACKGROUND = {name: "background (not saved)", color: "#9aa3b5"};
const regionColor = (r) => (r.background ? BACKGROUND.color : S.classes.get(r.cls)?.color ?? "#fff");

// why a background region, and the button that adds one; once there, what it does
function backgroundOffer() {
  if (S.full.regions.some((r) => r.background)) {
    return `<div id="full-background" class="has">The background region takes the pixels no object claims; it is not saved.</div>`;
  }
  const one = S.classes.size === 1 ? " With one class, a few objects split the whole image between them (strips)." : "";
  return `<div id="full-background">Every pixel goes to one of your regions: the pixels between objects go to the
    nearest one.${one} Add a background region for them; it is not saved.
    <button id="add-background">Add background (X)</button></div>`;
}

// the background region: the whole image's box (its 4 extreme points on the edges' middles)
function addBackground() {
  const f = S.full;
  if (f.regions.some((r) => r.background)) return say("this image already has a background region");
  const w = S.image.width, h = S.image.height, [right, bottom] = clamped(w, h);
  const extreme = [[0, h / 2], [right, h / 2], [w / 2, 0], [w / 2, bottom]];
  edit((regions) => regions.push({cls: null, extreme, scribbles: [], background: true}));
  logEvent("click", {mode: "fullimage", background: true});
  return compute([f.regions.length - 1]);
}

// regions not saved yet, kept in this browser per image until they are saved or gone
const draftKey = () => `fewclick.fullimage.draft.${S.image.id}`;

function saveDraft() {
  const regions = S.full.regions;
  if (regions.some((r) => !r.background)) localStorage.setItem(draftKey(), JSON.stringify(regions));
  else localStorage.removeItem(draftKey());
}

function loadDraft() {
  let regions;
  try { regions = JSON.parse(localStorage.getItem(draftKey()) ?? "[]"); } catch { regions = []; }
  if (!Array.isArray(regions)) return [];
  return regions.filter((r) => r && Array.isArray(r.extreme) && r.extreme.length === 4
    && Array.isArray(r.scribbles) && (r.background || S.classes.has(r.cls)));
}

function extremeClick(x, y) {
  // regions reach the image's edges (sky, ground): a click just past an edge is on it
  const [cx, cy] = clamped(x, y);
  if (Math.hypot(cx - x, cy - y) * S.view.scale > EDGE_PX) return say("that click is outside the image", true);
  [x, y] = [cx, cy];
  const f = S.full;
  f.pending.push([x, y]);
  logEvent("click", {mode: "fullimage", x, y, class_id: S.cls});
  S.dirty = true;
  if (f.pending.length < 4) return renderPanel();
  const extreme = f.pending;
  f.pending = [];
  edit((regions) => regions.push({cls: S.cls, extreme, scribbles: []}));
  return compute([f.regions.length - 1]);
}

function deleteRegion(i) {
  const f = S.full;
  edit((regions) => regions.splice(i, 1));
  f.selected = f.selected === i ? null : f.selected > i ? f.selected - 1 : f.selected;
  logEvent("delete", {mode: "fullimage"});
  return compute(null);
}

// change the regions as one undoable step
function edit(fn) {
  const f = S.full;
  f.history.push(structuredClone(f.regions));
  f.future = [];
  fn(f.regions);
  saveDraft();
  S.dirty = true;
}

function select(i) {
  S.full.selected = i;
  paint();
  renderPanel();
}

// Every region computed again by the server, one request at a time: a change made while
// one is under way waits and goes with the regions as they are then (`changed`: the regions
// whose own points or scribbles changed, null for all). A refused request (the page says
// why) puts the regions back as the last answer had them.
function compute(changed) {
  const f = S.full;
  f.waiting = f.waiting === undefined ? changed : (f.waiting && changed ? [...new Set([...f.waiting, ...changed])] : null);
  if (f.busy) return f.busy;
  f.busy = (async () => {
    while (f.waiting !== undefined) {
      const asked = f.waiting;
      delete f.waiting;
      await ask(f, asked);
    }
    f.busy = null;
    renderPanel();
  })();
  renderPanel();
  return f.busy;
}

async function ask(f, changed) {
  const regions = structuredClone(f.regions);
  f.asked++;
  if (!regions.length) {
    Object.assign(f, {answer: null, labels: null, overlay: null, good: [], goodHistory: f.history.length});
    f.answered++;
    S.dirty = true;
    return;
  }
  const body = {regions: regions.map((r) => ({extreme: r.extreme, scribbles: r.scribbles, background: !!r.background})), changed};
  try {
    const out = await api("POST", `/api/images/${S.image.id}/fullimage`, body);
    if (S?.full !== f) return;  // another image since
    f.labels = labelMap(out.regions);
    Object.assign(f, {answer: out, good: regions, goodHistory: f.history.length, error: null});
    paint();
  } catch (err) {
    if (S?.full !== f) return;
    f.error = err.message;
    if (err.status === undefined) say(err.message, true);  // else api() has shown it
    f.regions = structuredClone(f.good);
    saveDraft();
    f.history.length = Math.min(f.history.length, f.goodHistory);
    f.future = [];
    if (f.selected != null && f.selected >= f.regions.length) f.selected = null;
    delete f.waiting;
  } finally {
    f.answered++;
    S.dirty = true;
    renderPanel();
  }
}

// the region of every pixel (row-major; -1 where none) from the answer's RLE masks
function labelMap(answers) {
  const w = S.image.width, h = S.image.height;
  const labels = new Int32Array(w * h).fill(-1);
  for (const {index, rle} of answers) {
    const [rh, rw, runs] = rleRuns(rle);
    if (rh !== h || rw !== w) throw new Error(`region ${index}'s mask is ${rw} x ${rh}, not the image's ${w} x ${h}`);
    let i = 0, on = false;
    for (const n of runs) {
      if (on) for (let j = i; j < i + n; j++) labels[(j % h) * w + Math.floor(j / h)] = index;  // column-major runs
      i += n; on = !on;
    }
  }
  return labels;
}

// the regions drawn once into an image-sized canvas: each in its class's colour, region
// boundaries white, the selected region stronger
function paint() {
  const f = S.full;
  S.dirty = true;
  if (!f.labels) { f.overlay = null; return; }
  const w = S.image.width, h = S.image.height, L = f.labels;
  const colors = f.good.map((r, i) => {
    const region = f.regions[i] ?? r;
    const hex = regionColor(region);
    const a = region.background && i !== f.selected ? 0 : Math.round(255 * (i === f.selected ? SELECTED_ALPHA : FILL_ALPHA));
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16), a];
  });
  const canvas = f.overlay ?? document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h), px = img.data;
  for (let y = 0, p = 0; y < h; y++) {
    for (let x = 0; x < w; x++, p++) {
      const k = L[p];
      if (k < 0) continue;
      const edge = (x + 1 < w && L[p + 1] !== k) || (y + 1 < h && L[p + w] !== k);
      const c = edge ? [255, 255, 255, 220] : colors[k];
      px[4 * p] = c[0]; px[4 * p + 1] = c[1]; px[4 * p + 2] = c[2]; px[4 * p + 3] = c[3];
    }
  }
  ctx.putImageData(img, 0, 0);
  f.overlay = canvas;
}

async function acceptRegions() {
  const f = S.full;
  if (f.busy) await f.busy;
  if (f.pending.length) return say(`the next region has ${f.pending.length} of its 4 clicks: finish it, or Esc drops them`, true);
  if (!f.regions.length || !f.answer) return;
  const objects = f.answer.regions.filter((r) => !f.regions[r.index].background);
  if (!objects.length) return say("only the background region: give the objects their regions first", true);
  const empty = objects.filter((r) => r.area === 0).map((r) => r.index + 1);
  if (empty.length) {
    return say(`region${empty.length > 1 ? "s" : ""} ${empty.join(", ")} cover${empty.length > 1 ? "" : "s"} no pixel: delete ${empty.length > 1 ? "them" : "it"} or scribble ${empty.length > 1 ? "them" : "it"} back; nothing saved`, true);
  }
  const create = objects.map((r) => ({class_id: f.regions[r.index].cls, kind: "mask", geometry: {mask: r.rle}, source: "fullimage"}));
  const made = await change(create, [], "accept");
  if (!made) return;  // refused; the regions stay to try again
  fullimage.init();
  saveDraft();  // nothing left unsaved
  say(`${made.length} regions saved as masks`);
  renderPanel();
}

// ------------------------------------------------------------------ geometry
function regionAt(x, y) {
  const f = S.full;
  if (!f.labels || !insideImage(x, y)) return null;
  const k = f.labels[Math.floor(y) * S.image.width + Math.floor(x)];
  return k >= 0 && k < f.regions.length ? k : null;
}

const clamped = (x, y) => [Math.min(Math.max(x, 0), S.image.width - 0.01), Math.min(Math.max(y, 0), S.image.height - 0.01)];

function box(points) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs) + 1, Math.max(...ys) + 1];
}

function polyline(ctx, points, color, lw) {
  ctx.lineCap = ctx.lineJoin = "round";
  for (const [style, width] of [["#fff", 4 * lw], [color, 2 * lw]]) {
    ctx.strokeStyle = style; ctx.lineWidth = width;
    ctx.beginPath(); ctx.moveTo(points[0][0], points[0][1]);
    for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
}

function dot(ctx, x, y, color, lw) {
  ctx.fillStyle = color; ctx.strokeStyle = "#fff"; ctx.lineWidth = lw;
  ctx.beginPath(); ctx.arc(x, y, 4 * lw, 0, 7); ctx.fill(); ctx.stroke();
}
