// Images and annotation files added to a project from the person's own disk: dropped on the
// project page, or picked with the file picker. An annotation file (.json: COCO, Label Studio
// or points; .xml: CVAT) goes to POST /api/projects/{id}/import/upload (field `file`), any
// other file to POST /api/projects/{id}/images (field `files`). Each file goes in a request
// of its own, one after the other, so that each shows its progress and its own answer: an
// image added, skipped (the same file is in the project already) or refused, with the
// reason; an annotation file imported (how many annotations on how many images, and its
// warnings) or refused, with the reason. When an annotation file's objects are of classes
// the project does not have, its row names them and asks: "Add them and import" sends it
// again with add_classes, "Skip" leaves it. A file whose upload breaks off is said so, and
// the server keeps nothing of it. Nothing already in the project is touched.
import {esc, headers, say} from "../api.js";

const ANNOTATION_FILE = /\.(json|xml)$/i;
const SHOWN_WARNINGS = 10;  // the most warnings a row lists; it counts the others
const SAID = {added: "added", imported: "imported", skipped: "skipped", asking: "waiting for your answer", refused: "refused", failed: "failed"};

// the drop area and the picker in `el`; onAdded() once a file added images or annotations
export function uploadPanel(el, projectId, onAdded) {
  el.innerHTML = `<div id="drop" class="drop muted">Drop images or annotation files (COCO, Label Studio or points JSON, CVAT XML) here, or
    <label class="button">choose files<input type="file" id="upload-files" multiple accept="image/*,.tif,.tiff,.json,.xml" hidden></label></div>
    <ul id="uploads" class="uploads"></ul>`;
  const drop = el.querySelector("#drop");
  const go = (files) => uploadAll(el, projectId, [...files], onAdded);
  el.querySelector("#upload-files").addEventListener("change", (e) => { go(e.target.files); e.target.value = ""; });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); go(e.dataTransfer.files); });
}

async function uploadAll(el, projectId, files, onAdded) {
  if (!files.length) return;
  const list = el.querySelector("#uploads");
  const rows = files.map((f) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="name">${esc(f.name)}</span> <progress max="1" value="0"></progress> <span class="said muted">waiting</span>`;
    list.append(li);
    return li;
  });
  const counts = Object.fromEntries(Object.keys(SAID).map((k) => [k, 0]));
  for (const [i, file] of files.entries()) {
    const status = ANNOTATION_FILE.test(file.name)
      ? await importFile(projectId, file, rows[i], onAdded)
      : await uploadImage(projectId, file, rows[i]);
    counts[status] += 1;
  }
  const parts = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => `${n} ${SAID[k]}`);
  say(`${files.length} file${files.length === 1 ? "" : "s"}: ${parts.join(", ")}`, counts.refused + counts.failed > 0);
  if (counts.added + counts.imported) onAdded();
}

// an image in the images route's field `files`: the status its row ends with
async function uploadImage(projectId, file, row) {
  const form = new FormData();
  form.append("files", file, file.name);
  const r = await send(`/api/projects/${projectId}/images`, form, row);
  const out = r.failed ? {status: "failed", reason: r.failed}
    : r.ok && r.data?.files?.length ? r.data.files[0] : {status: "refused", reason: detail(r)};
  return show(row, out.status, out.status === "added" ? "added" : `${out.status}: ${out.reason}`);
}

// an annotation file (with `addClasses`, its classes the project lacks added): the status
// its row ends with, "asking" while the row asks whether to add the classes it names
async function importFile(projectId, file, row, onAdded, addClasses = false) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (addClasses) form.append("add_classes", "true");
  const r = await send(`/api/projects/${projectId}/import/upload`, form, row);
  if (r.failed) return show(row, "failed", `failed: ${r.failed}`);
  if (r.ok) return imported(row, r.data);
  if (r.status === 409 && Array.isArray(r.data?.unknown_classes)) {
    ask(row, r.data.unknown_classes, async () => {
      if (await importFile(projectId, file, row, onAdded, true) === "imported") {
        say(`${file.name}: ${row.querySelector(".said").textContent.replace(/:$/, "")}`);
        onAdded();
      }
    });
    return "asking";
  }
  return show(row, "refused", `refused: ${detail(r)}`);
}

function imported(row, data) {
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  let text = `${plural(data.annotations, "annotation")} on ${plural(data.images, "image")} imported`;
  if (data.classes_added.length) text += `; classes added: ${data.classes_added.join(", ")}`;
  if (data.warnings.length) text += `; ${plural(data.warnings.length, "warning")}:`;
  show(row, "imported", text);
  if (data.warnings.length) {
    const more = data.warnings.length - SHOWN_WARNINGS;
    const items = data.warnings.slice(0, SHOWN_WARNINGS).map((w) => `<li>${esc(w)}</li>`);
    if (more > 0) items.push(`<li>and ${more} more</li>`);
    row.insertAdjacentHTML("beforeend", `<ul class="warnings muted">${items.join("")}</ul>`);
  }
  return "imported";
}

// the row names the classes and asks; onAdd() when the person says to add them
function ask(row, names, onAdd) {
  show(row, "asking", `classes not in the project: ${names.join(", ")}. Add them to the project and import?`);
  row.insertAdjacentHTML("beforeend", ` <span class="ask"><button class="add-classes">Add them and import</button>
    <button class="skip-classes">Skip</button></span>`);
  const done = () => row.querySelector(".ask").remove();
  row.querySelector(".add-classes").addEventListener("click", () => { done(); onAdd(); });
  row.querySelector(".skip-classes").addEventListener("click", () => {
    done();
    show(row, "skipped", `skipped: nothing imported (classes not in the project: ${names.join(", ")})`);
  });
}

// the row's class and its answer's text; returns the status
function show(row, status, text) {
  row.className = status;
  row.querySelector(".said").textContent = text;
  return status;
}

// what the server said was wrong: a 413 (over the upload limit), a 422 or a 400 names it
function detail(r) {
  const d = r.data?.detail;
  return Array.isArray(d) ? d.map((x) => x.msg).join("; ") : d ?? `the server answered ${r.status}`;
}

// one request with the form, its progress shown in `row`: {ok, status, data} once the
// server answered, or {failed: reason} when no answer came
function send(url, form, row) {
  return new Promise((done) => {
    const xhr = new XMLHttpRequest(), bar = row.querySelector("progress"), said = row.querySelector(".said");
    xhr.open("POST", url);
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.value = e.loaded / e.total;
      said.textContent = `${(100 * e.loaded / e.total).toFixed(0)}% of ${(e.total / 2 ** 20).toFixed(1)} MB`;
    };
    xhr.onload = () => {
      bar.value = 1;
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      done({ok: xhr.status < 300, status: xhr.status, data});
    };
    xhr.onerror = () => done({failed: "the upload broke off (the connection was lost): nothing of it was kept; try again"});
    xhr.onabort = () => done({failed: "the upload was stopped: nothing of it was kept"});
    bar.value = 0;
    row.removeAttribute("class");  // a row sent again is under way, not answered
    said.textContent = "uploading";
    xhr.send(form);
  });
}
