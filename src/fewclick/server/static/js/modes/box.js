// Box (B): drag a box of the picked class by hand. It holds no state of its own.
import {helpPanel} from "../panel.js";

export function box(page) {
  return {
    name: "box", key: "b", title: "Box (B)",
    state: () => ({}),

    async release(d, moved, rect) {
      if (moved) await page.changes.change([{class_id: page.doc.get().cls, kind: "box", geometry: {box: rect}, source: "manual"}], [], "draw");
    },

    panel(el) { helpPanel(el, "box", "Drag to draw a box of the picked class."); },

    draw(ctx, lw, drag) { page.dragRect(ctx, drag, lw); },
  };
}
