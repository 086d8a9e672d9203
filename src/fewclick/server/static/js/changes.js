// Changes to the image's annotations: saved at once, each one undoable step. A change made
// on an older revision of the image (another tab changed it) is refused by the server and
// said in the page; nothing is overwritten.
import {api, say} from "./api.js";
import {logEvent} from "./events.js";
import {renderPanel} from "./panel.js";
import {S} from "./state.js";

function payload(a) {
  return {class_id: a.class_id, kind: a.kind, geometry: a.geometry, score: a.score, quality: a.quality, source: a.source, backend: a.backend};
}

async function batch(create, del) {
  const out = await api("POST", `/api/images/${S.image.id}/annotations/batch`, {revision: S.revision, create, delete: del});
  S.revision = out.revision;
  if (S.image.status === "new") S.image.status = "in_progress";  // as the server marks it
  for (const id of out.deleted) { S.anns.delete(id); S.masks.delete(id); S.selected.delete(id); }
  for (const a of out.created) S.anns.set(a.id, a);
  S.dirty = true;
  renderPanel();
  return out.created.map((a) => a.id);
}

// create and delete objects as one undoable step; the ids made, or null when refused
export async function change(create, deleteIds, action) {
  const removed = deleteIds.map((id) => payload(S.anns.get(id)));
  let made = await saved(() => batch(create, deleteIds));
  if (!made) return null;
  let gone = deleteIds;
  push({
    undo: async () => { gone = await batch(removed, made); },
    redo: async () => { made = await batch(create, gone); },
  });
  logEvent(action, {created: create.length, deleted: deleteIds.length});
  return made;
}

export async function patchMany(items, action) {
  const before = items.map((it) => ({id: it.id, values: Object.fromEntries(Object.keys(it.after).map((k) => [k, S.anns.get(it.id)[k]]))}));
  const apply = async (list) => {
    for (const it of list) {
      const out = await api("PATCH", `/api/annotations/${it.id}`, {...it.values, revision: S.revision});
      S.revision = out.revision;
      S.anns.set(it.id, out.annotation);
      S.masks.delete(it.id);
    }
    S.dirty = true; renderPanel();
  };
  const after = items.map((it) => ({id: it.id, values: it.after}));
  if ((await saved(() => apply(after))) === null) return;
  push({undo: () => apply(before), redo: () => apply(after)});
  logEvent(action, {objects: items.length});
}

async function saved(fn) {
  try {
    const out = await fn();
    return out === undefined ? true : out;
  } catch (err) {
    if (err.status === 409) say("this image was changed in another tab: reload it (nothing was overwritten)", true);
    return null;
  }
}

function push(op) { S.undo.push(op); S.redo = []; }

export async function undo() {
  const op = S.undo.pop();
  if (!op) return;
  if ((await saved(op.undo)) !== null) { S.redo.push(op); logEvent("undo"); } else S.undo.push(op);
}

export async function redo() {
  const op = S.redo.pop();
  if (!op) return;
  if ((await saved(op.redo)) !== null) { S.undo.push(op); logEvent("redo"); } else S.redo.push(op);
}

// the selected objects take class `id` (select and review modes)
export function classOfSelection(id) {
  const ids = [...S.selected].filter((i) => S.anns.get(i)?.class_id !== id);
  if (ids.length) patchMany(ids.map((i) => ({id: i, after: {class_id: id}})), "class change");
}

// oriented projects: [ turns the selected boxes 5 degrees counter-clockwise on screen, ] clockwise
// (the angle counts counter-clockwise, as in types.py; a box becomes an oriented box)
export function rotate(degrees) {
  const items = [...S.selected].filter((id) => ["box", "rbox"].includes(S.anns.get(id).kind)).map((id) => {
    const g = S.anns.get(id).geometry;
    const r = g.rbox ?? [(g.box[0] + g.box[2]) / 2, (g.box[1] + g.box[3]) / 2, g.box[2] - g.box[0], g.box[3] - g.box[1], 0];
    return {id, after: {kind: "rbox", geometry: {rbox: [...r.slice(0, 4), r[4] + degrees * Math.PI / 180]}}};
  });
  if (items.length) return patchMany(items, "edit");
}

export function setReview(ids, review) {
  return patchMany(ids.map((id) => ({id, after: {review}})), review === "accepted" ? "accept" : "reject");
}
