// Changes to the image's annotations: saved at once, each one undoable step. A change made
// on an older revision of the image (another tab changed it) is refused by the server and
// said in the page; nothing is overwritten. new Changes(doc, {log, panel}) serves one
// visit of the annotation page: `doc` is its store (image, revision, anns, selected), log
// logs an interaction, panel renders the mode panel again; it keeps the undo steps.
import {api, say} from "./api.js";

// what one save request may carry: limits.py's MAX_CREATES and MAX_DELETES
const CREATES_PER_POST = 1000, DELETES_PER_POST = 10000;

function payload(a) {
  return {class_id: a.class_id, kind: a.kind, geometry: a.geometry, score: a.score, quality: a.quality, source: a.source, backend: a.backend};
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

// one undo step, as the page says it when the step is undone or redone
const VERBS = {accept: "accepted", take: "taken from the proposals", draw: "drawn", click: "placed", delete: "deleted", edit: "edited", "class change": "given a class", review: "reviewed"};
function stepText(action, made, deleted) {
  const n = (k) => `${k} object${k === 1 ? "" : "s"}`;
  if (made && deleted) return `${n(made)} saved in place of ${deleted}`;
  return `${n(made || deleted)} ${VERBS[action] ?? "changed"}`;
}

export class Changes {
  constructor(doc, {log, panel}) {
    Object.assign(this, {doc, log, panel, undone: [], done: [], last: Promise.resolve()});
  }

  // each change, patch and undo runs whole, one at a time, reading the image's objects and
  // revision when its turn comes: two saves sent together (Enter on a mask, then on the next
  // before the first is answered) would carry the same revision and the server would refuse
  // the second as made elsewhere; two turns of a box would both start from its old angle,
  // and Ctrl+Z would undo the step before one still being saved
  queued(write) {
    const run = this.last.then(write);
    this.last = run.catch(() => {});
    return run;
  }

  // one save of any size, in as many requests as the server's caps take (server/limits.py):
  // the ids made (within a queued write)
  async batch(create, del) {
    const made = [];
    let c = 0, d = 0;
    do {
      made.push(...await this.post(create.slice(c, c + CREATES_PER_POST), del.slice(d, d + DELETES_PER_POST)));
      c += CREATES_PER_POST;
      d += DELETES_PER_POST;
    } while (c < create.length || d < del.length);
    return made;
  }

  async post(create, del) {
    const {image, revision} = this.doc.get();
    const out = await api("POST", `/api/images/${image.id}/annotations/batch`, {revision, create, delete: del});
    const {anns, selected} = this.doc.get();
    if (image.status === "new") image.status = "in_progress";  // as the server marks it
    for (const id of out.deleted) { anns.delete(id); selected.delete(id); }
    for (const a of out.created) anns.set(a.id, a);
    this.doc.set({revision: out.revision});
    this.panel();
    return out.created.map((a) => a.id);
  }

  // create and delete objects as one undoable step; the ids made, or null when refused.
  // `also` {undo, redo}: what the mode shows changes with the step (a proposal accepted
  // alone is hidden while its box is saved); {detail}: more to log with the step
  change(create, deleteIds, action, also = {}) {
    return this.queued(async () => {
      const anns = this.doc.get().anns;
      const present = deleteIds.filter((id) => anns.has(id));  // a change queued before may have taken some
      if (!create.length && !present.length) return [];
      const removed = present.map((id) => payload(anns.get(id)));
      let made = await saved(() => this.batch(create, present));
      if (!made) return null;
      let gone = present;
      this.push({
        undo: async () => { gone = await this.batch(removed, made); also.undo?.(); },
        redo: async () => { made = await this.batch(create, gone); also.redo?.(); },
        what: stepText(action, create.length, present.length),
      });
      this.log(action, {created: create.length, deleted: present.length, ...also.detail});
      return made;
    });
  }

  // items: [{id, after: {field: value}}] (or a function giving them when the patch's turn
  // comes), patched as one undoable step
  patchMany(items, action) {
    return this.queued(async () => {
      const anns = this.doc.get().anns;
      const list = (typeof items === "function" ? items() : items).filter((it) => anns.has(it.id));  // not deleted meanwhile
      if (!list.length) return;
      const before = list.map((it) => ({id: it.id, values: Object.fromEntries(Object.keys(it.after).map((k) => [k, anns.get(it.id)[k]]))}));
      const after = list.map((it) => ({id: it.id, values: it.after}));
      if ((await saved(() => this.patch(after))) === null) return;
      this.push({undo: () => this.patch(before), redo: () => this.patch(after), what: stepText(action === "accept" || action === "reject" ? "review" : action, list.length, 0)});
      this.log(action, {objects: list.length});
    });
  }

  async patch(list) {
    for (const it of list) {
      const out = await api("PATCH", `/api/annotations/${it.id}`, {...it.values, revision: this.doc.get().revision});
      this.doc.get().anns.set(it.id, out.annotation);
      this.doc.set({revision: out.revision});
    }
    this.panel();
  }

  push(op) { this.done.push(op); this.undone = []; }

  // the last step undone (again: the last undone step redone)
  undo(again) {
    return this.queued(async () => {
      const [from, to] = again ? [this.undone, this.done] : [this.done, this.undone];
      const op = from.pop();
      // the steps are this visit's: after a reload or on another image, none are there yet
      if (!op) return say(again ? "nothing to redo" : "nothing to undo since the image was opened");
      if ((await saved(again ? op.redo : op.undo)) === null) return from.push(op);
      to.push(op);
      this.log(again ? "redo" : "undo");
      // what the page said of the step (e.g. "6 proposals accepted") is said no more
      say(`${again ? "redone" : "undone"}: ${op.what}${again ? "" : " (Ctrl+Shift+Z redoes it)"}`);
    });
  }

  // the selected objects take class `id` (select and review modes)
  classOfSelection(id) {
    const {anns, selected} = this.doc.get();
    const ids = [...selected].filter((i) => anns.get(i)?.class_id !== id);
    if (ids.length) this.patchMany(ids.map((i) => ({id: i, after: {class_id: id}})), "class change");
  }

  // oriented projects: [ turns the selected boxes 5 degrees counter-clockwise on screen, ] clockwise
  // (the angle counts counter-clockwise, as in types.py; a box becomes an oriented box)
  rotate(degrees) {
    return this.patchMany(() => {  // from the angle the turn before left
      const {anns, selected} = this.doc.get();
      return [...selected].filter((id) => ["box", "rbox"].includes(anns.get(id)?.kind)).map((id) => {
        const g = anns.get(id).geometry;
        const r = g.rbox ?? [(g.box[0] + g.box[2]) / 2, (g.box[1] + g.box[3]) / 2, g.box[2] - g.box[0], g.box[3] - g.box[1], 0];
        return {id, after: {kind: "rbox", geometry: {rbox: [...r.slice(0, 4), r[4] + degrees * Math.PI / 180]}}};
      });
    }, "edit");
  }

  setReview(ids, review) {
    return this.patchMany(ids.map((id) => ({id, after: {review}})), review === "accepted" ? "accept" : "reject");
  }
}
