// Full image mode's regions (fullimage.js is the mode): its state, each change as an undo
// step, the draft kept in this browser, the server's answer (one request at a time) and the
// overlay that draws it. Every function takes the mode `m`: {page, st (its store)}.
import {api, say} from "../api.js";
import {rleRuns} from "../rle.js";

const FILL_ALPHA = 0.45, SELECTED_ALPHA = 0.7;
export const BACKGROUND = {name: "background (not saved)", color: "#9aa3b5"};

export const freshRegions = () => ({
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
});

export const regionColor = (m, r) => (r.background ? BACKGROUND.color : m.page.color(r.cls));

export function clamped(m, x, y) {
  const {width, height} = m.page.doc.get().image;
  return [Math.min(Math.max(x, 0), width - 0.01), Math.min(Math.max(y, 0), height - 0.01)];
}

// the region under (x, y) in the last answer, or null
export function regionAt(m, x, y) {
  const f = m.st.get();
  if (!f.labels || !m.page.view.inside(x, y)) return null;
  const k = f.labels[Math.floor(y) * m.page.doc.get().image.width + Math.floor(x)];
  return k >= 0 && k < f.regions.length ? k : null;
}

// change the regions as one undoable step
export function edit(m, fn) {
  const f = m.st.get();
  f.history.push(structuredClone(f.regions));
  f.future = [];
  fn(f.regions);
  saveDraft(m);
  m.st.set();
}

// regions not saved yet, kept in this browser per image until they are saved or gone
const draftKey = (m) => `fewclick.fullimage.draft.${m.page.doc.get().image.id}`;

export function saveDraft(m) {
  const regions = m.st.get().regions;
  if (regions.some((r) => !r.background)) localStorage.setItem(draftKey(m), JSON.stringify(regions));
  else localStorage.removeItem(draftKey(m));
}

export function loadDraft(m) {
  let regions;
  try { regions = JSON.parse(localStorage.getItem(draftKey(m)) ?? "[]"); } catch { regions = []; }
  if (!Array.isArray(regions)) return [];
  const classes = m.page.doc.get().classes;
  return regions.filter((r) => r && Array.isArray(r.extreme) && r.extreme.length === 4
    && Array.isArray(r.scribbles) && (r.background || classes.has(r.cls)));
}

// Every region computed again by the server, one request at a time: a change made while
// one is under way waits and goes with the regions as they are then (`changed`: the regions
// whose own points or scribbles changed, null for all). A refused request (the page says
// why) puts the regions back as the last answer had them.
export function compute(m, changed) {
  const f = m.st.get();
  f.waiting = f.waiting === undefined ? changed : (f.waiting && changed ? [...new Set([...f.waiting, ...changed])] : null);
  if (f.busy) return f.busy;
  f.busy = (async () => {
    while (f.waiting !== undefined) {
      const asked = f.waiting;
      delete f.waiting;
      await ask(m, asked);
    }
    m.st.set({busy: null});
    m.page.panel();
  })();
  m.page.panel();
  return f.busy;
}

async function ask(m, changed) {
  const f = m.st.get(), regions = structuredClone(f.regions);
  f.asked++;
  if (!regions.length) {
    m.st.set({answer: null, labels: null, overlay: null, good: [], goodHistory: f.history.length, answered: f.answered + 1});
    return;
  }
  const body = {regions: regions.map((r) => ({extreme: r.extreme, scribbles: r.scribbles, background: !!r.background})), changed};
  try {
    const out = await api("POST", `/api/images/${m.page.doc.get().image.id}/fullimage`, body);
    if (!m.page.live()) return;  // another image since
    f.labels = labelMap(m, out.regions);
    Object.assign(f, {answer: out, good: regions, goodHistory: f.history.length, error: null});
    paint(m);
  } catch (err) {
    if (!m.page.live()) return;
    refused(m, err);
  } finally {
    f.answered++;
    m.st.set();
    m.page.panel();
  }
}

// the regions as the last answer had them
function refused(m, err) {
  const f = m.st.get();
  f.error = err.message;
  if (err.status === undefined) say(err.message, true);  // else api() has shown it
  f.regions = structuredClone(f.good);
  saveDraft(m);
  f.history.length = Math.min(f.history.length, f.goodHistory);
  f.future = [];
  if (f.selected != null && f.selected >= f.regions.length) f.selected = null;
  delete f.waiting;
}

// the region of every pixel (row-major; -1 where none) from the answer's RLE masks
function labelMap(m, answers) {
  const {width: w, height: h} = m.page.doc.get().image;
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
export function paint(m) {
  const f = m.st.get();
  if (!f.labels) return m.st.set({overlay: null});
  const {width: w, height: h} = m.page.doc.get().image, L = f.labels;
  const colors = f.good.map((r, i) => {
    const region = f.regions[i] ?? r;
    const hex = regionColor(m, region);
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
  m.st.set({overlay: canvas});
}
