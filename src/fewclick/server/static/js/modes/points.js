// Points (P): one click per object, snapped to the object's centre (the click is kept). It
// holds no state of its own.
import {api, say} from "../api.js";
import {helpPanel, prepareLine} from "../panel.js";

export function points(page) {
  return {
    name: "points", key: "p", title: "Points (P)",
    state: () => ({}),

    async release(d, moved) {
      if (moved || d.button !== 0) return;
      if (!page.view.inside(d.x0, d.y0)) return say("that click is outside the image", true);
      const {image, cls} = page.doc.get();
      const out = await api("POST", `/api/images/${image.id}/snap`, {x: d.x0, y: d.y0, class_id: cls});
      if (out.note) say(`${out.note}: snapped to SAM's centre instead`, true);
      await page.changes.change([{class_id: cls, kind: "point", geometry: {point: out.point, original: [d.x0, d.y0]}, source: "points"}], [], "click");
    },

    panel(el) {
      helpPanel(el, "points", "Click each object once; the point snaps to the object's centre (the click is kept).");
      prepareLine(el, page.doc.get().prep, "sam-centre");
    },
  };
}
