"""What the soak test (``benchmarks/soak.py``) records while it runs, and the page and plot it
makes of a run: every answer's time and status (:class:`RequestLog`), every acknowledged save
(:class:`Ledger`, checked against the app at the end), every detect answer and the model
that gave it (:class:`ModelAnswers`), the processes seen (:func:`start_tick`) and the server
log's errors. No HTTP here: the soak's client feeds these from its answers."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

LIVE = ("queued", "running", "paused", "stopping")  # a job with (or about to have) a process
#: the annotation writes and status moves a page makes, by method and path
BATCH = re.compile(r"/api/images/(\d+)/annotations/batch$")
CREATE = re.compile(r"/api/images/(\d+)/annotations$")
ANNOTATION = re.compile(r"/api/annotations/(\d+)$")
IMAGE = re.compile(r"/api/images/(\d+)$")
DETECT = re.compile(r"/api/images/(\d+)/detect$")


def endpoint(method: str, url) -> str:
    """``POST /api/images/{id}/detect``: the method and the path, ids replaced."""
    path = re.sub(r"/\d+", "/{id}", str(url).split("?")[0])
    return f"{method} {path}"


def say(text: str) -> None:
    """A progress line on stderr, with the time."""
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def start_tick(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the pid, it names one process
    (a pid is used again once its process has gone). None once it has gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def command_line(pid: int) -> str:
    """The command ``pid`` runs (its first 200 characters; empty once it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return ""


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


class RequestLog:
    """Every answer (seconds into the run, endpoint, status, ms), every request that found no
    server and waited for it, and every request that got no answer at all, from every thread."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.lock = threading.Lock()
        self.answers: list[tuple[float, str, int, float]] = []
        self.waits: list[tuple[float, str, float]] = []  # (began waiting, endpoint, seconds)
        self.failures: list[tuple[float, str, str]] = []  # (at, endpoint, what)
        self.server_errors: list[dict] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def answer(self, where: str, status: int, ms: float, text: str = "") -> None:
        with self.lock:
            at = self.elapsed()
            self.answers.append((at, where, status, ms))
            if status >= 500:
                self.server_errors.append(
                    {"at": round(at, 1), "endpoint": where, "status": status, "body": text[:300]}
                )

    def waited(self, where: str, seconds: float) -> None:
        with self.lock:
            self.waits.append((self.elapsed() - seconds, where, seconds))

    def failed(self, where: str, what: str) -> None:
        with self.lock:
            self.failures.append((self.elapsed(), where, what))

    def errors_between(self, start: float, end: float) -> int:
        """Answers >= 500 from ``start`` to ``end`` seconds into the run."""
        with self.lock:
            return sum(start <= e["at"] <= end for e in self.server_errors)


def per_minute(log: RequestLog) -> list[dict]:
    """Per minute of the run: answers, answers >= 500 and 4xx, requests that waited for the
    server (by when they began waiting), requests with no answer, and the latency
    percentiles of all answers and of the detect answers."""
    with log.lock:
        answers, waits, failures = list(log.answers), list(log.waits), list(log.failures)
    end = max([a[0] for a in answers] + [w[0] for w in waits] + [0.0])
    rows = []
    for minute in range(int(end // 60) + 1):
        inside = [a for a in answers if minute * 60 <= a[0] < (minute + 1) * 60]
        ms = [a[3] for a in inside]
        detect = [a[3] for a in inside if a[1] == "POST /api/images/{id}/detect"]
        rows.append(
            {
                "minute": minute,
                "requests": len(inside),
                "server_errors": sum(a[2] >= 500 for a in inside),
                "client_errors": sum(400 <= a[2] < 500 for a in inside),
                "waited_for_server": sum(minute * 60 <= w[0] < (minute + 1) * 60 for w in waits),
                "no_answer": sum(minute * 60 <= f[0] < (minute + 1) * 60 for f in failures),
                "p50_ms": _ms(ms, 50),
                "p95_ms": _ms(ms, 95),
                "p99_ms": _ms(ms, 99),
                "detect_p95_ms": _ms(detect, 95),
            }
        )
    return rows


def by_endpoint(log: RequestLog) -> dict[str, dict]:
    """Per endpoint: answers, p50 and p95 ms, answers >= 500."""
    with log.lock:
        answers = list(log.answers)
    out = {}
    for where in sorted({a[1] for a in answers}):
        mine = [a for a in answers if a[1] == where]
        ms = [a[3] for a in mine]
        out[where] = {
            "count": len(mine),
            "p50_ms": _ms(ms, 50),
            "p95_ms": _ms(ms, 95),
            "server_errors": sum(a[2] >= 500 for a in mine),
        }
    return out


class Ledger:
    """Every annotation write and status move the app acknowledged (a 2xx), as the app
    answered it: per annotation its image, geometry and class, or that it was deleted; per
    image its status. :meth:`check` compares it with what the app holds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.annotations: dict[int, dict] = {}
        self.status: dict[int, str] = {}
        self.writes = 0

    def saved(self, method: str, path: str, answer: dict) -> None:
        """Record an acknowledged answer to ``method path`` (other requests are ignored)."""
        with self.lock:
            if method == "POST" and BATCH.search(path):
                for gone in answer["deleted"]:  # in the server's order: deletes, then creates
                    self._delete(gone)
                for a in answer["created"]:
                    self._put(a)
            elif method == "POST" and CREATE.search(path):
                self._put(answer["annotation"])
            elif method == "PATCH" and ANNOTATION.search(path):
                self._put(answer["annotation"])
            elif method == "DELETE" and ANNOTATION.search(path):
                self._delete(answer["deleted"])
            elif method == "PATCH" and (m := IMAGE.search(path)) and "status" in answer:
                self.status[int(m.group(1))] = answer["status"]
            else:
                return
            self.writes += 1

    def _put(self, a: dict) -> None:
        self.annotations[a["id"]] = {
            "image": a["image_id"],
            "geometry": a["geometry"],
            "class_id": a["class_id"],
            "deleted": False,
        }

    def _delete(self, annotation_id: int) -> None:
        known = self.annotations.get(annotation_id, {"image": None})
        self.annotations[annotation_id] = {**known, "deleted": True}

    def done_images(self) -> list[int]:
        with self.lock:
            return sorted(i for i, s in self.status.items() if s in ("done", "reviewed"))

    def images(self) -> set[int]:
        with self.lock:
            return {a["image"] for a in self.annotations.values() if a["image"] is not None} | set(
                self.status
            )

    def check(self, get_image) -> dict:
        """``get_image(image_id)`` -> the app's image (``GET /api/images/{id}``) for every
        image the ledger names: ``lost``, acknowledged saves it does not hold (an annotation
        missing or other than acknowledged, a deleted one still there, another status);
        ``unacknowledged``, annotations it holds that no answer acknowledged (a save whose
        answer was lost in a restart, then sent again); examples of each."""
        with self.lock:
            annotations, status = dict(self.annotations), dict(self.status)
        lost, extra, examples = 0, 0, []
        for image_id in sorted(self.images()):
            got = get_image(image_id)
            there = {a["id"]: a for a in got["annotations"]}
            mine = {k: v for k, v in annotations.items() if v["image"] == image_id}
            for k, want in mine.items():
                wrong = _differs(want, there.get(k))
                if wrong:
                    lost += 1
                    examples.append(f"image {image_id}, annotation {k}: {wrong}")
            if image_id in status and got["status"] != status[image_id]:
                lost += 1
                examples.append(f"image {image_id}: status {got['status']}, acknowledged {status[image_id]}")
            extra += len(there.keys() - mine.keys())
        return {"lost": lost, "unacknowledged": extra, "writes": self.writes, "examples": examples[:10]}


def _differs(want: dict, there: dict | None) -> str | None:
    """How an acknowledged annotation differs from the app's (None: it does not)."""
    if want["deleted"]:
        return "deleted, still there" if there is not None else None
    if there is None:
        return "missing"
    if there["geometry"] != want["geometry"] or there["class_id"] != want["class_id"]:
        return f"holds {there['geometry']} class {there['class_id']}, acknowledged {want['geometry']}"
    return None


class ModelAnswers:
    """The detect answers and which model gave them: ``model_version`` (the version that
    answered, None: the training-free start), ``requested_version`` (the one the server meant
    to serve), ``fallback`` (None, or why another answered) and ``model_file`` (the file the
    worker loaded, relative to ``<data>/models/<project>/``). Answers without these fields
    (an app before issue 51) are counted apart, as unverified."""

    FIELDS = ("model_version", "requested_version", "fallback", "model_file")

    def __init__(self, image_project: dict[int, int]) -> None:
        self.image_project = image_project
        self.lock = threading.Lock()
        self.rows: list[dict] = []

    def add(self, image_id: int, answer: dict, at: float) -> None:
        row = {"at": round(at, 1), "image": image_id, "project": self.image_project.get(image_id)}
        row.update({k: answer[k] for k in self.FIELDS if k in answer})
        with self.lock:
            self.rows.append(row)

    def check(self, files: dict[int, dict[int, str]]) -> dict:
        """Each answer against ``files`` (project -> version -> its file, as the project
        detail listed them): ``wrong`` when the file loaded is not the version's, or with no
        fallback the version is not the one requested; ``unverified`` when the answer lacks
        the fields or the version's file was never listed."""
        with self.lock:
            rows = list(self.rows)
        verdicts = [(row, _verdict(row, files.get(row["project"], {}))) for row in rows]
        fallbacks = Counter(row["fallback"] for row in rows if row.get("fallback"))
        return {
            "answers": len(rows),
            "verified": sum(v == "right" for _, v in verdicts),
            "wrong": sum(v.startswith("wrong") for _, v in verdicts),
            "unverified": sum(v.startswith("unverified") for _, v in verdicts),
            "unverified_why": dict(Counter(v for _, v in verdicts if v.startswith("unverified"))),
            "fallbacks": dict(fallbacks.most_common(10)),
            "by_version": dict(Counter(str(row.get("model_version")) for row in rows)),
            "examples": [{**row, "verdict": v} for row, v in verdicts if v.startswith("wrong")][:10],
        }


def _verdict(row: dict, files: dict[int, str]) -> str:
    if any(k not in row for k in ModelAnswers.FIELDS):
        return "unverified: the answer names no model_file / requested_version"
    version, loaded = row["model_version"], row["model_file"]
    if row["fallback"] is None and version != row["requested_version"]:
        return f"wrong: version {version} answered, {row['requested_version']} requested, no fallback"
    if version is None:
        return "right" if loaded is None else f"wrong: the training-free start named file {loaded}"
    if version not in files:
        return "unverified: the version's file was never listed"
    if files[version] != loaded:
        return f"wrong: version {version} is {files[version]}, the worker loaded {loaded}"
    return "right"


EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b")


def log_errors(log: Path, limit: int = 30) -> list[dict]:
    """The server log's exception lines and its ERROR and WARNING lines, each distinct text
    once with its count, the commonest first."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = Counter(
        line.strip()[:400]
        for line in lines
        if EXCEPTION_LINE.match(line) or " ERROR " in line or "WARNING" in line or line.startswith("ERROR")
    )
    return [{"line": text, "count": n} for text, n in found.most_common(limit)]


def plot(report: dict, path: Path) -> None:
    """Requests, answers >= 500 and requests that waited for the server per minute (top), and
    the latency p50 / p95 (bottom), the faults marked by kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["per_minute"]
    x = np.array([r["minute"] + 0.5 for r in rows])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.bar(x, [r["requests"] for r in rows], width=0.9, color="#c8d6e5", label="answers")
    top.bar(
        x, [r["waited_for_server"] for r in rows], width=0.6, color="#f0a030", label="waited for the server"
    )
    top.bar(x, [r["server_errors"] for r in rows], width=0.4, color="#d62728", label="answers >= 500")
    top.set_ylabel("per minute")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("detect_p95_ms", "^:")):
        ys = [np.nan if r[key] is None else r[key] for r in rows]
        bottom.plot(x, ys, style, label=key.replace("_ms", "").replace("_", " "))
    bottom.set_yscale("log")
    bottom.set_ylabel("latency, ms")
    bottom.set_xlabel("minute of the run")
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _mark_faults((top, bottom), report["faults"])
    for ax in (top, bottom):  # after it, only the soak's checks and counts
        ax.axvline(report["minutes"], color="k", ls="--", lw=1)
    top.annotate(
        "annotators stop", (report["minutes"], 1), xycoords=("data", "axes fraction"), fontsize=7, va="top"
    )
    fig.suptitle(f"soak, {report['database']}, {report['minutes']} min, seed {report['seed']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mark_faults(axes, faults: list[dict]) -> None:
    colors = {"survived": "#2ca02c", "not survived": "#d62728"}
    for f in faults:
        if f["injected_at"] is None:
            continue
        start = f["injected_at"] / 60
        color = colors["survived" if f["survived"] else "not survived"]
        for ax in axes:
            if f.get("ended_at"):
                ax.axvspan(start, f["ended_at"] / 60, color=color, alpha=0.12)
            ax.axvline(start, color=color, lw=1)
        axes[0].annotate(
            f["kind"], (start, 1), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, va="top"
        )


def page(report: dict, png: str) -> str:
    """The run's page: where and when, the totals, the faults, the minutes, the errors."""
    t = report["totals"]
    projects = ", ".join(f"{p['name']} ({p['images']} images)" for p in report["projects"])
    lines = [
        f"# Soak: {report['database']}, {report['minutes']} minutes, seed {report['seed']}",
        "",
        "Generated by `benchmarks/soak.py` (what it measures and how: its docstring).",
        "",
        f"- `{report['command']}`",
        f"- run {report['date']} on {report['machine']}; load average {report['load_average_start']} "
        f"at the start, {report['load_average_end']} at the end",
        f"- projects: {projects}; "
        f"{report['annotators']} annotators at a person's pace; {report['images_done']} images finished",
        f"- server down for {report['downtime_seconds']} s in all; requests waited "
        f"{report['waited_for_server_seconds']} s for it in all",
        "",
        "| faults injected | survived | answers >= 500 | lost saves | stuck jobs | orphan processes | "
        "wrong model answers |",
        "|---|---|---|---|---|---|---|",
        f"| {t['faults_injected']} | {t['faults_survived']} | {t['server_errors']} | {t['lost_saves']} | "
        f"{t['stuck_jobs']} | {t['orphan_processes']} | {t['wrong_model_answers']} |",
        "",
        f"Detect answers: {report['model_answers']['answers']}, of which "
        f"{report['model_answers']['unverified']} could not be checked (the answer named no model file, "
        "or the version's file was never listed).",
        "",
        f"![requests, errors and latency per minute]({png})",
        "",
        "## Faults",
        "",
        "| minute | kind | project | survived | 5xx after | what |",
        "|---|---|---|---|---|---|",
        *[_fault_row(f) for f in report["faults"]],
        "",
        "## Per minute",
        "",
        "| minute | answers | >= 500 | 4xx | waited for server | no answer | p50 ms | p95 ms | "
        "detect p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
        *[_minute_row(r) for r in report["per_minute"]],
        "",
        "## Server log: errors and warnings",
        "",
        *([f"- {e['count']} x `{e['line']}`" for e in report["server_log"]] or ["- none"]),
        "",
    ]
    return "\n".join(lines)


def _fault_row(f: dict) -> str:
    at = "not injected" if f["injected_at"] is None else f"{f['injected_at'] / 60:.1f}"
    survived = {True: "yes", False: "**no**", None: "-"}[f["survived"]]
    what = "; ".join(f"{k}: {v}" for k, v in f["detail"].items() if k != "check")
    check = f["detail"].get("check", {})
    if check:
        what += f" (check: {check})"
    if f["skipped"]:
        what = f"skipped: {f['skipped']}"
    return f"| {at} | {f['kind']} | {f['project']} | {survived} | {f['errors_after']} | {what} |"


def _minute_row(r: dict) -> str:
    cells = ("minute", "requests", "server_errors", "client_errors", "waited_for_server", "no_answer")
    cells += ("p50_ms", "p95_ms", "detect_p95_ms")
    return "| " + " | ".join(str(r[c]) for c in cells) + " |"
