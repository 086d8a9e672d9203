// Review (R): the objects from the least to the most certain; accept (A) or reject (X) each,
// N goes to the next; the list filters by class and score. Its state: the filter (the
// selection is the page's).
import {esc} from "../api.js";
import {hit} from "../pick.js";
import {createStore} from "../store.js";

export function review(page) {
  const m = {page, st: createStore({cls: "", minScore: 0}, page.redraw)};  // the filter
  return {
    name: "review", key: "r", title: "Review (R)",
    state: () => m.st.get(),
    keydown: (e, key) => keydown(m, e, key),
    panel: (el) => panel(m, el),
    release(d, moved) {
      if (!moved) selectOnly(m, hit(page.doc.get().anns, d.x0, d.y0, page.view.scale)?.id);
    },
    pickClass(id) { if (page.doc.get().selected.size) page.changes.classOfSelection(id); },
    visible: (a) => pass(m, a),  // the objects the filters let through are the ones drawn
  };
}

function pass(m, a) {
  const f = m.st.get();
  return !((f.cls && a.class_id !== +f.cls) || (a.score != null && a.score < f.minScore));
}

// the objects the filters let through, from the least to the most certain
const list = (m) => [...m.page.doc.get().anns.values()].filter((a) => pass(m, a))
  .sort((a, b) => (a.quality ?? a.score ?? 1) - (b.quality ?? b.score ?? 1));

function selectOnly(m, id) {
  m.page.doc.set({selected: new Set(id == null ? [] : [id])});
  m.page.panel();
}

function keydown(m, e, key) {
  const {selected} = m.page.doc.get();
  if (selected.size && (key === "a" || key === "x")) {
    m.page.changes.setReview([...selected], key === "a" ? "accepted" : "rejected");
    return true;
  }
  if (key !== "n") return false;
  const all = list(m);
  const i = all.findIndex((a) => selected.has(a.id));
  selectOnly(m, all[(i + 1) % Math.max(all.length, 1)]?.id);
  return true;
}

function panel(m, el) {
  const {classes, selected} = m.page.doc.get(), f = m.st.get();
  el.innerHTML = `<h3>Review</h3><div class="muted">A accept, X reject, N next.</div>
    <select id="f-class"><option value="">all classes</option>${[...classes.values()].map((c) => `<option value="${c.id}" ${+f.cls === c.id ? "selected" : ""}>${esc(c.name)}</option>`).join("")}</select>
    <label class="muted">min score <input id="f-score" type="range" min="0" max="1" step="0.05" value="${f.minScore}"></label>
    <div class="review-list">${list(m).map((a) => `<div data-ann="${a.id}" class="${selected.has(a.id) ? "current" : ""}">
      <span class="swatch" style="background:${classes.get(a.class_id).color}"></span>${a.kind}${a.backend ? ` <span class="backend">${esc(a.backend)}</span>` : ""} ${a.score != null ? a.score.toFixed(2) : ""}
      ${a.quality != null ? "q " + a.quality.toFixed(2) : ""} <b>${a.review}</b>
      <button data-review="accepted">A</button><button data-review="rejected">X</button></div>`).join("")}</div>`;
  el.querySelector("#f-class").addEventListener("change", (e) => { m.st.set({cls: e.target.value}); m.page.panel(); });
  el.querySelector("#f-score").addEventListener("change", (e) => { m.st.set({minScore: +e.target.value}); m.page.panel(); });
  for (const row of el.querySelectorAll("[data-ann]")) {
    row.addEventListener("click", (e) => {
      const id = +row.dataset.ann;
      if (e.target.dataset.review) return m.page.changes.setReview([id], e.target.dataset.review);
      selectOnly(m, id);
    });
  }
}
