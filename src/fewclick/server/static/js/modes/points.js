// Points (P): one click per object, snapped to the object's centre (the click is kept).
import {api, say} from "../api.js";
import {change} from "../changes.js";
import {helpPanel, prepareLine} from "../panel.js";
import {S} from "../state.js";
import {insideImage} from "../view.js";

export const points = {
  name: "points", key: "p", title: "Points (P)",

  async release(d, moved) {
    if (moved || d.button !== 0) return;
    if (!insideImage(d.x0, d.y0)) return say("that click is outside the image", true);
    const out = await api("POST", `/api/images/${S.image.id}/snap`, {x: d.x0, y: d.y0, class_id: S.cls});
    await change([{class_id: S.cls, kind: "point", geometry: {point: out.point, original: [d.x0, d.y0]}, source: "points"}], [], "click");
  },

  panel(el) {
    helpPanel(el, "points", "Click each object once; the point snaps to the object's centre (the click is kept).");
    prepareLine(el, "sam-centre");
  },
};
