// The annotation modes, in the order of their buttons. Each file exports a function that
// makes its mode for one visit of the annotation page, given the page (pages/annotate.js
// says what it holds); the mode keeps its own state in its own store (store.js), which the
// page's redraw subscribes. A mode is an object:
//   name, key (its shortcut), title (its button); state() -> its state, for the test hook;
//   leave() / escape() drop its work;
//   restore() -> what to say when it took back work kept from an earlier visit (the page
//     then opens in this mode), else null; opened() once the image is open and nothing was
//     restored, openedElsewhere() instead when another mode is shown; picked(anew) when the
//     person picks the mode on the open image (anew: another mode was shown);
//     proposalsReady() once the image's SAM proposals are made, whatever the mode shown;
//     proposalsMore() while they are made, after each window searched (its proposals shown);
//     waiting() -> what it holds ready for when it is picked ("12 proposals waiting: D shows
//     them"), or "": the other modes' panels say it; unsaved() -> what it holds not saved yet, or "";
//   press(d) at mouse down, move(d) while dragging, release(d, moved, box) at mouse up
//     (d: the drag, from image pixel (d.x0, d.y0) to (d.x, d.y), its button and shift; a
//     mode may add to it; box: its XYXY rectangle); hover(x, y) as the mouse moves with
//     no drag;
//   keydown(e, key) -> true when it used the key; undo(redo) -> true when it undid something
//     of its own (else the saved changes are undone);
//   accept() on Enter; pickClass(id) after a class is picked; panel(el) fills the panel;
//   visible(a) filters the saved annotations drawn, handles draws box corners,
//   draw(ctx, lw, drag) draws its own work over them.
// Everything but name, key, title, state and panel is optional. A new mode is one file and
// one entry here.
import {box} from "./box.js";
import {detect} from "./detect.js";
import {fullimage} from "./fullimage.js";
import {mask} from "./mask.js";
import {points} from "./points.js";
import {polygon} from "./polygon.js";
import {review} from "./review.js";
import {select} from "./select.js";

export const MODES = [detect, box, mask, polygon, points, select, review, fullimage];
