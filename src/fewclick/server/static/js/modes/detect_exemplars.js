// Detect mode's exemplars (issue 52): the finished objects the look-alikes are matched to,
// as thumbnails per class cropped from their images, each with a button that takes it out
// of the matching.

const THUMB = 40;  // screen pixels a side of a thumbnail
const pictures = new Map();  // image id -> its picture, for the thumbnails

// the finished objects the look-alikes are matched to, as thumbnails per class, each with
// a button that calls `remove` with it (detect.js asks the look-alikes again without it);
// rebuilt only when the list changes (the panel is updated in place on every slider move)
export function exemplarsPanel(box, list, names, remove) {
  const key = list.map((e) => e.annotation_id).join(",");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.hidden = !list.length;
  box.replaceChildren();
  if (!list.length) return;
  const head = document.createElement("div");
  head.className = "muted";
  head.textContent = "Matched to these objects of your finished images (× removes one from the matching):";
  box.append(head);
  for (const classId of new Set(list.map((e) => e.class_id))) {
    const name = document.createElement("div"), row = document.createElement("div");
    name.textContent = names.get(classId)?.name ?? classId;
    row.className = "exemplar-row";
    for (const e of list.filter((e) => e.class_id === classId)) row.append(thumbnail(e, remove));
    box.append(name, row);
  }
}

function thumbnail(e, remove) {
  const wrap = document.createElement("span");
  wrap.className = "exemplar";
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = THUMB;
  canvas.title = `image ${e.image_id}, box ${e.box.map((v) => v.toFixed(0)).join(", ")}`;
  paintThumbnail(canvas, e);
  const button = document.createElement("button");
  button.textContent = "×";
  button.title = "remove this object from the matching";
  button.dataset.annotation = e.annotation_id;
  button.addEventListener("click", () => remove(e));
  wrap.append(canvas, button);
  return wrap;
}

// the exemplar's box and a margin around it, from its finished image
function paintThumbnail(canvas, e) {
  let picture = pictures.get(e.image_id);
  if (!picture) {
    if (pictures.size >= 32) pictures.clear();
    picture = new Image();
    picture.src = `/api/images/${e.image_id}/file`;
    pictures.set(e.image_id, picture);
  }
  const paint = () => {
    const [x0, y0, x1, y1] = e.box, side = 1.4 * Math.max(x1 - x0, y1 - y0, 4);
    const [cx, cy] = [(x0 + x1) / 2, (y0 + y1) / 2];
    canvas.getContext("2d").drawImage(picture, cx - side / 2, cy - side / 2, side, side, 0, 0, THUMB, THUMB);
  };
  if (picture.complete && picture.naturalWidth) paint(); else picture.addEventListener("load", paint, {once: true});
}
