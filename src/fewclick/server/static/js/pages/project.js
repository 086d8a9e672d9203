// A project's page: its counts, models and training job (followed while the page is open),
// mask backends, classes, import, analytics and the list of its images.
import {$, api, esc, say} from "../api.js";
import {METHODS, seconds} from "../text.js";
import {uploadPanel} from "./upload.js";
import {visit} from "../visit.js";

// the app's export formats: the key the API takes, and what a person reads
const EXPORTS = [
  ["coco", "COCO (boxes, polygons, masks)"], ["coco-panoptic", "COCO panoptic"],
  ["yolo", "YOLO detection"], ["yolo-seg", "YOLO segmentation"], ["yolo-obb", "YOLO oriented boxes"],
  ["voc", "Pascal VOC"], ["dota", "DOTA"], ["cvat", "CVAT for images 1.1"], ["labelstudio", "Label Studio JSON"],
  ["masks", "Instance + semantic mask PNGs"], ["geojson", "GeoJSON (georeferenced images)"], ["qupath", "QuPath GeoJSON (slides, in pixels)"],
  ["points", "Points CSV"],
];

const imageCounts = (p) => (p.images ? `${p.images} images; ${Object.entries(p.by_status).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(", ")}.` : "No images yet: drop some under Add images.");
const imageRows = (images) => `<tr><th>image</th><th>size</th><th>status</th><th>objects</th></tr>
  ${images.map((im) => `<tr><td><a href="#/image/${im.id}">${esc(im.file_name)}</a></td><td>${im.width} x ${im.height}</td>
    <td class="status-${im.status}">${im.status.replace("_", " ")}</td><td>${im.annotations}</td></tr>`).join("")}`;

export async function projectPage(id) {
  const page = visit;
  const [p, images, jobs] = await Promise.all([
    api("GET", `/api/projects/${id}`), api("GET", `/api/projects/${id}/images`), api("GET", `/api/projects/${id}/jobs`)]);
  if (page !== visit) return;  // another page opened meanwhile: this one's answers are not shown there
  $("#crumbs").innerHTML = `/ <a href="#/project/${id}">${esc(p.name)}</a>`;
  const job = newest(jobs, false), trainer = newest(jobs, true);
  $("#view").innerHTML = `<div class="page" data-project="${id}">
    <h2>${esc(p.name)}</h2>
    <p id="image-counts">${imageCounts(p)}</p>
    <p id="models">${modelsHtml(p)}</p>
    <div class="form inline">
      <select id="export-format" title="what each format cannot hold is listed in warnings.txt inside the download">
        ${EXPORTS.map(([key, label]) => `<option value="${key}">${label}</option>`).join("")}</select>
      <a id="export" href="/api/projects/${id}/export?format=coco" download><button>Export</button></a>
      <button id="finish" title="imported labels count as your own">Mark annotated images done</button>
      <button id="train" ${job && running(job) ? "disabled" : ""}>Train on finished images</button>
      <button id="preannotate" ${job && running(job) ? "disabled" : ""}
        title="the detector's boxes, with their scores, on every image nobody has started; review them least sure first">Pre-annotate new images</button>
      <label class="muted" title="the background trainer then takes in every image finished since at each of its rounds; masks and points train again after every this many">start training after <input id="auto-train" type="number" min="0" max="1000" step="1"
        value="${p.auto_train_every}"> finished images (0: off)</label>
      <label class="muted" title="off for a project whose images may really be empty"><input type="checkbox" id="ask-empty" ${p.ask_empty ? "checked" : ""}> ask before an image is submitted with no objects</label>
    </div>
    <div class="form inline"><a href="#/project/${id}/queue"><button id="open-queue">Review queue</button></a>
      <span class="muted">the boxes the detector is least sure of, across the project</span>
      <label class="muted">train after every <input id="queue-train" type="number" min="0" max="1000" step="1"
        value="${p.queue_train_every}"> answers (0: off)</label></div>
    <p class="form inline"><span id="job" data-project="${id}" class="${job ? job.status : ""}">${job ? esc(jobText(job)) : ""}</span>
      <button id="job-go" hidden></button><button id="job-stop" hidden>Stop</button></p>
    <p class="form inline"><span id="trainer" class="muted">${esc(trainerText(trainer))}</span>
      <button id="trainer-go"></button><button id="trainer-stop">Stop</button></p>
    <h3>Mask backends</h3><div id="backends" class="muted">loading</div>
    <h3>Classes</h3>
    <div id="classes">${classesHtml(p)}</div>
    <form class="inline" id="add-class"><input name="name" placeholder="new class"><button>Add class</button></form>
    <h3>Import annotations</h3>
    <form class="inline" id="import"><input type="text" name="dataset" placeholder="/path/to/annotations.json">
      <input name="format" placeholder="format (optional)" size="12">
      <label><input type="checkbox" name="reference"> as reference</label><button>Import</button></form>
    <h3>Analytics</h3><div id="analytics" class="muted">loading</div>
    <h3>Add images</h3><div id="upload"></div>
    <h3>Images</h3>
    <table class="list" id="images">${imageRows(images)}</table></div>`;
  uploadPanel($("#upload"), id, async () => {
    const [now, counts] = await Promise.all([api("GET", `/api/projects/${id}/images`), api("GET", `/api/projects/${id}`)]).catch(() => []);
    if (!now || page !== visit) return;
    $("#images").innerHTML = imageRows(now);
    $("#image-counts").textContent = imageCounts(counts);
    $("#classes").innerHTML = classesHtml(counts);  // an annotation file may have added classes
  });
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
    // the trainer (boxes) and a job for masks and points, as the finished images allow
    const j = await api("POST", `/api/projects/${id}/train`, {minutes: 3}).catch(() => null);
    if (j && j.kind !== "trainer") followJobs(id, page, j); else refreshJobs(id, page);  // refused: show the job that runs, if any
  });
  showTrainer(trainer);
  $("#models").addEventListener("change", async (e) => {
    if (e.target.id !== "pin") return;
    const v = e.target.value;
    const out = await api("PATCH", `/api/projects/${id}`, {pinned_detector: v === "" ? null : Number(v)}).catch(() => null);
    if (out) say(v === "" ? "the newest detector serves, as versions come" : `serves: ${detectorText(out.detector, out.pinned_detector, out.models ?? [], (out.classes || []).map((c) => c.name))}`);
    showModels(id);
  });
  $("#trainer-go").addEventListener("click", async () => {
    const action = $("#trainer-go").dataset.action;
    $("#trainer-go").disabled = true;
    await api("POST", `/api/projects/${id}/trainer`, {action}).catch(() => null);
    refreshJobs(id, page);
  });
  $("#trainer-stop").addEventListener("click", async () => {
    $("#trainer-stop").disabled = true;
    await api("POST", `/api/projects/${id}/trainer`, {action: "stop"}).catch(() => null);
    refreshJobs(id, page);
  });
  $("#job-go").addEventListener("click", () => controlJob(id, page, $("#job-go")));
  $("#job-stop").addEventListener("click", () => controlJob(id, page, $("#job-stop")));
  $("#preannotate").addEventListener("click", async () => {
    $("#preannotate").disabled = true;
    const j = await api("POST", `/api/projects/${id}/preannotate`).catch(() => null);
    if (j) followJobs(id, page, j); else refreshJobs(id, page);
  });
  $("#auto-train").addEventListener("change", async (e) => {
    const v = e.target.value.trim();  // anything but digits goes as typed: the server says what is wrong
    const out = await api("PATCH", `/api/projects/${id}`, {auto_train_every: /^\d+$/.test(v) ? Number(v) : v}).catch(() => null);
    if (!out) return;
    e.target.value = out.auto_train_every;
    say(out.auto_train_every ? `the trainer starts by itself once ${out.auto_train_every} images are finished` : "trains only when you ask");
  });
  $("#ask-empty").addEventListener("change", async (e) => {
    const out = await api("PATCH", `/api/projects/${id}`, {ask_empty: e.target.checked}).catch(() => null);
    if (!out) return;
    e.target.checked = out.ask_empty;
    say(out.ask_empty ? "an image submitted with no objects is asked about first" : "images with no objects are submitted as empty without asking");
  });
  $("#queue-train").addEventListener("change", async (e) => {
    const v = e.target.value.trim();
    const out = await api("PATCH", `/api/projects/${id}`, {queue_train_every: /^\d+$/.test(v) ? Number(v) : v}).catch(() => null);
    if (!out) return;
    e.target.value = out.queue_train_every;
    say(out.queue_train_every ? `trains by itself after every ${out.queue_train_every} answers of the review queue` : "the review queue starts no training");
  });
  $("#export-format").addEventListener("change", (e) => {
    $("#export").href = `/api/projects/${id}/export?format=${e.target.value}`;
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
    ${b.masks_needed ? `A comparison needs ${b.masks_needed} more finished masks (${b.finished_masks} of 10 on images marked done).` : `${b.finished_masks} finished masks.`}</p>
    ${b.sam_tuned ? `<p class="muted" id="sam-tuned">SAM tuned to this project: ${esc(b.sam_tuned)}.</p>` : ""}`;
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
  const finished = a.images.filter((r) => r.finished != null);  // opened, not finished: not on the curve
  if (finished.length >= 2) {  // in the order the images were finished: the learning curve
    const most = Math.max(...finished.map((r) => r.interactions), 1);
    html += curveSvg(finished.map((r) => ({x: r.finished, y: r.interactions})), "interactions-curve",
      "interactions per image, in the order finished", (x) => `image ${x}`, most);
  }
  if (a.map_vs_time && a.map_vs_time.length) {
    html += curveSvg(a.map_vs_time.map((p) => ({x: p.seconds, y: p.mAP})), "map-curve",
      "mAP@0.5 of the annotations against the reference", (x) => `${x.toFixed(0)} s`);
  }
  if (a.map_vs_boxes && a.map_vs_boxes.length) {
    const last = a.map_vs_boxes[a.map_vs_boxes.length - 1];
    html += curveSvg(a.map_vs_boxes.map((p) => ({x: p.boxes, y: p.mAP, label: `v${p.version}`})), "boxes-curve",
      "detector mAP@0.5 (no clicks) against boxes labeled", (x) => `${x.toFixed(0)} boxes`);
    html += `<p class="muted">Each detector version scored on the images nobody had labeled when it trained
      (up to 20 with reference annotations; ${last.images} for v${last.version}).</p>`;
  }
  if (a.images.length) html += `<table class="list"><tr><th>image</th><th>seconds</th><th>interactions</th></tr>
    ${a.images.map((r) => `<tr><td>${esc(r.file_name)}</td><td>${r.seconds}</td><td>${r.interactions}</td></tr>`).join("")}</table>`;
  el.innerHTML = html;
}

// a curve of points {x, y (0..ymax), label?} from x = 0, its title and how the x axis's end reads
function curveSvg(points, id, title, xText, ymax = 1) {
  const w = 420, h = 180, pad = 30;
  const xmax = Math.max(...points.map((p) => p.x), 1);
  const xy = points.map((p) => [pad + (w - 2 * pad) * p.x / xmax, h - pad - (h - 2 * pad) * (p.y ?? 0) / ymax]);
  return `<svg class="chart" width="${w}" height="${h}" id="${id}">
    <text x="${pad}" y="14" font-size="11">${esc(title)}</text>
    <line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#888"/>
    <line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#888"/>
    <text x="${w - pad}" y="${h - 8}" font-size="11" text-anchor="end">${esc(xText(xmax))}</text>
    <text x="4" y="${pad + 4}" font-size="11">${ymax === 1 ? "1.0" : ymax}</text>
    <polyline fill="none" stroke="#3656d8" stroke-width="2" points="${xy.map((p) => p.join(",")).join(" ")}"/>
    ${xy.map(([x, y], i) => `<circle cx="${x}" cy="${y}" r="3" fill="#3656d8"><title>${esc(points[i].label ?? "")}
      ${points[i].y == null ? "-" : ymax === 1 ? points[i].y.toFixed(3) : points[i].y}</title></circle>${points[i].label
      ? `<text x="${x}" y="${y - 6}" font-size="10" text-anchor="middle">${esc(points[i].label)}</text>` : ""}`).join("")}</svg>`;
}

// the detector that serves click-to-detect, and every model version trained
function detectorText(d, pin = null, models = [], classes = []) {
  const unread = models.some((m) => m.task === "detect" && m.unreadable && !m.collected);
  if (!d && pin === 0) return "the training-free start (feature similarity), pinned";
  if (!d) return `training-free start (feature similarity): ${unread ? "no detector version can be read" : "no trained detector yet"}`;
  const m = d.metrics || {};
  let why = "";
  if (m.prequential) {
    why = "";  // said class by class under it (prequentialHtml)
  } else if (m.held_out_mAP) {  // a version from before issue 68: scored on held-out images
    const scores = Object.entries(m.held_out_mAP).map(([k, x]) => `${k} ${Number(x).toFixed(2)}`).join(", ");
    why = `; picked by mAP on ${m.held_out_images} held-out finished image${m.held_out_images === 1 ? "" : "s"}: ${scores}`;
  } else if (m.note) {
    why = `; ${m.note}`;
  }
  if (m.trainer_round != null) why += `; the background trainer's round ${m.trainer_round} (${m.trainer_steps} steps)`;
  if (m.partly_labeled_images) why += `; and ${m.partly_labeled_images} image${m.partly_labeled_images === 1 ? "" : "s"} partly labeled in the review queue`;
  if (m.score_threshold != null) why += `; proposals shown from score ${Number(m.score_threshold).toFixed(2)}, its best F1 there`;
  const what = d.method === "training-free" ? "the training-free start serves" : (METHODS[d.method] ?? d.method ?? "trained");
  const pinned = pin ? "; pinned: versions trained after it are kept, and serve once you choose them" : "";
  return `detector v${d.version} (${what}, on ${d.images} images${why}${pinned})`;
}

// why a trained version serves, as a list under it: each source's seconds saved an image on
// the images it never saw (test, then train), then per class whether it is shown on open and why
function prequentialHtml(p, classes = []) {
  const saved = Object.entries(p.saved_s || {}).map(([k, v]) => `${k} ${Number(v).toFixed(1)} s`).join(", ");
  const n = p.scored_images;
  const name = (c) => `<b>${esc(classes[c] ?? `class ${c}`)}</b>`;
  const serves = (p.serves || []).map(Number);
  const items = [`tested on ${n} image${n === 1 ? "" : "s"} it had not seen before training on them; work saved an image: ${esc(saved || "none scored")}`];
  const why = p.why && typeof p.why === "object" ? p.why : {};
  const positions = classes.length ? classes.map((_, c) => c) : serves;
  for (const c of positions) {
    if (serves.includes(c)) {
      items.push(`${name(c)}: its boxes are shown on open: it ${esc(why[c] ?? "saved the most")}`);
    } else {
      const other = p.sources?.[c];
      if (other === "look-alikes") {  // they keep serving it beside the version (one source a class)
        items.push(`${name(c)}: shown on open by the look-alikes among SAM's proposals, which saved more on it`);
      } else if (other === "learner") {  // refit on the finished images, and on each click
        items.push(`${name(c)}: shown on open by the fast learner over SAM's proposals, refit on your newest finished images and on each click: it ${esc(why[c] ?? "saved more on it")}${conventionText(p.learner_convention?.[c])}`);
      } else {
        items.push(`${name(c)}: not shown on open: ${other && other !== "none" && other !== "trainer"
          ? `${esc(other)} saved more` : "it has not saved work on this class yet"}`);
      }
    }
  }
  if (typeof p.why === "string") items.push(esc(p.why));  // a version registered before the reasons were kept per class
  return `<ul id="serving-why">${items.map((t) => `<li>${t}</li>`).join("")}</ul>`;
}

// how the person's boxes sit on SAM's outlines, as the learner moves its boxes (issue 68):
// "; your boxes: 12% wider and 8% taller than SAM's outlines", and where the newest images
// differ, that it follows them
function conventionText(conv) {
  if (!conv) return "";
  const side = (r, more, less) => r >= 1 ? `${Math.round((r - 1) * 100)}% ${more}` : `${Math.round((1 - r) * 100)}% ${less}`;
  const says = (w, t) => `${side(w, "wider", "narrower")} and ${side(t, "taller", "shorter")}`;
  let text = `; your boxes: ${says(conv.wide, conv.tall)} than SAM's outlines (${conv.objects} objects)`;
  const moved = conv.recent_wide != null && (Math.abs(conv.recent_wide - conv.wide) > 0.1 || Math.abs(conv.recent_tall - conv.tall) > 0.1);
  if (moved) text += `; in your newest images ${says(conv.recent_wide, conv.recent_tall)}: the learner follows your newest images`;
  return esc(text);
}

// the choice of what serves: the newest version as they come, one version, or the training-free start
function pinHtml(p) {
  const detectors = p.models.filter((m) => m.task === "detect" && !m.collected && !m.unreadable);
  const newest = detectors.length ? ` (now v${detectors[detectors.length - 1].version})` : "";
  const options = [["", `the newest version, as they come${newest}`],
    ...detectors.map((m) => [String(m.version), `v${m.version}: ${METHODS[m.method] ?? m.method ?? "trained"}, ${m.images} images`]),
    ["0", "the training-free start"]];
  const pin = p.pinned_detector == null ? "" : String(p.pinned_detector);
  return `<select id="pin" title="the detector everyone's clicks use">${options.map(([v, t]) =>
    `<option value="${v}"${v === pin ? " selected" : ""}>${esc(t)}</option>`).join("")}</select>`;
}

function modelsHtml(p) {
  const names = (p.classes || []).map((c) => c.name);
  const scored = p.detector?.metrics?.prequential;
  return `Click-to-detect serves: <b id="detector">${esc(detectorText(p.detector, p.pinned_detector, p.models, names))}</b>.
    ${scored ? prequentialHtml(scored, names) : ""}
    Serve: ${pinHtml(p)}.
    Models: <span id="models-held">${esc(modelsText(p))}</span>.
    ${unreadableHtml(p)}${filesText(p)}`;
}

const mb = (b) => `${(b / 2 ** 20).toFixed(b < 2 ** 30 ? 0 : 1)} MB`;

// what the model files hold: the versions not collected, then the trainer's rounds that are
// no version (the one in training, or one that did not beat what serves), so the line never
// says "none" of files that take disk
function modelsText(p) {
  const live = p.models.filter((m) => !m.collected)
    .map((m) => `${m.task} v${m.version}${m.method ? " " + m.method : ""} (${m.images} images)`);
  const rounds = (p.model_files?.rounds ?? []).map((r) =>
    `the trainer's round ${r.round} (${mb(r.bytes)}), ${r.finished ? "finished, not serving" : "being trained or scored"}`);
  if (!live.length && !rounds.length) return "none yet";
  return [live.length ? live.join(", ") : "no version yet", ...rounds].join("; ");
}

// a version whose file could not be read: it does not serve, and the page says why
function unreadableHtml(p) {
  const bad = p.models.filter((m) => m.unreadable && !m.collected);
  const instead = p.detector ? `detector v${p.detector.version} serves instead` : "the training-free start serves instead";
  return bad.map((m) => `<br><span class="warn unreadable-model">${esc(m.task)} v${m.version} does not serve: its file could not be read (${esc(m.unreadable)}); ${m.task === "detect" ? instead : "the last good model serves instead"}.</span>`).join("");
}

// the disk the model files take, against their budget; older versions' files are collected
function filesText(p) {
  const f = p.model_files;
  if (!f) return "";
  const gone = p.models.filter((m) => m.collected).length;
  return `<br><span id="model-files" class="muted">Model files: ${mb(f.bytes)} of ${mb(f.budget_bytes)}${partsText(f)}; the ${f.kept_per_task} newest versions per task are kept besides the serving and the pinned one${gone ? ` (${gone} older collected)` : ""}.</span>`;
}

// where the bytes are, when anything but the versions holds some: the parts add up to the whole
function partsText(f) {
  const rounds = (f.rounds ?? []).reduce((sum, r) => sum + r.bytes, 0);
  const parts = [["the trainer's rounds", rounds], ["mask backend comparisons", f.comparisons ?? 0],
    ["other", f.other >= 2 ** 19 ? f.other : 0]].filter(([, b]) => b > 0);
  if (!parts.length) return "";
  return ` (${[["versions", f.versions ?? 0], ...parts].map(([what, b]) => `${what} ${mb(b)}`).join(", ")})`;
}

async function showModels(id) {
  const p = await api("GET", `/api/projects/${id}`);
  const el = $("#models");
  if (el && projectShown(id)) el.innerHTML = modelsHtml(p);
}

const classesHtml = (p) => p.classes.map((c) => `<span class="swatch" style="background:${c.color}"></span> ${c.key ?? "-"} ${esc(c.name)} &nbsp;`).join("");

const LIVE = ["queued", "running", "paused", "stopping"];
const PAUSABLE = ["train", "trainer"];
const running = (j) => LIVE.includes(j.status);

// Pause, Resume or Stop on the project's job line (any job: POST /api/jobs/{id}/control)
async function controlJob(projectId, page, button) {
  button.disabled = true;
  await api("POST", `/api/jobs/${button.dataset.job}/control`, {action: button.dataset.action}).catch(() => null);
  refreshJobs(projectId, page);
}

// "about 4 min left (3-6 min; 120 steps left at 1.9 s a step, from the last 50)"
function etaText(j) {
  if (j.eta_seconds == null) return "";
  const range = j.eta_range ? ` (${seconds(j.eta_range[0])} to ${seconds(j.eta_range[1])}` : "";
  const from = j.eta_from ? `${range ? "; " : " ("}${j.eta_from})` : range ? ")" : "";
  return `about ${seconds(j.eta_seconds)} left${range}${from}`;
}

// the newest job of the page's two lines: the project's background trainer, or any other job
function newest(jobs, trainer) {
  const mine = jobs.filter((j) => (j.kind === "trainer") === trainer);
  return mine[mine.length - 1] ?? null;
}

// the background trainer's line: what it did last, and the buttons its state allows
function trainerText(t) {
  if (!t || !LIVE.includes(t.status)) {
    const last = t ? ` (last: ${t.status === "failed" ? "failed: " : ""}${t.message})` : "";
    return `Background trainer: off. It keeps the detector learning from the finished images while you work, on one core, and serves a new version only when it is better on held-out finished images (once they hold 75 objects on 12 images)${last}.`;
  }
  if (t.status === "paused") return `Background trainer paused: ${t.message}`;
  if (t.status === "stopping") return "Background trainer stopping";
  const share = t.status === "running" ? roundShare(t) : "";
  const eta = etaText(t);
  return `Background trainer: ${t.message || "starting"}${share}${eta ? ` · this round: ${eta}` : ""}`;
}

// how far the round is, in its steps when the job's pace counts them (the message's step
// count is of the rounds before)
function roundShare(t) {
  const [done, total] = t.step_counts ?? [];
  if (total) return ` · ${done} of ${total} steps of this round`;
  return t.progress > 0 ? ` · ${(100 * t.progress).toFixed(0)}% of this round` : "";
}

function showTrainer(t) {
  const live = !!t && LIVE.includes(t.status);
  const go = $("#trainer-go"), stop = $("#trainer-stop");
  if (!go) return;
  $("#trainer").textContent = trainerText(t);
  const [action, label] = !live ? ["start", "Keep training"] : t.status === "paused" ? ["resume", "Resume"] : ["pause", "Pause"];
  go.dataset.action = action;
  go.textContent = label;
  go.disabled = live && (t.status === "stopping" || t.status === "queued");
  stop.hidden = !live;
  stop.disabled = t?.status === "stopping";
}

// "training detect v3 on 5 images · 40% · about 35 s left"; a failure's first line only
function jobText(j) {
  const what = {compare: "comparison", queue: "review queue", predict: "pre-annotation"}[j.kind] ?? "training";
  const by = j.trigger === "auto" ? " (started by itself)" : "";
  if (j.status === "queued") return `${what} queued${by}`;
  if (j.status === "failed") return `${what} failed: ${j.message}`;
  if (j.status === "done") return j.message;
  if (j.status === "paused") return `${what} paused: ${j.message}`;
  if (j.status === "stopping") return `${what} stopping`;
  const parts = [j.message || what, `${(100 * j.progress).toFixed(0)}%`];
  if (j.eta_seconds != null) parts.push(etaText(j));
  return parts.join(" · ") + by;
}

// the job line's buttons: Pause or Resume, and Stop, while the job is live
function showJobButtons(j) {
  const go = $("#job-go"), stop = $("#job-stop");
  if (!go) return;
  const live = !!j && running(j);
  go.hidden = stop.hidden = !live;
  if (!live) return;
  go.hidden = !PAUSABLE.includes(j.kind);  // a pause waits at a training step: only training has them
  go.dataset.job = stop.dataset.job = String(j.id);
  [go.dataset.action, go.textContent] = j.status === "paused" ? ["resume", "Resume"] : ["pause", "Pause"];
  stop.dataset.action = "stop";
  go.disabled = j.status === "stopping" || j.status === "queued";
  stop.disabled = j.status === "stopping";
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
  if (el.dataset.busy === "1" && !busy) {
    showModels(projectId); showBackends(projectId);
    if (job.kind === "predict") { projectPage(projectId); return; }  // the images gained boxes
  }
  el.dataset.busy = busy ? "1" : "";
  el.textContent = job ? jobText(job) : "";
  el.className = job ? job.status : "";
  showJobButtons(job);
  $("#train").disabled = busy;
  $("#preannotate").disabled = busy;
  clearTimeout(jobTimer);
  jobTimer = setTimeout(() => refreshJobs(projectId, page), busy ? 1000 : 3000);
}

async function refreshJobs(projectId, page) {
  const jobs = await api("GET", `/api/projects/${projectId}/jobs`).catch(() => null);
  if (jobs && page === visit && $("#trainer")) {
    const before = $("#trainer").textContent;
    showTrainer(newest(jobs, true));
    if ($("#trainer").textContent !== before) showModels(projectId);  // a round may have promoted a version
  }
  if (jobs) followJobs(projectId, page, newest(jobs, false));
  else if (page === visit) jobTimer = setTimeout(() => refreshJobs(projectId, page), 3000);
}
