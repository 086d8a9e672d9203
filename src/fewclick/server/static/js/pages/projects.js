// The list of projects and the form that makes a new one (from a folder or a dataset, or
// empty, for images uploaded on its page).
import {$, api, esc, sayNext} from "../api.js";
import {visit} from "../visit.js";

export async function projectsPage() {
  const page = visit;
  $("#crumbs").innerHTML = "";
  const projects = await api("GET", "/api/projects");
  if (page !== visit) return;
  $("#view").innerHTML = `<div class="page">
    <h2>Projects</h2>
    <table class="list" id="projects"><tr><th>name</th><th>images</th><th>progress</th><th>source</th></tr>
    ${projects.map((p) => `<tr><td><a href="#/project/${p.id}">${esc(p.name)}</a></td><td>${p.images}</td>
      <td><div class="bar"><div style="width:${(100 * p.progress).toFixed(0)}%"></div></div></td>
      <td class="muted">${esc(p.source || "")}</td></tr>`).join("")}
    </table>
    <h3>New project</h3>
    <form class="inline" id="new-project">
      <input name="name" placeholder="name" required>
      <select name="from"><option value="folder">from a folder of images</option><option value="dataset">import a dataset</option><option value="empty">empty: upload images on its page</option></select>
      <input type="text" name="path" placeholder="/path/to/folder, or a COCO / DOTA / VOC / YOLO / points dataset (on the server)">
      <input name="format" placeholder="format (optional)" size="12">
      <input name="classes" placeholder="classes, comma separated (folders)" size="24">
      <label><input type="checkbox" name="reference"> as reference annotations</label>
      <button type="submit">Create</button>
    </form></div>`;
  const path = $("#new-project [name=path]"), from = $("#new-project [name=from]");
  const needsPath = () => { path.required = from.value !== "empty"; path.disabled = from.value === "empty"; };
  from.addEventListener("change", needsPath);
  needsPath();
  $("#new-project").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = {name: f.get("name"), classes: f.get("classes").split(",").map((s) => s.trim()).filter(Boolean),
                  reference: f.get("reference") === "on"};
    if (f.get("from") !== "empty") body[f.get("from")] = f.get("path");
    if (f.get("format")) body.format = f.get("format");
    let out;
    try { out = await api("POST", "/api/projects", body); } catch { return; }  // api() said why
    sayNext(out.warnings.length ? `created; ${out.warnings.length} warnings: ${out.warnings[0]}` : "project created");
    location.hash = `#/project/${out.project.id}`;
  });
}
