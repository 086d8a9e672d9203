// The mode panel beside the canvas: what the current mode shows there (its help, its
// state) and the line saying whether SAM has encoded the image yet.
import {esc} from "./api.js";
import {S} from "./state.js";

// annotate.js sets what renders the panel; any module may ask for it after a change
let render = () => {};
export function renderPanel() { render(); }
export function setPanelRenderer(fn) { render = fn; }

// a mode's title and help text, the whole panel of most modes
export function helpPanel(el, title, help) {
  el.innerHTML = `<h3>${esc(title)}</h3><div class="muted" id="mode-help">${esc(help)}</div>`;
}

// whether SAM's embedding of the image is ready for `use` (what SAM serves in this mode:
// "sam", "sam-centre"); nothing when SAM does not serve it here
export function prepareLine(el, use, serves = true) {
  el.insertAdjacentHTML("beforeend", `<div id="prepare" class="${S.prep?.ready ? "ready" : "preparing"}">${esc(prepText(use, serves))}</div>`);
}

function prepText(use, serves) {
  const p = S.prep;
  if (!p) return "preparing image...";
  if (p.failed) return `cannot prepare this image: ${p.failed}`;
  if (!p.needs_sam || !serves) return "";
  return p.ready ? `image ready for ${use}` : "preparing image (sam encodes it once, a few seconds)...";
}
