// Images added to a project from the person's own disk: dropped on the project page, or
// picked with the file picker. Each file goes in a request of its own (POST
// /api/projects/{id}/images, field `files`), one after the other, so that each shows its
// progress and its own answer: added, skipped (the same file is in the project already) or
// refused, with the reason; a file whose upload breaks off is said so, and the server keeps
// nothing of it. Nothing already in the project is touched.
import {$, esc, headers, say} from "../api.js";

// the drop area and the picker in `el`; onAdded() once a batch added at least one image
export function uploadPanel(el, projectId, onAdded) {
  el.innerHTML = `<div id="drop" class="drop muted">Drop images here, or
    <label class="button">choose files<input type="file" id="upload-files" multiple accept="image/*,.tif,.tiff" hidden></label></div>
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
  const counts = {added: 0, skipped: 0, refused: 0, failed: 0};
  for (const [i, file] of files.entries()) {
    const out = await uploadOne(projectId, file, rows[i]);
    counts[out.status] += 1;
    rows[i].className = out.status;
    rows[i].querySelector(".said").textContent = out.status === "added" ? "added" : `${out.status}: ${out.reason}`;
  }
  const parts = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`);
  say(`${files.length} file${files.length === 1 ? "" : "s"}: ${parts.join(", ")}`, counts.refused + counts.failed > 0);
  if (counts.added) onAdded();
}

// one file's request, its progress shown in `row`: the server's answer for the file, or
// {status: "failed", reason} when no answer came
function uploadOne(projectId, file, row) {
  return new Promise((done) => {
    const xhr = new XMLHttpRequest(), bar = row.querySelector("progress"), said = row.querySelector(".said");
    xhr.open("POST", `/api/projects/${projectId}/images`);
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
      if (xhr.status < 300 && data?.files?.length) return done(data.files[0]);
      const d = data?.detail;  // a 413 (over the upload limit) or a 422 names the problem
      done({status: "refused", reason: Array.isArray(d) ? d.map((x) => x.msg).join("; ") : d ?? `the server answered ${xhr.status}`});
    };
    xhr.onerror = () => done({status: "failed", reason: "the upload broke off (the connection was lost): nothing of it was kept; try again"});
    xhr.onabort = () => done({status: "failed", reason: "the upload was stopped: nothing of it was kept"});
    const form = new FormData();
    form.append("files", file, file.name);
    said.textContent = "uploading";
    xhr.send(form);
  });
}
