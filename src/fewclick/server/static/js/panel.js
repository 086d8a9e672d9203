// What the mode panels beside the canvas share: a mode's title and help text, and the line
// saying whether SAM has encoded the image yet.
import {esc} from "./api.js";

// a mode's title and help text, the whole panel of most modes
export function helpPanel(el, title, help) {
  el.innerHTML = `<h3>${esc(title)}</h3><div class="muted" id="mode-help">${esc(help)}</div>`;
}

// whether SAM's embedding of the image is ready for `use` (what SAM serves in this mode:
// "sam", "sam-centre"); nothing when SAM does not serve it here. prep: the image's
// preparation as the server answered it (null while asked, {failed} when it failed)
export function prepareLine(el, prep, use, serves = true) {
  el.insertAdjacentHTML("beforeend", `<div id="prepare" class="${prep?.ready ? "ready" : "preparing"}">${esc(prepText(prep, use, serves))}</div>`);
}

function prepText(p, use, serves) {
  if (!p) return "preparing image...";
  if (p.failed) return `cannot prepare this image: ${p.failed}`;
  if (!p.needs_sam || !serves) return "";
  return p.ready ? `image ready for ${use}` : "preparing image (SAM encodes it once: a second or two on a free core, longer on a busy machine)...";
}
