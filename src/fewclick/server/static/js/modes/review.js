// Review (R): the objects from the least to the most certain; accept (A) or reject (X) each,
// N goes to the next; the list filters by class and score.
import {esc} from "../api.js";
import {classOfSelection, setReview} from "../changes.js";
import {renderPanel} from "../panel.js";
import {S} from "../state.js";
import {hit} from "../view.js";

export const review = {
  name: "review", key: "r", title: "Review (R)",

  release(d, moved) {
    if (moved) return;
    const a = hit(d.x0, d.y0);
    S.selected = new Set(a ? [a.id] : []);
    renderPanel();
  },

  keydown(e, key) {
    if (S.selected.size && (key === "a" || key === "x")) {
      setReview([...S.selected], key === "a" ? "accepted" : "rejected");
      return true;
    }
    if (key === "n") {
      const list = reviewList();
      const i = list.findIndex((a) => S.selected.has(a.id));
      const next = list[(i + 1) % Math.max(list.length, 1)];
      S.selected = new Set(next ? [next.id] : []);
      renderPanel(); S.dirty = true;
      return true;
    }
    return false;
  },

  pickClass(id) { if (S.selected.size) classOfSelection(id); },

  // the objects the filters let through are the ones drawn
  visible(a) {
    return !((S.filter.cls && a.class_id !== +S.filter.cls) || (a.score != null && a.score < S.filter.minScore));
  },

  panel(el) {
    const list = reviewList();
    el.innerHTML = `<h3>Review</h3><div class="muted">A accept, X reject, N next.</div>
      <select id="f-class"><option value="">all classes</option>${[...S.classes.values()].map((c) => `<option value="${c.id}" ${+S.filter.cls === c.id ? "selected" : ""}>${esc(c.name)}</option>`).join("")}</select>
      <label class="muted">min score <input id="f-score" type="range" min="0" max="1" step="0.05" value="${S.filter.minScore}"></label>
      <div class="review-list">${list.map((a) => `<div data-ann="${a.id}" class="${S.selected.has(a.id) ? "current" : ""}">
        <span class="swatch" style="background:${S.classes.get(a.class_id).color}"></span>${a.kind}${a.backend ? ` <span class="backend">${esc(a.backend)}</span>` : ""} ${a.score != null ? a.score.toFixed(2) : ""}
        ${a.quality != null ? "q " + a.quality.toFixed(2) : ""} <b>${a.review}</b>
        <button data-review="accepted">A</button><button data-review="rejected">X</button></div>`).join("")}</div>`;
    el.querySelector("#f-class").addEventListener("change", (e) => { S.filter.cls = e.target.value; renderPanel(); S.dirty = true; });
    el.querySelector("#f-score").addEventListener("change", (e) => { S.filter.minScore = +e.target.value; renderPanel(); S.dirty = true; });
    for (const row of el.querySelectorAll("[data-ann]")) {
      row.addEventListener("click", (e) => {
        const id = +row.dataset.ann;
        if (e.target.dataset.review) return setReview([id], e.target.dataset.review);
        S.selected = new Set([id]); renderPanel(); S.dirty = true;
      });
    }
  },
};

function reviewList() {
  return [...S.anns.values()].filter((a) => (!S.filter.cls || a.class_id === +S.filter.cls)
    && (a.score == null || a.score >= S.filter.minScore))
    .sort((a, b) => (a.quality ?? a.score ?? 1) - (b.quality ?? b.score ?? 1));
}
