"""Per click in the app, with the background trainer running beside it (issue 32's "per
click once the image is encoded: p95 at most 150 ms with the trainer running beside it").

    python benchmarks/click_latency.py --data ../shared/data/hit_uav --work DIR --out F.json
        [--finished 10] [--images 8] [--clicks 10]

Runs ``fewclick serve`` (SQLite in ``--work``), makes a project of ``--data`` with its
annotations as hidden reference, finishes the first ``--finished`` images of the training
part (every 4th image by name is test, as in ``campaign.py``) with their reference boxes,
starting the background trainer after the 2nd, and waits until a round trained on all of
them and a trained detector serves. Then, with the trainer still training, it goes through
the first ``--images`` test images holding objects as the page does: the image is prepared
until its embedding is ready (``prepare_ms``), the proposals on open are asked for
(``open_ms``; no click), then up to ``--clicks`` clicks, each at the centre of the next
object by size with its class, each a detect request with every click so far, timed from
request to answer (``clicks``). Writes F.json: every click's milliseconds, p50 / p95 over
all clicks, over the first click of each image and over the later ones, the machine's load
average before and after, and the detector that served.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from _common import load_average, part_names, run_record, write_report
from _walk import finish, prepared, project_truth, reference_project, wait_for_round, with_server

USER, PASSWORD = "clicker", "a click beside the trainer"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    report = with_server(args.work / "app", args.data, lambda server: _measure(server, args))
    write_report(report, args.out)
    print(json.dumps(report["summary"], indent=1))
    return 0


def _measure(server, args) -> dict:
    api, project = reference_project(server, args.data, f"{args.data.name} clicks", (USER, PASSWORD))
    pid = project["id"]
    truth, images, cls = project_truth(api, project, args.data)

    def with_objects(part: str) -> list[dict]:
        return [images[n] for n in part_names(list(truth), part) if n in images and len(truth[n])]

    train, test = with_objects("train")[: args.finished], with_objects("test")[: args.images]
    if len(train) < args.finished or not test:
        raise SystemExit(f"{args.data}: too few images with objects for --finished {args.finished}")
    for n, image in enumerate(train, start=1):
        finish(api, image, truth[image["file_name"]], cls)
        if n == 2:
            api.post(f"/api/projects/{pid}/trainer", json={"action": "start"}).raise_for_status()
    round_ = wait_for_round(server.data, pid, args.finished, args.timeout)
    detector = api.get(f"/api/projects/{pid}").json()["detector"]
    if round_ is None or detector is None or detector["method"] == "training-free":
        raise SystemExit(f"no trained detector serves after {args.finished} finished images: {detector}")
    load_before, rows = load_average(), []
    for image in test:
        rows.append(_image(api, image, truth[image["file_name"]], cls, args.clicks))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "clicks_ms"}), flush=True)
    trainer = api.get(f"/api/projects/{pid}").json().get("trainer")
    return {
        "data": str(args.data),
        "finished": args.finished,
        **run_record(cores=os.cpu_count()),
        "detector": {k: detector.get(k) for k in ("version", "method")},
        "trainer_round": round_,
        "trainer_after": trainer,
        "load_average": {"before": load_before, "after": load_average()},
        "per_image": rows,
        "summary": _summary(rows),
    }


def _image(api: httpx.Client, image: dict, gt, cls: dict, most: int) -> dict:
    prepare_s = prepared(api, image)
    url = f"/api/images/{image['id']}/detect"
    started = time.perf_counter()
    opened = api.post(url, json={"clicks": []}).raise_for_status().json()
    open_ms = (time.perf_counter() - started) * 1000
    keep = np.flatnonzero(~np.asarray(gt.ignore, bool))
    area = (gt.boxes[keep, 2] - gt.boxes[keep, 0]) * (gt.boxes[keep, 3] - gt.boxes[keep, 1])
    clicks, times = [], []
    for j in keep[np.argsort(-area)][:most]:
        x0, y0, x1, y1 = gt.boxes[j].tolist()
        clicks.append([(x0 + x1) / 2, (y0 + y1) / 2, cls[int(gt.labels[j])]])
        time.sleep(0.3)  # a person's pause between clicks: the worker's follow-up work may run
        started = time.perf_counter()
        api.post(url, json={"clicks": clicks}).raise_for_status()
        times.append(round((time.perf_counter() - started) * 1000, 1))
    return {
        "image": image["file_name"],
        "objects": int(len(keep)),
        "prepare_ms": round(prepare_s * 1000, 1),
        "open_ms": round(open_ms, 1),
        "proposals_on_open": len(opened["boxes"]),
        "clicks_ms": times,
    }


def _summary(rows: list[dict]) -> dict:
    def stats(values: list[float]) -> dict:
        if not values:
            return {"n": 0, "p50": None, "p95": None, "max": None}
        v = np.asarray(values)
        return {"n": len(v), "p50": round(float(np.percentile(v, 50)), 1),
                "p95": round(float(np.percentile(v, 95)), 1), "max": round(float(v.max()), 1)}  # fmt: skip

    every = [ms for r in rows for ms in r["clicks_ms"]]
    return {
        "clicks": stats(every),
        "first_clicks": stats([r["clicks_ms"][0] for r in rows if r["clicks_ms"]]),
        "later_clicks": stats([ms for r in rows for ms in r["clicks_ms"][1:]]),
        "open": stats([r["open_ms"] for r in rows]),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--work", required=True, type=Path, help="the app's folder (database, models, embeddings)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--finished", type=int, default=10, help="training images finished before measuring")
    p.add_argument("--images", type=int, default=8, help="test images clicked")
    p.add_argument("--clicks", type=int, default=10, help="clicks on each test image, at most")
    p.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the trainer's round")
    return p


if __name__ == "__main__":
    sys.exit(main())
