// The one door through which the browser tests and the benchmarks that drive the page
// (tests/server/test_browser*.py, benchmarks/*.py) read its state: window.fewclickTest.
// Its getters are read-only and undefined while their page is not shown:
//   page: "annotate", "queue" or null, the page that registered last;
//   the annotation page: ready (pixels loaded, view fitted: clicks land where aimed),
//     image, project, mode, cls (the picked class), classes (Map id -> class),
//     anns (Map id -> saved annotation), selected (Set of ids), prep (SAM's preparation),
//     prepSeen (its states, in order), look ({brightness, contrast}), canvas, tilesReady
//     (the tiles of a large image loaded),
//     view ({scale, ox, oy}: a screen pixel is o + scale * image pixel), frames (the last
//     600 draw times in ms), and the modes' own state: detect (its clicks, result, answered,
//     error, asking: the answers under way), minScore (detect's slider), seg (the mask being
//     made, with seg.outline: its outline being edited, {rings, picked, redraw}),
//     outlineTimes (ms from each outline edit's input event to the end of the frame that
//     drew its mask: the last 600),
//     maskProposals (mask mode's proposals: {image, state, note, answer, rejected (indices),
//     hidden, shown (the indices shown)}), maskWays (the image's masks made with SAM, timed:
//     mask_ways.js's {image, made, said, line}), outline (polygon's),
//     full (full image's regions, answer, labels, overlay, answered, busy, error);
//   the review queue: queue ({next, view, busy, extreme, edit}).
// Its functions: shownProposals(state) (detect's rule, on the current state or one given:
// {result, clicks, replaced, minScore, minScoreByHand}), sliderValue(threshold) (where
// detect's slider starts for a suggested score), drawnCorners(a); and for
// benchmarks only, setView({scale, ox, oy}) (a zoom they show), resetFrames() and
// resetOutlineTimes().
import {drawnCorners} from "./geometry.js";
import {shownProposals, sliderValue} from "./modes/detect.js";
import {EDIT_TIMES} from "./modes/outline.js";

const shown = {annotate: null, queue: null};  // each page's reader of its state, while shown
let last = null;

// a page starts (read: () => its state) or ends (null)
export function showing(page, read) {
  shown[page] = read;
  if (read) last = page; else if (last === page) last = null;
}

const A = () => shown.annotate?.();
const doc = (field) => () => A()?.doc.get()[field];
const mode = (name) => A()?.modes.find((m) => m.name === name)?.state();

const getters = {
  page: () => last,
  ready: () => A()?.ready,
  look: () => A()?.view.store.get().look,
  view: () => { const v = A()?.view.store.get(); return v && {scale: v.scale, ox: v.ox, oy: v.oy}; },
  canvas: () => A()?.view.canvas,
  frames: () => A()?.frames,
  tilesReady: () => A()?.view.tilesReady(),
  detect: () => mode("detect"),
  minScore: () => mode("detect")?.minScore,
  seg: () => mode("mask")?.seg,
  maskProposals: () => {
    const p = mode("mask")?.props;
    return p && {image: p.image, state: p.state, note: p.note, answer: p.answer, rejected: [...p.rejected], hidden: p.hidden, shown: mode("mask").proposalsShown};
  },
  maskWays: () => mode("mask")?.ways,
  outlineTimes: () => (A() ? [...EDIT_TIMES] : undefined),
  outline: () => mode("polygon")?.outline,
  full: () => mode("fullimage"),
  queue: () => shown.queue?.() ?? null,
};
for (const f of ["image", "project", "mode", "cls", "classes", "anns", "selected", "prep", "prepSeen"]) getters[f] = doc(f);

const hook = {
  shownProposals: (state = mode("detect")) => shownProposals(state),
  sliderValue,
  drawnCorners,
  setView: (v) => A()?.view.store.set({scale: v.scale, ox: v.ox, oy: v.oy}),
  resetFrames: () => { A()?.frames.splice(0); },
  resetOutlineTimes: () => { EDIT_TIMES.splice(0); },
};
for (const [name, get] of Object.entries(getters)) Object.defineProperty(hook, name, {get, enumerable: true});
Object.defineProperty(window, "fewclickTest", {value: Object.freeze(hook)});
