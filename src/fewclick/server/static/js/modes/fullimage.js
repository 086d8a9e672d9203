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
// Its state (fullimage_regions.js makes it): the regions, their undo steps and the last answer.
import {esc, say} from "../api.js";
import {pointsBox} from "../geometry.js";
import {prepareLine} from "../panel.js";
import {createStore} from "../store.js";
import {cross, dot} from "../view.js";
import {BACKGROUND, clamped, compute, edit, freshRegions, loadDraft, paint, regionAt, regionColor, saveDraft} from "./fullimage_regions.js";

const EDGE_PX = 8;  // screen pixels past the image's edge an extreme click still counts as on it

export function fullimage(page) {
  const m = {page, st: createStore(freshRegions(), page.redraw)};
  const f = m.st.get;
  return {
    name: "fullimage", key: "g", title: "Full image (G)",
    state: f,
    escape() { f().pending = []; select(m, null); },
    restore: () => restore(m),
    drafted: true,  // its regions are kept in this browser as they change: leaving loses none
    unsaved() {
      const n = f().regions.filter((r) => !r.background).length;
      return n ? `${n} region${n > 1 ? "s" : ""} not saved` : "";
    },
    press(d) { if (d.button === 0) d.points = [clamped(m, d.x0, d.y0)]; },
    move: (d) => move(m, d),
    release: (d, moved) => release(m, d, moved),
    keydown(e, key) {
      if ((e.key === "Delete" || e.key === "Backspace") && f().selected != null) { deleteRegion(m, f().selected); return true; }
      if (key === "x") { addBackground(m); return true; }
      return false;
    },
    undo: (again) => undo(m, again),
    pickClass: (id) => pickClass(m, id),
    accept: () => accept(m),
    panel: (el) => panel(m, el),
    draw: (ctx, lw, drag) => draw(m, ctx, lw, drag),
  };
}

// the draft of an earlier visit: its regions, computed again; what to say, or null
function restore(m) {
  const regions = loadDraft(m);
  if (!regions.length) return null;
  m.st.set({regions});
  compute(m, null);
  return `${regions.length} region${regions.length > 1 ? "s" : ""} not saved on your last visit restored: Enter saves, Delete removes`;
}

function move(m, d) {
  if (!d.points) return;
  const p = clamped(m, d.x, d.y), last = d.points[d.points.length - 1];
  if (Math.hypot(p[0] - last[0], p[1] - last[1]) * m.page.view.scale >= 2) d.points.push(p);
}

async function release(m, d, moved) {
  if (d.button !== 0) return;
  if (!moved) return extremeClick(m, d.x0, d.y0);
  const region = regionAt(m, d.x0, d.y0);
  if (region == null) {
    return say("a scribble starts inside a region: give a region its 4 extreme points first, then drag from inside it", true);
  }
  const points = [...d.points, clamped(m, d.x, d.y)];
  m.page.log("draw", {mode: "fullimage", scribble: points.length, region});
  edit(m, (regions) => regions[region].scribbles.push(points));
  await compute(m, [region]);
}

function extremeClick(m, x, y) {
  // regions reach the image's edges (sky, ground): a click just past an edge is on it
  const [cx, cy] = clamped(m, x, y);
  if (Math.hypot(cx - x, cy - y) * m.page.view.scale > EDGE_PX) return say("that click is outside the image", true);
  const f = m.st.get(), cls = m.page.doc.get().cls;
  f.pending.push([cx, cy]);
  m.page.log("click", {mode: "fullimage", x: cx, y: cy, class_id: cls});
  m.st.set();
  if (f.pending.length < 4) return m.page.panel();
  const extreme = f.pending;
  f.pending = [];
  edit(m, (regions) => regions.push({cls, extreme, scribbles: []}));
  return compute(m, [f.regions.length - 1]);
}

// the background region: the whole image's box (its 4 extreme points on the edges' middles)
function addBackground(m) {
  const f = m.st.get();
  if (f.regions.some((r) => r.background)) return say("this image already has a background region");
  const {width: w, height: h} = m.page.doc.get().image, [right, bottom] = clamped(m, w, h);
  const extreme = [[0, h / 2], [right, h / 2], [w / 2, 0], [w / 2, bottom]];
  edit(m, (regions) => regions.push({cls: null, extreme, scribbles: [], background: true}));
  m.page.log("click", {mode: "fullimage", background: true});
  return compute(m, [f.regions.length - 1]);
}

function deleteRegion(m, i) {
  const f = m.st.get();
  edit(m, (regions) => regions.splice(i, 1));
  f.selected = f.selected === i ? null : f.selected > i ? f.selected - 1 : f.selected;
  m.page.log("delete", {mode: "fullimage"});
  return compute(m, null);
}

function select(m, i) {
  m.st.get().selected = i;
  paint(m);
  m.page.panel();
}

// undo: the last extreme click of an unfinished region, else the last change to the regions
function undo(m, again) {
  const f = m.st.get();
  if (!again && f.pending.length) { f.pending.pop(); m.st.set(); m.page.panel(); return true; }
  const from = again ? f.future : f.history, to = again ? f.history : f.future;
  if (!from.length) return false;
  to.push(structuredClone(f.regions));
  f.regions = from.pop();
  saveDraft(m);
  if (f.selected != null && f.selected >= f.regions.length) f.selected = null;
  m.page.log(again ? "redo" : "undo", {mode: "fullimage"});
  compute(m, null);
  return true;
}

function pickClass(m, id) {
  const f = m.st.get();
  if (f.selected == null || f.regions[f.selected].background || f.regions[f.selected].cls === id) return;
  edit(m, (regions) => { regions[f.selected].cls = id; });
  m.page.log("class change", {mode: "fullimage"});
  paint(m);
}

async function accept(m) {
  const f = m.st.get();
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
  const made = await m.page.changes.change(create, [], "accept");
  if (!made) return;  // refused; the regions stay to try again
  m.st.set(freshRegions());
  saveDraft(m);  // nothing left unsaved
  say(`${made.length} regions saved as masks`);
  m.page.panel();
}

function panel(m, el) {
  const f = m.st.get(), {classes, cls, image, prep} = m.page.doc.get(), next = classes.get(cls);
  el.innerHTML = `<h3>full image</h3><div class="muted" id="mode-help">Click a region's left-, right-, top- and
    bottom-most points (any order) for the picked class; after the 4th every region is computed again. Drag from
    inside a region to scribble. In the list: select, then 1-9 or Delete. Enter saves all; Esc drops the clicks.</div>`;
  prepareLine(el, prep, "sam");
  el.insertAdjacentHTML("beforeend", `<div id="full-next">next region: <span class="swatch" style="background:${next?.color}"></span>
      ${esc(next?.name ?? "-")}, ${f.pending.length} of 4 clicks</div>
    <div id="full-method" class="muted">${f.answer ? `regions from ${esc(f.answer.method)} in ${Math.round(f.answer.ms)} ms` : ""}${f.busy ? " (computing...)" : ""}</div>
    ${backgroundOffer(f, classes)}
    <div class="region-list" id="regions">${f.regions.map((r, i) => regionRow(f, r, i, classes, image.width * image.height)).join("")}</div>`);
  el.querySelector("#add-background")?.addEventListener("click", () => addBackground(m));
  for (const row of el.querySelectorAll("[data-region]")) {
    row.addEventListener("click", (e) => {
      const i = +row.dataset.region;
      if (e.target.dataset.delete != null) return deleteRegion(m, i);
      select(m, f.selected === i ? null : i);
    });
  }
}

function regionRow(f, r, i, classes, total) {
  const c = r.background ? BACKGROUND : classes.get(r.cls), area = f.answer?.regions[i]?.area;
  const size = area == null ? "..." : area === 0 ? "0 px: covered by the others" : `${area} px (${(100 * area / total).toFixed(1)}%)`;
  return `<div data-region="${i}" class="${f.selected === i ? "current" : ""}"><span class="swatch" style="background:${c?.color}"></span>
    <span>${i + 1} ${esc(c?.name ?? "?")}</span><span class="area">${size}</span>
    <button data-delete="${i}" title="delete this region">x</button></div>`;
}

// why a background region, and the button that adds one; once there, what it does
function backgroundOffer(f, classes) {
  if (f.regions.some((r) => r.background)) {
    return `<div id="full-background" class="has">The background region takes the pixels no object claims; it is not saved.</div>`;
  }
  const one = classes.size === 1 ? " With one class, a few objects split the whole image between them (strips)." : "";
  return `<div id="full-background">Every pixel goes to one of your regions: the pixels between objects go to the
    nearest one.${one} Add a background region for them; it is not saved.
    <button id="add-background">Add background (X)</button></div>`;
}

function draw(m, ctx, lw, d) {
  const f = m.st.get();
  if (f.overlay) ctx.drawImage(f.overlay, 0, 0);
  f.regions.forEach((r, i) => {
    const color = regionColor(m, r);
    for (const s of r.scribbles) polyline(ctx, s, color, lw);
    if (r.background) return;  // its points are the image's edges
    for (const [x, y] of r.extreme) dot(ctx, x, y, 4 * lw, color, "#fff", lw);
    if (i === f.selected) {
      const [x0, y0, x1, y1] = pointsBox(r.extreme);  // and the last pixels' width
      ctx.setLineDash([5 * lw, 3 * lw]); ctx.strokeStyle = "#fff"; ctx.lineWidth = lw;
      ctx.strokeRect(x0, y0, x1 + 1 - x0, y1 + 1 - y0); ctx.setLineDash([]);
    }
  });
  for (const [x, y] of f.pending) cross(ctx, x, y, m.page.color(m.page.doc.get().cls), lw);
  if (d?.points && d.points.length > 1) {
    const region = regionAt(m, d.x0, d.y0);
    polyline(ctx, d.points, region == null ? "#ff3b3b" : regionColor(m, f.regions[region]), lw);
  }
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
