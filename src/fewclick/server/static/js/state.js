// The annotation page's state `S` (null on other pages): the image, its annotations, the
// view, the current mode and each mode's own part (S.detect, S.seg, S.full, ...).
// Importers see the live value; only annotate.js sets it.
export let S = null;
export function setState(state) { S = state; }
