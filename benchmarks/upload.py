"""Images uploaded through the project page (issue 53): ``fewclick serve`` in a child
process, an empty project made by the API, then Chromium drops every file on the page's
file picker, which sends them one request a file. The server's memory is read from /proc
while it goes (the resident set of the server and every process under it, summed, every
0.2 s; and the server's own high-water mark at the end); then every image must be in the
project.

The files are the first ``--images`` images of ``--from`` (a folder, searched recursively),
or, without it, PNGs of noise of about ``--mb`` MB each, made in ``--work`` (incompressible,
so that the bytes sent are the size asked for).

    python benchmarks/upload.py --images 200 --mb 5 --work /tmp/upload --out docs/benchmarks/upload.json

JSON: ``images``, ``bytes``, ``added``, ``in_project`` (images the project lists after),
``seconds``, ``server_rss_before_mb`` (the server before the first file),
``server_peak_rss_mb`` (its highest sample), ``peak_rss_mb`` (the highest sample of the
server and the processes under it, summed), ``server_hwm_mb`` (the server process's
VmHWM), ``per_file`` (name, status), ``date``, ``machine``, ``load_average_start`` and
``load_average_end``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _browser import chromium_page, log_in  # noqa: E402
from _common import load_average, run_record, write_report  # noqa: E402
from _server import ServerProcess, descendants, stop_on_signals  # noqa: E402

from fewclick.io.images import IMAGE_SUFFIXES  # noqa: E402

USER, PASSWORD = "uploader", "a long upload password"


def _noise(folder: Path, n: int, mb: float) -> list[Path]:
    """``n`` PNGs of noise of about ``mb`` MB each (made once, kept in ``folder``)."""
    side = int((mb * 2**20 / 3) ** 0.5)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"noise_{i:04d}.png"
        if not path.is_file():
            PILImage.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)).save(path, compress_level=1)
        paths.append(path)
    return paths


def _kb(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(text.split(f"{field}:")[1].split()[0]) if f"{field}:" in text else 0


class _Memory:
    """The resident set of ``pid`` alone and summed with its descendants' (the model worker,
    jobs), each one's highest sample, until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self.own_kb, self.done = pid, 0, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            pids = {self.pid, *descendants(self.pid)}
            own = _kb(self.pid, "VmRSS")
            self.own_kb = max(self.own_kb, own)
            self.peak_kb = max(self.peak_kb, own + sum(_kb(p, "VmRSS") for p in pids - {self.pid}))
            self.done.wait(0.2)

    def stop(self) -> tuple[float, float]:
        """The peaks in MB: the server alone, and with the processes under it."""
        self.done.set()
        self.thread.join()
        return self.own_kb / 1024, self.peak_kb / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, help="a folder of images (else noise PNGs)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--mb", type=float, default=5.0, help="each noise PNG's size")
    parser.add_argument("--work", type=Path, required=True, help="the app's data and the noise PNGs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.source is not None:
        files = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[: args.images]
        if not files:
            raise SystemExit(f"{args.source}: no images ({', '.join(IMAGE_SUFFIXES)})")
    else:
        files = _noise(args.work / "noise", args.images, args.mb)
    report = run_record("load_average_start")
    with stop_on_signals():
        server = ServerProcess(args.work / "app")
        server.start()
        try:
            report.update(_upload(server, files))
        finally:
            server.stop()
    report["load_average_end"] = load_average()
    write_report(report, args.out)
    print({k: v for k, v in report.items() if k != "per_file"})
    return 0 if report["in_project"] == len(files) else 1


def _upload(server: ServerProcess, files: list[Path]) -> dict:
    import httpx

    api = httpx.Client(base_url=server.base, headers=server.add_user(USER, "admin", PASSWORD), timeout=60)
    body = {"name": "uploads", "classes": ["object"]}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    before = _kb(server.process.pid, "VmRSS") / 1024
    memory = _Memory(server.process.pid)
    with chromium_page() as page:
        log_in(page, server.base, USER, PASSWORD)
        page.goto(f"{server.base}/#/project/{project['id']}")
        page.wait_for_selector("#upload-files", state="attached")
        started = time.perf_counter()
        page.set_input_files("#upload-files", [str(f) for f in files])
        n = len(files)
        answered = f"() => document.querySelectorAll('#uploads li[class]').length === {n}"
        page.wait_for_function(answered, timeout=3_600_000, polling=500)
        seconds = time.perf_counter() - started
        rows = page.eval_on_selector_all("#uploads li", "(li) => li.map((x) => [x.className, x.innerText])")
        errors = list(page.errors)
    own, peak = memory.stop()
    listed = api.get(f"/api/projects/{project['id']}/images").raise_for_status().json()
    return {
        "images": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "added": sum(c == "added" for c, _ in rows),
        "in_project": len(listed),
        "seconds": round(seconds, 1),
        "server_rss_before_mb": round(before, 1),
        "server_peak_rss_mb": round(own, 1),
        "peak_rss_mb": round(peak, 1),
        "server_hwm_mb": round(_kb(server.process.pid, "VmHWM") / 1024, 1),
        "page_errors": errors,
        "per_file": [{"name": f.name, "status": c, "said": text} for f, (c, text) in zip(files, rows)],
    }


if __name__ == "__main__":
    raise SystemExit(main())
