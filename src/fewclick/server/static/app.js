// fewclick's browser UI: projects, images, and one canvas for every annotation mode.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const view = $("#view");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

function say(text, error = false) {
  const m = $("#message");
  m.textContent = text;
  m.className = error ? "error" : "";
}

// the logged-in user and the session's CSRF token, sent on every change (see server/auth.py)
let ME = null;

function headers(extra = {}) {
  return ME?.csrf ? {...extra, [ME.csrf_header]: ME.csrf} : extra;
}

// a message for the page an action goes to next; any other message ends with its page
let nextMessage = null;
function sayNext(text) { nextMessage = text; }

async function api(method, url, body) {
  const init = {method, headers: method === "GET" ? {} : headers()};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(url, init);
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (r.status === 401 && url !== "/api/login") {
    ME = null;
    loginPage();
    const err = new Error("log in first");
    err.status = 401;
    throw err;
  }
  if (!r.ok) {
    const detail = typeof data === "object" && data.detail ? data.detail : data;
    const text = Array.isArray(detail) ? detail.map((d) => `${d.loc?.join(".")}: ${d.msg}`).join("; ") : detail;
    say(text, true);
    const err = new Error(text);
    err.status = r.status;
    throw err;
  }
  return data;
}

// ------------------------------------------------------------------ routing
window.addEventListener("hashchange", route);
window.addEventListener("load", route);
let visit = 0;  // counts the pages opened: a poller started on an earlier page stops

async function route() {
  visit++;
  stopAnnotating();
  say(nextMessage ?? "");
  nextMessage = null;
  if (!ME) {
    try {
      ME = await api("GET", "/api/me");
    } catch (err) {
      return;  // api() has shown the log-in page, or the error
    }
  }
  $("#who").innerHTML = `${esc(ME.name)} (${esc(ME.role)}) <a href="#" id="logout">log out</a>`;
  $("#logout").addEventListener("click", async (e) => {
    e.preventDefault();
    await api("POST", "/api/logout");
    ME = null;
    route();
  });
  const h = location.hash.replace(/^#/, "") || "/";
  let m;
  if ((m = h.match(/^\/project\/(\d+)$/))) return projectPage(+m[1]);
  if ((m = h.match(/^\/image\/(\d+)$/))) return annotatePage(+m[1]);
  return projectsPage();
}

// ------------------------------------------------------------------ log-in
function loginPage() {
  stopAnnotating();
  $("#crumbs").innerHTML = "";
  $("#who").innerHTML = "";
  view.innerHTML = `<div class="page"><h2>Log in</h2>
    <form class="inline" id="login">
      <input name="name" placeholder="user name" autocomplete="username" required>
      <input name="password" type="password" placeholder="password" autocomplete="current-password" required>
      <button type="submit">Log in</button>
    </form>
    <p class="muted">An admin adds users with <code>fewclick users add NAME --role annotator --password-stdin</code>.</p></div>`;
  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      ME = await api("POST", "/api/login", {name: f.get("name"), password: f.get("password")});
    } catch (err) {
      return;  // api() has said why
    }
    say("");
    route();
  });
}

// ------------------------------------------------------------------ projects
async function projectsPage() {
  const page = visit;
  $("#crumbs").innerHTML = "";
  const projects = await api("GET", "/api/projects");
  if (page !== visit) return;
  view.innerHTML = `<div class="page">
    <h2>Projects</h2>
    <table class="list" id="projects"><tr><th>name</th><th>images</th><th>progress</th><th>source</th></tr>
    ${projects.map((p) => `<tr><td><a href="#/project/${p.id}">${esc(p.name)}</a></td><td>${p.images}</td>
      <td><div class="bar"><div style="width:${(100 * p.progress).toFixed(0)}%"></div></div></td>
      <td class="muted">${esc(p.source || "")}</td></tr>`).join("")}
    </table>
    <h3>New project</h3>
    <form class="inline" id="new-project">
      <input name="name" placeholder="name" required>
      <select name="from"><option value="folder">from a folder of images</option><option value="dataset">import a dataset</option></select>
      <input type="text" name="path" placeholder="/path/to/folder, or a COCO / DOTA / VOC / YOLO / points dataset" required>
      <input name="format" placeholder="format (optional)" size="12">
      <input name="classes" placeholder="classes, comma separated (folders)" size="24">
      <label><input type="checkbox" name="reference"> as reference annotations</label>
      <button type="submit">Create</button>
    </form></div>`;
  $("#new-project").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = {name: f.get("name"), classes: f.get("classes").split(",").map((s) => s.trim()).filter(Boolean),
                  reference: f.get("reference") === "on"};
    body[f.get("from")] = f.get("path");
    if (f.get("format")) body.format = f.get("format");
    const out = await api("POST", "/api/projects", body);
    sayNext(out.warnings.length ? `created; ${out.warnings.length} warnings: ${out.warnings[0]}` : "project created");
    location.hash = `#/project/${out.project.id}`;
  });
}

async function projectPage(id) {
  const page = visit;
  const [p, images, jobs] = await Promise.all([
    api("GET", `/api/projects/${id}`), api("GET", `/api/projects/${id}/images`), api("GET", `/api/projects/${id}/jobs`)]);
  if (page !== visit) return;  // another page opened meanwhile: this one's answers are not shown there
  $("#crumbs").innerHTML = `/ <a href="#/project/${id}">${esc(p.name)}</a>`;
  const job = jobs[jobs.length - 1];
  view.innerHTML = `<div class="page" data-project="${id}">
    <h2>${esc(p.name)}</h2>
    <p>${p.images} images; ${Object.entries(p.by_status).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(", ")}.</p>
    <p id="models">${modelsHtml(p)}</p>
    <div class="form inline">
      <a href="/api/projects/${id}/export?format=coco" download><button>Export COCO</button></a>
      <a href="/api/projects/${id}/export?format=dota" download><button>Export DOTA</button></a>
      <button id="finish" title="imported labels count as your own">Mark annotated images done</button>
      <button id="train" ${job && running(job) ? "disabled" : ""}>Train on finished images</button>
      <label class="muted">train after every <input id="auto-train" type="number" min="0" max="1000" step="1"
        value="${p.auto_train_every}"> finished images (0: off)</label>
    </div>
    <p id="job" data-project="${id}" class="${job ? job.status : ""}">${job ? esc(jobText(job)) : ""}</p>
    <h3>Mask backends</h3><div id="backends" class="muted">loading</div>
    <h3>Classes</h3>
    <div id="classes">${p.classes.map((c) => `<span class="swatch" style="background:${c.color}"></span> ${c.key ?? "-"} ${esc(c.name)} &nbsp;`).join("")}</div>
    <form class="inline" id="add-class"><input name="name" placeholder="new class"><button>Add class</button></form>
    <h3>Import annotations</h3>
    <form class="inline" id="import"><input type="text" name="dataset" placeholder="/path/to/annotations.json">
      <input name="format" placeholder="format (optional)" size="12">
      <label><input type="checkbox" name="reference"> as reference</label><button>Import</button></form>
    <h3>Analytics</h3><div id="analytics" class="muted">loading</div>
    <h3>Images</h3>
    <table class="list" id="images"><tr><th>image</th><th>size</th><th>status</th><th>objects</th></tr>
    ${images.map((im) => `<tr><td><a href="#/image/${im.id}">${esc(im.file_name)}</a></td><td>${im.width} x ${im.height}</td>
      <td class="status-${im.status}">${im.status.replace("_", " ")}</td><td>${im.annotations}</td></tr>`).join("")}
    </table></div>`;
  $("#add-class").addEventListener("submit", async (e) => {
    e.preventDefault();
    await api("POST", `/api/projects/${id}/classes`, {name: new FormData(e.target).get("name")});
    if (page === visit) projectPage(id);
  });
  $("#import").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = {dataset: f.get("dataset"), reference: f.get("reference") === "on"};
    if (f.get("format")) body.format = f.get("format");
    const out = await api("POST", `/api/projects/${id}/import`, body);
    say(out.warnings.length ? `imported; ${out.warnings.length} warnings: ${out.warnings[0]}` : "imported");
    if (page === visit) projectPage(id);
  });
  $("#train").addEventListener("click", async () => {
    $("#train").disabled = true;
    const j = await api("POST", `/api/projects/${id}/train`, {minutes: 3}).catch(() => null);
    if (j) followJobs(id, page, j); else refreshJobs(id, page);  // refused: show the job that runs, if any
  });
  $("#auto-train").addEventListener("change", async (e) => {
    const v = e.target.value.trim();  // anything but digits goes as typed: the server says what is wrong
    const out = await api("PATCH", `/api/projects/${id}`, {auto_train_every: /^\d+$/.test(v) ? Number(v) : v}).catch(() => null);
    if (!out) return;
    e.target.value = out.auto_train_every;
    say(out.auto_train_every ? `trains by itself after every ${out.auto_train_every} finished images` : "trains only when you ask");
  });
  $("#finish").addEventListener("click", async () => {
    if (!confirm("Mark every image that holds annotations (imported or yours) and is not finished as done?")) return;
    const out = await api("POST", `/api/projects/${id}/finish`, {status: "done"});
    say(`${out.finished} images marked done${out.job ? "; training started by itself" : ""}`);
    if (page === visit) projectPage(id);
  });
  followJobs(id, page, job);
  showAnalytics(id);
  showBackends(id);
}

// whether project ``id``'s page is the one shown (an answer for another page is dropped)
const projectShown = (id) => !!$(`.page[data-project="${id}"]`);

// the mask backends: which serves and why, the measured comparison, the user's pick
async function showBackends(id) {
  const b = await api("GET", `/api/projects/${id}/backends`);
  const el = $("#backends");
  if (!el || !projectShown(id)) return;
  const why = {you: "chosen by you", comparison: "scored best on your finished masks", default: "default until a comparison"}[b.chosen_by];
  const c = b.comparison;
  let html = `<p id="serving">Serving: <b>${esc(b.serving)}</b> (${why}).
    ${b.masks_needed ? `A comparison needs ${b.masks_needed} more finished masks (${b.finished_masks} of 10 on images marked done).` : `${b.finished_masks} finished masks.`}</p>`;
  if (c) {
    const rounds = c.table[Object.keys(c.table)[0]].mIoU.length;
    html += `<table class="list" id="backend-table"><tr><th>backend</th>${[...Array(rounds).keys()].map((r) => `<th>mIoU ${r ? `round ${r}` : "box"}</th>`).join("")}
      <th>final mIoU</th><th>instances</th><th></th></tr>
      ${Object.entries(c.table).map(([name, row]) => `<tr class="${name === b.serving ? "current" : ""}"><td>${esc(name)}</td>
        ${row.mIoU.map((v) => `<td>${v == null ? "-" : v.toFixed(3)}</td>`).join("")}<td><b>${row.final == null ? "-" : row.final.toFixed(3)}</b></td>
        <td>${row.instances}</td><td>${name === b.serving ? (b.chosen_by === "you" ? "serves, chosen by you" : "serves") : ""}${name === c.chosen ? " (best)" : ""}</td></tr>`).join("")}</table>
      <p class="muted">Measured ${esc(c.created_at.slice(0, 16).replace("T", " "))} on ${c.masks} finished masks: a box, then 3 rounds of 3 corrective clicks, simulated.</p>`;
  }
  html += `<div class="form inline"><label>Backend <select id="pick-backend"><option value="">automatic (${c ? "best measured" : "default"})</option>
    ${b.available.map((n) => `<option value="${n}" ${b.override === n ? "selected" : ""}>${n}</option>`).join("")}</select></label>
    <button id="compare" ${b.masks_needed ? "disabled" : ""}>Compare mask backends</button></div>`;
  el.className = "";
  el.innerHTML = html;
  $("#pick-backend").addEventListener("change", async (e) => {
    await api("PUT", `/api/projects/${id}/backend`, {backend: e.target.value || null});
    say(e.target.value ? `${e.target.value} serves masks (chosen by you)` : "the measured backend serves masks");
    showBackends(id);
  });
  $("#compare").addEventListener("click", async () => {
    const j = await api("POST", `/api/projects/${id}/compare`);
    followJobs(id, visit, j);
  });
}

async function showAnalytics(id) {
  const a = await api("GET", `/api/projects/${id}/analytics`);
  const el = $("#analytics");
  if (!el || !projectShown(id)) return;
  const fmt = (v, unit = "") => (v == null ? "-" : `${v}${unit}`);
  let html = `<p>time per image ${fmt(a.mean_seconds_per_image, " s")}, interactions per image
    ${fmt(a.mean_interactions_per_image)}, objects per minute ${fmt(a.objects_per_minute)}
    (${fmt(a.total_seconds, " s")} in all).</p>`;
  if (a.map_vs_time && a.map_vs_time.length) html += curveSvg(a.map_vs_time);
  if (a.images.length) html += `<table class="list"><tr><th>image</th><th>seconds</th><th>interactions</th></tr>
    ${a.images.map((r) => `<tr><td>${esc(r.file_name)}</td><td>${r.seconds}</td><td>${r.interactions}</td></tr>`).join("")}</table>`;
  el.innerHTML = html;
}

function curveSvg(points) {
  const w = 420, h = 180, pad = 30;
  const tmax = Math.max(...points.map((p) => p.seconds), 1);
  const xy = points.map((p) => [pad + (w - 2 * pad) * p.seconds / tmax, h - pad - (h - 2 * pad) * (p.mAP ?? 0)]);
  return `<svg class="chart" width="${w}" height="${h}" id="map-curve">
    <text x="${pad}" y="14" font-size="11">mAP@0.5 against the reference annotations</text>
    <line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#888"/>
    <line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#888"/>
    <text x="${w - pad}" y="${h - 8}" font-size="11" text-anchor="end">${tmax.toFixed(0)} s</text>
    <text x="4" y="${pad + 4}" font-size="11">1.0</text>
    <polyline fill="none" stroke="#3656d8" stroke-width="2" points="${xy.map((p) => p.join(",")).join(" ")}"/>
    ${xy.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="3" fill="#3656d8"/>`).join("")}</svg>`;
}

// the detector that serves click-to-detect, and every model version trained
const METHODS = {pretrained: "pretrained features", scratch: "trained from scratch", "training-free": "feature similarity"};

function detectorText(d) {
  if (!d) return "training-free start (feature similarity): no trained detector yet";
  const m = d.metrics || {};
  let why = "";
  if (m.held_out_mAP) {
    const scores = Object.entries(m.held_out_mAP).map(([k, x]) => `${k} ${Number(x).toFixed(2)}`).join(", ");
    why = `; picked by mAP on ${m.held_out_images} held-out finished image${m.held_out_images === 1 ? "" : "s"} (${(m.clicks || []).join(", ")} clicks): ${scores}`;
  } else if (m.note) {
    why = `; ${m.note}`;
  }
  const what = d.method === "training-free" ? "the training-free start serves" : (METHODS[d.method] ?? d.method ?? "trained");
  return `detector v${d.version} (${what}, on ${d.images} images${why})`;
}

function modelsHtml(p) {
  return `Click-to-detect serves: <b id="detector">${esc(detectorText(p.detector))}</b>.
    Models: ${p.models.length ? esc(p.models.map((m) => `${m.task} v${m.version}${m.method ? " " + m.method : ""} (${m.images} images)`).join(", ")) : "none yet"}.`;
}

async function showModels(id) {
  const p = await api("GET", `/api/projects/${id}`);
  const el = $("#models");
  if (el && projectShown(id)) el.innerHTML = modelsHtml(p);
}

const running = (j) => j.status === "queued" || j.status === "running";

function seconds(s) {
  return s < 90 ? `${Math.max(1, Math.round(s))} s` : `${Math.round(s / 60)} min`;
}

// "training detect v3 on 5 images · 40% · about 35 s left"; a failure's first line only
function jobText(j) {
  const what = j.kind === "compare" ? "comparison" : "training";
  const by = j.trigger === "auto" ? " (started by itself)" : "";
  if (j.status === "queued") return `${what} queued${by}`;
  if (j.status === "failed") return `${what} failed: ${j.message}`;
  if (j.status === "done") return j.message;
  const parts = [j.message || what, `${(100 * j.progress).toFixed(0)}%`];
  if (j.eta_seconds != null) parts.push(`about ${seconds(j.eta_seconds)} left`);
  return parts.join(" · ") + by;
}

// the project's newest job on its page, followed while the page is open: once a second
// while it is queued or running, and Train waits for it; every 3 s otherwise, so a job
// started elsewhere (another tab, the auto-trainer) shows too. When a job ends, the models
// and backends it changed are shown again.
let jobTimer = null;
function followJobs(projectId, page, job) {
  const el = $(`#job[data-project="${projectId}"]`);
  if (page !== visit || !el) return;
  const busy = !!job && running(job);
  if (el.dataset.busy === "1" && !busy) { showModels(projectId); showBackends(projectId); }
  el.dataset.busy = busy ? "1" : "";
  el.textContent = job ? jobText(job) : "";
  el.className = job ? job.status : "";
  $("#train").disabled = busy;
  clearTimeout(jobTimer);
  jobTimer = setTimeout(() => refreshJobs(projectId, page), busy ? 1000 : 3000);
}

async function refreshJobs(projectId, page) {
  const jobs = await api("GET", `/api/projects/${projectId}/jobs`).catch(() => null);
  if (jobs) followJobs(projectId, page, jobs[jobs.length - 1] ?? null);
  else if (page === visit) jobTimer = setTimeout(() => refreshJobs(projectId, page), 3000);
}

// ------------------------------------------------------------------ annotation
let S = null;  // the annotation page's state

function stopAnnotating() {
  if (S) {
    if (!S.submitted) logEvent("leave");
    flushEvents(true);
    clearInterval(S.flushTimer);
    window.removeEventListener("keydown", S.onKey);
    window.removeEventListener("keyup", S.onKeyUp);
    window.removeEventListener("resize", S.onResize);
    S = null;
  }
}

async function annotatePage(id) {
  const page = visit;
  const image = await api("GET", `/api/images/${id}`);
  const project = await api("GET", `/api/projects/${image.project_id}`);
  if (page !== visit) return;
  $("#crumbs").innerHTML = `/ <a href="#/project/${project.id}">${esc(project.name)}</a> / ${esc(image.file_name)}`;
  view.innerHTML = `<div class="annotate">
    <div class="tools">
      <div><h3>Mode</h3><div class="modes">
        <button data-mode="detect">Detect (D)</button><button data-mode="box">Box (B)</button>
        <button data-mode="mask">Mask (M)</button><button data-mode="points">Points (P)</button>
        <button data-mode="select">Select (V)</button><button data-mode="review">Review (R)</button></div></div>
      <div><h3>Class</h3><div class="classes">${project.classes.map((c) => `<button data-class="${c.id}">
        <span class="swatch" style="background:${c.color}"></span>${c.key ?? ""} ${esc(c.name)}</button>`).join("")}</div></div>
      <div id="mode-panel"></div>
      <div><h3>Image</h3><div id="counts" class="muted"></div>
        <div class="modes"><button id="undo">Undo</button><button id="redo">Redo</button>
        <button id="prev" ${image.previous ? "" : "disabled"}>Previous</button><button id="submit">Submit (S)</button></div>
        <div class="muted" id="status"></div></div>
    </div>
    <div id="stage"><canvas id="canvas"></canvas><div id="hud"></div></div>
  </div>`;
  S = {
    image, project, revision: image.revision, mode: "detect",
    cls: project.classes[0]?.id, classes: new Map(project.classes.map((c) => [c.id, c])),
    anns: new Map(image.annotations.map((a) => [a.id, a])), masks: new Map(),
    view: {scale: 1, ox: 0, oy: 0}, bitmap: null, tiles: new Map(),
    detect: {clicks: [], result: null}, seg: null, minScore: 0.3, selected: new Set(), drag: null, space: false,
    undo: [], redo: [], events: [], opened: performance.now(), filter: {cls: "", minScore: 0},
    canvas: $("#canvas"), dirty: true, frames: [], prep: null, prepSeen: [],
  };
  S.ctx = S.canvas.getContext("2d");
  S.onKey = onKey; S.onKeyUp = (e) => { if (e.code === "Space") S.space = false; };
  S.onResize = () => { resize(); S.dirty = true; };
  window.addEventListener("keydown", S.onKey);
  window.addEventListener("keyup", S.onKeyUp);
  window.addEventListener("resize", S.onResize);
  for (const b of view.querySelectorAll("[data-mode]")) b.addEventListener("click", () => setMode(b.dataset.mode));
  for (const b of view.querySelectorAll("[data-class]")) b.addEventListener("click", () => pickClass(+b.dataset.class));
  $("#undo").addEventListener("click", undo);
  $("#redo").addEventListener("click", redo);
  $("#submit").addEventListener("click", submit);
  $("#prev").addEventListener("click", () => { location.hash = `#/image/${image.previous}`; });
  S.canvas.addEventListener("mousedown", onDown);
  S.canvas.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp, {once: false});
  S.canvas.addEventListener("wheel", onWheel, {passive: false});
  S.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  S.flushTimer = setInterval(() => flushEvents(false), 3000);
  resize();
  await loadPixels();
  fit();
  setMode("detect");
  pickClass(S.cls);
  logEvent("open");
  S.ready = true;  // pixels loaded and the view fitted: clicks land where they are aimed
  requestAnimationFrame(frame);
  prepare(S);
}

// SAM's embedding of the image is made in the worker ahead of the first box (and the next
// image's after it); until it exists the panel says so. Drawing still works: a request
// made meanwhile waits for the embedding on the server.
async function prepare(state) {
  let out;
  try {
    out = await api("POST", `/api/images/${state.image.id}/prepare`);
  } catch (err) {
    if (S === state) { state.prep = {failed: err.message}; renderPanel(); }
    return;
  }
  if (S !== state) return;  // another page since
  state.prep = out;
  state.prepSeen.push(out.ready ? "ready" : "preparing");
  renderPanel();
  if (!out.ready) setTimeout(() => prepare(state), 500);
}

function prepText() {
  const p = S.prep;
  if (!p) return "preparing image...";
  if (p.failed) return `cannot prepare this image: ${p.failed}`;
  if (!p.needs_sam || (S.mode === "mask" && p.backend !== "sam")) return "";
  return p.ready ? `image ready for ${S.mode === "mask" ? "sam" : "sam-centre"}` : "preparing image (sam encodes it once, a few seconds)...";
}

function resize() {
  const st = $("#stage");
  if (!st || !S) return;
  S.canvas.width = st.clientWidth;
  S.canvas.height = st.clientHeight;
}

async function loadPixels() {
  if (S.image.tiles) return;  // drawn from tiles as they arrive
  const img = new Image();
  img.src = `/api/images/${S.image.id}/file`;
  await img.decode();
  S.bitmap = img;
}

function fit() {
  const {width, height} = S.image;
  const s = Math.min(S.canvas.width / width, S.canvas.height / height) * 0.95;
  S.view = {scale: s, ox: (S.canvas.width - width * s) / 2, oy: (S.canvas.height - height * s) / 2};
  S.dirty = true;
}

const toImage = (e) => {
  const r = S.canvas.getBoundingClientRect();
  return [(e.clientX - r.left - S.view.ox) / S.view.scale, (e.clientY - r.top - S.view.oy) / S.view.scale];
};

function setMode(mode) {
  if (S.mode === "mask" && mode !== "mask") S.seg = null;
  if (S.mode === "detect" && mode !== "detect") S.detect = {clicks: [], result: null};
  S.mode = mode;
  for (const b of view.querySelectorAll("[data-mode]")) b.classList.toggle("active", b.dataset.mode === mode);
  renderPanel();
  S.dirty = true;
}

function pickClass(id) {
  if (!S.classes.has(id)) return;
  S.cls = id;
  for (const b of view.querySelectorAll("[data-class]")) b.classList.toggle("active", +b.dataset.class === id);
  if (S.selected.size && (S.mode === "select" || S.mode === "review")) {
    const ids = [...S.selected].filter((i) => S.anns.get(i)?.class_id !== id);
    if (ids.length) patchMany(ids.map((i) => ({id: i, after: {class_id: id}})), "class change");
  }
  renderPanel();
}

function renderPanel() {
  const p = $("#mode-panel");
  if (!p) return;
  const help = {
    detect: `Click an object of the picked class: boxes for all such objects appear. More clicks refine. Enter accepts, Esc drops. ${S.detect.clicks.length} clicks, ${shownProposals().length} proposals at score >= ${S.minScore.toFixed(2)}.`,
    box: "Drag to draw a box of the picked class.",
    mask: S.seg ? `Left click: add to the mask, right click: remove. Enter accepts, Esc drops. ${S.seg.clicks.length} clicks.` : "Drag a box (or click a box object) and its mask appears.",
    points: "Click each object once; the point snaps to the object's centre (the click is kept).",
    select: `Click to select (Shift: add), drag to move, drag a corner to resize, 1-9 changes class, Delete removes.${S.project.oriented ? " [ and ] turn oriented boxes." : ""}`,
    review: "",
  }[S.mode];
  if (S.mode === "review") {
    const list = reviewList();
    p.innerHTML = `<h3>Review</h3><div class="muted">A accept, X reject, N next.</div>
      <select id="f-class"><option value="">all classes</option>${[...S.classes.values()].map((c) => `<option value="${c.id}" ${+S.filter.cls === c.id ? "selected" : ""}>${esc(c.name)}</option>`).join("")}</select>
      <label class="muted">min score <input id="f-score" type="range" min="0" max="1" step="0.05" value="${S.filter.minScore}"></label>
      <div class="review-list">${list.map((a) => `<div data-ann="${a.id}" class="${S.selected.has(a.id) ? "current" : ""}">
        <span class="swatch" style="background:${S.classes.get(a.class_id).color}"></span>${a.kind}${a.backend ? ` <span class="backend">${esc(a.backend)}</span>` : ""} ${a.score != null ? a.score.toFixed(2) : ""}
        ${a.quality != null ? "q " + a.quality.toFixed(2) : ""} <b>${a.review}</b>
        <button data-review="accepted">A</button><button data-review="rejected">X</button></div>`).join("")}</div>`;
    $("#f-class").addEventListener("change", (e) => { S.filter.cls = e.target.value; renderPanel(); S.dirty = true; });
    $("#f-score").addEventListener("change", (e) => { S.filter.minScore = +e.target.value; renderPanel(); S.dirty = true; });
    for (const row of p.querySelectorAll("[data-ann]")) {
      row.addEventListener("click", (e) => {
        const id = +row.dataset.ann;
        if (e.target.dataset.review) return setReview([id], e.target.dataset.review);
        S.selected = new Set([id]); renderPanel(); S.dirty = true;
      });
    }
  } else {
    p.innerHTML = `<h3>${S.mode}</h3><div class="muted" id="mode-help">${esc(help)}</div>`;
    if (S.mode === "mask" || S.mode === "points") p.insertAdjacentHTML("beforeend", `<div id="prepare" class="${S.prep?.ready ? "ready" : "preparing"}">${esc(prepText())}</div>`);
    if (S.mode === "mask" && S.seg) {
      const r = S.seg.result;
      p.insertAdjacentHTML("beforeend", `<div id="mask-info">backend <b id="mask-backend">${esc(r?.method ?? "...")}</b>${r?.chosen_by === "you" ? " (chosen by you)" : ""}<br>
        score ${r ? r.score.toFixed(2) : "-"}, ${r?.quality != null ? `estimated quality <b id="mask-quality">${r.quality.toFixed(2)}</b>` : "no quality estimate yet (compare the backends on 10 finished masks)"}</div>`);
    }
    if (S.mode === "detect") {
      if (S.detect.result) p.insertAdjacentHTML("beforeend", `<div id="boxes-from">${esc(boxesFrom(S.detect.result))}</div>`);
      p.insertAdjacentHTML("beforeend", `<label class="muted">proposals from score
        <input id="min-score" type="range" min="0.05" max="0.95" step="0.05" value="${S.minScore}"></label>`);
      $("#min-score").addEventListener("input", (e) => { S.minScore = +e.target.value; S.dirty = true; renderPanel(); });
    }
  }
  const counts = $("#counts");
  if (counts) counts.textContent = `${S.anns.size} objects; revision ${S.revision}`;
  const st = $("#status");
  if (st) st.textContent = `status: ${S.image.status.replace("_", " ")}`;
}

// which model made the proposals: the detect answer's model_version and method
function boxesFrom(r) {
  if (r.model_version == null) return "boxes from: training-free start (feature similarity) — no trained detector yet";
  return `boxes from: detector v${r.model_version} (${METHODS[r.method] ?? r.method})`;
}

function reviewList() {
  return [...S.anns.values()].filter((a) => (!S.filter.cls || a.class_id === +S.filter.cls)
    && (a.score == null || a.score >= S.filter.minScore))
    .sort((a, b) => (a.quality ?? a.score ?? 1) - (b.quality ?? b.score ?? 1));
}

// ------------------------------------------------------------------ changes (autosaved, undoable)
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

// create and delete objects as one undoable step
async function change(create, deleteIds, action) {
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

async function patchMany(items, action) {
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

async function undo() {
  const op = S.undo.pop();
  if (!op) return;
  if ((await saved(op.undo)) !== null) { S.redo.push(op); logEvent("undo"); } else S.undo.push(op);
}

async function redo() {
  const op = S.redo.pop();
  if (!op) return;
  if ((await saved(op.redo)) !== null) { S.undo.push(op); logEvent("redo"); } else S.redo.push(op);
}

// oriented projects: [ turns the selected boxes 5 degrees counter-clockwise on screen, ] clockwise
// (the angle counts counter-clockwise, as in types.py; a box becomes an oriented box)
function rotate(degrees) {
  const items = [...S.selected].filter((id) => ["box", "rbox"].includes(S.anns.get(id).kind)).map((id) => {
    const g = S.anns.get(id).geometry;
    const r = g.rbox ?? [(g.box[0] + g.box[2]) / 2, (g.box[1] + g.box[3]) / 2, g.box[2] - g.box[0], g.box[3] - g.box[1], 0];
    return {id, after: {kind: "rbox", geometry: {rbox: [...r.slice(0, 4), r[4] + degrees * Math.PI / 180]}}};
  });
  if (items.length) return patchMany(items, "edit");
}

function setReview(ids, review) {
  return patchMany(ids.map((id) => ({id, after: {review}})), review === "accepted" ? "accept" : "reject");
}

// ------------------------------------------------------------------ interaction log
// every action with the time since the one before it on this image (or since the image
// opened): a visit's events add up to its time, from open to leave or submit
window.addEventListener("pagehide", () => { if (S) { logEvent("leave"); flushEvents(true); } });
function logEvent(action, detail = null) {
  if (!S) return;
  const t = performance.now();
  const since = t - (S.lastAction ?? S.opened);
  S.lastAction = t;
  S.events.push({action, image_id: S.image.id, at: new Date().toISOString(),
                 duration_ms: Math.round(since), detail});
}

function flushEvents(final) {
  if (!S || !S.events.length) return;
  const events = S.events.splice(0);
  fetch(`/api/projects/${S.project.id}/events`, {method: "POST", headers: headers({"Content-Type": "application/json"}),
    body: JSON.stringify(events), keepalive: final}).catch(() => {});
}

async function submit() {
  logEvent("submit", {objects: S.anns.size});
  const out = await api("PATCH", `/api/images/${S.image.id}`, {status: "done"});
  S.submitted = true;  // the visit ends with the submit: no leave
  flushEvents(true);
  sayNext(out.job ? `submitted; training started by itself (after every ${S.project.auto_train_every} finished images)` : "submitted");
  location.hash = S.image.next ? `#/image/${S.image.next}` : `#/project/${S.project.id}`;
}

// ------------------------------------------------------------------ model calls
async function detectNow() {
  const t0 = performance.now();
  const det = S.detect;
  det.busy = (det.busy || Promise.resolve()).then(async () => {
    const out = await api("POST", `/api/images/${S.image.id}/detect`, {clicks: det.clicks});
    det.result = out;
    det.answered = det.clicks.length;
    S.lastLatency = performance.now() - t0;
    S.dirty = true;
    renderPanel();
    say(`${shownProposals().length} proposals in ${S.lastLatency.toFixed(0)} ms`);
  }).catch((err) => { det.error = err.message; });  // api() has already shown it
  return det.busy;
}

// the proposals shown and accepted: at or above the chosen score (a click's own box has score 1)
function shownProposals() {
  const r = S.detect.result;
  if (!r) return [];
  return r.boxes.map((_, i) => i).filter((i) => r.scores[i] >= S.minScore);
}

async function acceptDetections() {
  if (S.detect.busy) await S.detect.busy;
  const r = S.detect.result;
  if (!r) return;
  const create = shownProposals().map((i) => ({
    class_id: r.labels[i], kind: r.rboxes ? "rbox" : "box",
    geometry: r.rboxes ? {rbox: r.rboxes[i]} : {box: r.boxes[i]}, score: r.scores[i], source: "detect"}));
  S.detect = {clicks: [], result: null};
  await change(create, [], "accept");
  renderPanel();
}

async function segmentNow() {
  const seg = S.seg;
  seg.busy = (seg.busy || Promise.resolve()).then(async () => {
    const out = await api("POST", `/api/images/${S.image.id}/segment`, {box: seg.box, clicks: seg.clicks});
    seg.result = out;
    seg.canvas = out.box ? rleCanvas(out.mask, out.box, S.classes.get(S.cls).color, 0.45) : null;
    seg.answered = seg.clicks.length;
    S.dirty = true;
    renderPanel();
  }).catch((err) => { seg.error = err.message; });  // api() has already shown it
  return seg.busy;
}

async function acceptMask() {
  if (S.seg?.busy) await S.seg.busy;  // the answer to the last click first
  const r = S.seg?.result;
  if (!r || !r.box) return;
  const replace = S.seg.from != null ? [S.seg.from] : [];
  const create = [{class_id: S.cls, kind: "mask", geometry: {mask: r.mask}, score: r.score, quality: r.quality,
                   source: "segment", backend: r.method}];
  S.seg = null;
  await change(create, replace, "accept");
}

// ------------------------------------------------------------------ mouse and keys
function hit(x, y) {
  let best = null, area = Infinity;
  for (const a of S.anns.values()) {
    const b = a.geometry.box;
    if (b && x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]) {
      const ar = (b[2] - b[0]) * (b[3] - b[1]);
      if (ar < area) { best = a; area = ar; }
    } else if (a.geometry.point) {
      const [px, py] = a.geometry.point;
      if (Math.hypot(px - x, py - y) * S.view.scale < 8) return a;
    }
  }
  return best;
}

function handleAt(x, y) {
  for (const id of S.selected) {
    const b = S.anns.get(id)?.geometry.box;
    if (!b || S.anns.get(id).kind !== "box") continue;
    const corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
    for (let i = 0; i < 4; i++) {
      if (Math.hypot(corners[i][0] - x, corners[i][1] - y) * S.view.scale < 7) return {id, corner: i};
    }
  }
  return null;
}

function onDown(e) {
  const [x, y] = toImage(e);
  if (S.space || e.button === 1) {
    S.drag = {kind: "pan", sx: e.clientX, sy: e.clientY, ox: S.view.ox, oy: S.view.oy, t0: performance.now()};
    return;
  }
  S.drag = {kind: "press", x0: x, y0: y, x, y, button: e.button, shift: e.shiftKey, t0: performance.now()};
  if (S.mode === "select" && e.button === 0) {
    const h = handleAt(x, y);
    if (h) { S.drag.kind = "resize"; S.drag.handle = h; return; }
    const a = hit(x, y);
    if (a) {
      if (!S.selected.has(a.id)) { if (!e.shiftKey) S.selected.clear(); S.selected.add(a.id); }
      S.drag.kind = "move";
    } else if (!e.shiftKey) S.selected.clear();
    S.dirty = true;
  }
}

function onMove(e) {
  const [x, y] = toImage(e);
  $("#hud").textContent = `${x.toFixed(0)}, ${y.toFixed(0)}  zoom ${(100 * S.view.scale).toFixed(0)}%  ${S.anns.size} objects`;
  if (!S.drag) return;
  if (S.drag.kind === "pan") {
    S.view.ox = S.drag.ox + e.clientX - S.drag.sx;
    S.view.oy = S.drag.oy + e.clientY - S.drag.sy;
  } else {
    S.drag.x = x; S.drag.y = y;
  }
  S.dirty = true;
}

async function onUp(e) {
  if (!S || !S.drag) return;
  const d = S.drag;
  S.drag = null;
  S.dirty = true;
  if (d.kind === "pan") return;
  const moved = Math.hypot(d.x - d.x0, d.y - d.y0) * S.view.scale > 4;
  const box = [Math.min(d.x0, d.x), Math.min(d.y0, d.y), Math.max(d.x0, d.x), Math.max(d.y0, d.y)];
  const inside = (x, y) => x >= 0 && y >= 0 && x < S.image.width && y < S.image.height;
  if (d.kind === "move" && moved) {
    const dx = d.x - d.x0, dy = d.y - d.y0;
    const items = [...S.selected].filter((id) => S.anns.get(id).kind !== "mask").map((id) => {
      const g = S.anns.get(id).geometry;
      let geometry;
      if (g.rbox) geometry = {rbox: [g.rbox[0] + dx, g.rbox[1] + dy, ...g.rbox.slice(2)]};
      else if (g.point) geometry = {point: [g.point[0] + dx, g.point[1] + dy], original: g.original};
      else geometry = {box: [g.box[0] + dx, g.box[1] + dy, g.box[2] + dx, g.box[3] + dy]};
      return {id, after: {geometry}};
    });
    return patchMany(items, "edit");
  }
  if (d.kind === "resize") {
    const b = [...S.anns.get(d.handle.id).geometry.box];
    const c = d.handle.corner;
    if (c === 0 || c === 3) b[0] = d.x; else b[2] = d.x;
    if (c === 0 || c === 1) b[1] = d.y; else b[3] = d.y;
    return patchMany([{id: d.handle.id, after: {geometry: {box: b}}}], "edit");
  }
  if (d.kind !== "press") return;
  if (S.mode === "box" && moved) {
    await change([{class_id: S.cls, kind: "box", geometry: {box}, source: "manual"}], [], "draw");
  } else if (S.mode === "detect" && !moved && d.button === 0) {
    if (!inside(d.x0, d.y0)) return say("that click is outside the image", true);
    S.detect.clicks.push([d.x0, d.y0, S.cls]);
    logEvent("click", {mode: "detect", x: d.x0, y: d.y0, class_id: S.cls});
    await detectNow();
  } else if (S.mode === "mask") {
    if (!S.seg && moved) {
      S.seg = {box, clicks: [], result: null, from: null};
      logEvent("draw", {mode: "mask"});
      await segmentNow();
    } else if (!S.seg && !moved) {
      const a = hit(d.x0, d.y0);
      if (a && a.geometry.box) {
        S.seg = {box: a.geometry.box, clicks: [], result: null, from: a.kind === "box" ? a.id : null};
        S.cls = a.class_id;
        await segmentNow();
      }
    } else if (S.seg && !moved) {
      if (!inside(d.x0, d.y0)) return say("that click is outside the image", true);
      S.seg.clicks.push([d.x0, d.y0, d.button === 0]);
      logEvent("click", {mode: "mask", positive: d.button === 0});
      await segmentNow();
    }
  } else if (S.mode === "points" && !moved && d.button === 0) {
    if (!inside(d.x0, d.y0)) return say("that click is outside the image", true);
    const out = await api("POST", `/api/images/${S.image.id}/snap`, {x: d.x0, y: d.y0, class_id: S.cls});
    await change([{class_id: S.cls, kind: "point", geometry: {point: out.point, original: [d.x0, d.y0]}, source: "points"}], [], "click");
  } else if (S.mode === "review" && !moved) {
    const a = hit(d.x0, d.y0);
    S.selected = new Set(a ? [a.id] : []);
    renderPanel();
  }
}

function onWheel(e) {
  e.preventDefault();
  const r = S.canvas.getBoundingClientRect();
  const mx = e.clientX - r.left, my = e.clientY - r.top;
  const k = Math.exp(-e.deltaY * 0.0015);
  const scale = Math.min(40, Math.max(0.005, S.view.scale * k));
  S.view.ox = mx - (mx - S.view.ox) * scale / S.view.scale;
  S.view.oy = my - (my - S.view.oy) * scale / S.view.scale;
  S.view.scale = scale;
  S.dirty = true;
}

function onKey(e) {
  if (!S || e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
  const key = e.key.toLowerCase();
  if (e.code === "Space") { S.space = true; e.preventDefault(); return; }
  if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); return e.shiftKey ? redo() : undo(); }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (/^[1-9]$/.test(e.key)) {
    const c = [...S.classes.values()].find((c) => c.key === +e.key);
    if (c) pickClass(c.id);
    return;
  }
  const modes = {d: "detect", b: "box", m: "mask", p: "points", v: "select", r: "review"};
  if (modes[key]) return setMode(modes[key]);
  if (e.key === "?") return $("#help").classList.toggle("hidden");
  if (key === "f") return fit();
  if (key === "s") return submit();
  if (e.key === "Enter") return S.mode === "mask" ? acceptMask() : acceptDetections();
  if (e.key === "Escape") {
    $("#help").classList.add("hidden");
    S.detect = {clicks: [], result: null}; S.seg = null; S.selected.clear(); S.dirty = true; renderPanel();
    return;
  }
  if ((e.key === "Delete" || e.key === "Backspace") && S.selected.size) return change([], [...S.selected], "delete");
  if ((e.key === "[" || e.key === "]") && S.selected.size && S.project.oriented) return rotate(e.key === "]" ? -5 : 5);
  if (S.mode === "review" && S.selected.size && (key === "a" || key === "x")) return setReview([...S.selected], key === "a" ? "accepted" : "rejected");
  if (S.mode === "review" && key === "n") {
    const list = reviewList();
    const i = list.findIndex((a) => S.selected.has(a.id));
    const next = list[(i + 1) % Math.max(list.length, 1)];
    S.selected = new Set(next ? [next.id] : []);
    renderPanel(); S.dirty = true;
  }
}
$("#help-button").addEventListener("click", () => $("#help").classList.toggle("hidden"));
$("#help").addEventListener("click", () => $("#help").classList.add("hidden"));

// ------------------------------------------------------------------ drawing
function frame(t) {
  if (!S) return;
  if (S.dirty) {
    const t0 = performance.now();
    draw();
    S.frames.push(performance.now() - t0);
    if (S.frames.length > 600) S.frames.shift();
    S.dirty = false;
  }
  requestAnimationFrame(frame);
}

function draw() {
  const {ctx, canvas, view: v} = S;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#2b2f38";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(v.scale, 0, 0, v.scale, v.ox, v.oy);
  ctx.imageSmoothingEnabled = v.scale < 2;
  if (S.bitmap) ctx.drawImage(S.bitmap, 0, 0, S.image.width, S.image.height);
  else if (S.image.tiles) drawTiles();
  const lw = 1.5 / v.scale;
  const x0 = -v.ox / v.scale, y0 = -v.oy / v.scale;
  const x1 = x0 + canvas.width / v.scale, y1 = y0 + canvas.height / v.scale;
  const reviewing = S.mode === "review";
  for (const a of S.anns.values()) {
    const g = a.geometry, b = g.box;
    if (b && (b[2] < x0 || b[0] > x1 || b[3] < y0 || b[1] > y1)) continue;
    if (reviewing && ((S.filter.cls && a.class_id !== +S.filter.cls) || (a.score != null && a.score < S.filter.minScore))) continue;
    const color = S.classes.get(a.class_id)?.color ?? "#ffffff";
    const sel = S.selected.has(a.id);
    ctx.strokeStyle = color;
    ctx.lineWidth = sel ? 3 * lw : lw;
    ctx.setLineDash(a.review === "rejected" ? [4 * lw, 4 * lw] : []);
    ctx.globalAlpha = a.review === "rejected" ? 0.5 : 1;
    if (a.kind === "mask") {
      let m = S.masks.get(a.id);
      if (!m) { m = rleCanvas(g.mask, b, color, 0.4); S.masks.set(a.id, m); }
      ctx.drawImage(m.canvas, m.x, m.y);
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    } else if (a.kind === "rbox") {
      poly(drawnCorners(a));
    } else if (a.kind === "point") {
      const [px, py] = g.point, [ox, oy] = g.original;
      ctx.beginPath(); ctx.moveTo(ox, oy); ctx.lineTo(px, py); ctx.stroke();
      ctx.beginPath(); ctx.arc(ox, oy, 3 * lw, 0, 7); ctx.stroke();
      ctx.fillStyle = color; ctx.beginPath(); ctx.arc(px, py, 4 * lw, 0, 7); ctx.fill();
    } else {
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      if (sel && S.mode === "select") for (const [cx, cy] of [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]) {
        ctx.fillStyle = "#fff"; ctx.fillRect(cx - 3 * lw, cy - 3 * lw, 6 * lw, 6 * lw);
      }
    }
    if (a.review === "accepted") { ctx.fillStyle = color; ctx.fillRect(b ? b[0] : g.point[0], b ? b[1] - 4 * lw : g.point[1], 6 * lw, 4 * lw); }
  }
  ctx.globalAlpha = 1;
  // proposals of click-to-detect
  const r = S.detect.result;
  if (r) {
    ctx.setLineDash([5 * lw, 3 * lw]);
    ctx.lineWidth = 1.5 * lw;
    for (const i of shownProposals()) {
      const b = r.boxes[i];
      ctx.strokeStyle = S.classes.get(r.labels[i])?.color ?? "#fff";
      if (r.rboxes) poly(rboxCorners(r.rboxes[i])); else ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    }
    ctx.setLineDash([]);
  }
  for (const [cx, cy, c] of S.detect.clicks) cross(cx, cy, S.classes.get(c)?.color ?? "#fff", lw);
  if (S.seg) {
    const b = S.seg.box;
    ctx.setLineDash([5 * lw, 3 * lw]); ctx.strokeStyle = "#ffffff"; ctx.lineWidth = lw;
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]); ctx.setLineDash([]);
    if (S.seg.canvas) ctx.drawImage(S.seg.canvas.canvas, S.seg.canvas.x, S.seg.canvas.y);
    for (const [cx, cy, pos] of S.seg.clicks) {
      ctx.fillStyle = pos ? "#2ee86b" : "#ff3b3b";
      ctx.beginPath(); ctx.arc(cx, cy, 4 * lw, 0, 7); ctx.fill();
    }
  }
  const d = S.drag;
  if (d && d.kind === "press" && (S.mode === "box" || (S.mode === "mask" && !S.seg))) {
    ctx.strokeStyle = S.classes.get(S.cls)?.color ?? "#fff"; ctx.lineWidth = lw;
    ctx.strokeRect(d.x0, d.y0, d.x - d.x0, d.y - d.y0);
  }
  if (d && (d.kind === "move" || d.kind === "resize")) {
    ctx.strokeStyle = "#fff"; ctx.setLineDash([3 * lw, 3 * lw]);
    ctx.beginPath(); ctx.moveTo(d.x0, d.y0); ctx.lineTo(d.x, d.y); ctx.stroke(); ctx.setLineDash([]);
  }
}

function poly(pts) {
  const ctx = S.ctx;
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
  ctx.closePath();
  ctx.stroke();
}

// an oriented box's corners as fewclick/types.py's rboxes_to_polygons gives them: the angle
// turns counter-clockwise on screen (y down), corners from (-w/2, -h/2) in the box frame
function rboxCorners([cx, cy, w, h, a]) {
  const c = Math.cos(a), s = Math.sin(a);
  return [[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]].map(([x, y]) => [cx + x * c + y * s, cy - x * s + y * c]);
}

// the corners the canvas draws for a box or oriented box annotation, in image pixels
function drawnCorners(a) {
  const g = a.geometry, b = g.box;
  return a.kind === "rbox" ? rboxCorners(g.rbox) : [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
}

function cross(x, y, color, lw) {
  const ctx = S.ctx, r = 6 * lw;
  ctx.strokeStyle = color; ctx.lineWidth = 2 * lw;
  ctx.beginPath(); ctx.moveTo(x - r, y); ctx.lineTo(x + r, y); ctx.moveTo(x, y - r); ctx.lineTo(x, y + r); ctx.stroke();
}

function drawTiles() {
  const t = S.image.tiles, v = S.view, ctx = S.ctx;
  const level = Math.max(0, Math.min(t.levels - 1, Math.floor(Math.log2(1 / v.scale))));
  const top = t.levels - 1;
  drawLevel(top, ctx);  // the whole image at the coarsest level, under the rest
  if (level !== top) drawLevel(level, ctx);
}

function drawLevel(level, ctx) {
  const t = S.image.tiles, v = S.view, f = 2 ** level, size = t.tile * f;
  const x0 = Math.max(0, Math.floor(-v.ox / v.scale / size)), y0 = Math.max(0, Math.floor(-v.oy / v.scale / size));
  const x1 = Math.min(Math.ceil(t.sizes[level][0] / t.tile) - 1, Math.floor((S.canvas.width - v.ox) / v.scale / size));
  const y1 = Math.min(Math.ceil(t.sizes[level][1] / t.tile) - 1, Math.floor((S.canvas.height - v.oy) / v.scale / size));
  for (let row = y0; row <= y1; row++) {
    for (let col = x0; col <= x1; col++) {
      const key = `${level}/${col}/${row}`;
      let tile = S.tiles.get(key);
      if (!tile) {
        tile = new Image();
        tile.onload = () => { tile.ready = true; if (S) S.dirty = true; };
        tile.src = `/api/images/${S.image.id}/tiles/${key}`;
        S.tiles.set(key, tile);
      }
      if (tile.ready) ctx.drawImage(tile, col * size, row * size, tile.width * f, tile.height * f);
    }
  }
}
