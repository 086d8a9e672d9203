// Box (B): drag a box of the picked class by hand.
import {change} from "../changes.js";
import {helpPanel} from "../panel.js";
import {S} from "../state.js";
import {dragRect} from "../view.js";

export const box = {
  name: "box", key: "b", title: "Box (B)",

  async release(d, moved, rect) {
    if (moved) await change([{class_id: S.cls, kind: "box", geometry: {box: rect}, source: "manual"}], [], "draw");
  },

  panel(el) { helpPanel(el, "box", "Drag to draw a box of the picked class."); },

  draw(ctx, lw) {
    if (S.drag?.kind === "press") dragRect(S.drag, lw);
  },
};
