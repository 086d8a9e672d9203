"""An annotation campaign simulated through the real app: interactions and seconds to
manual quality, against drawing by hand and against pre-annotation without clicks.

    python benchmarks/campaign.py --data D --mode detect --out F.json [--retrain-every 2]
        [--images N] [--work DIR]

Starts ``fewclick serve`` (SQLite in ``--work``), adds a user and a bearer token with the CLI
(``fewclick users add``, ``fewclick token create``), and from then on goes through the HTTP
API only: it makes a project of D's images with D's annotations imported as reference
(hidden from the annotator), sets the app to start training by itself after
``--retrain-every`` finished images (its background trainer for the detector; a job for the
mask models after every that many), and has the simulated annotator
(:mod:`fewclick.simulate.annotator`, which knows D's ground truth as a person knows by eye)
go through the images in order, ending each at manual quality:

1. once a trained detector serves, the image opens with its proposals, no click needed, as
   the page shows them (the wait for them is counted in the image's seconds; the number is
   ``proposals_on_open``); before that, once an image is finished, with SAM's proposals
   like its objects, when the app has made them (it makes the next image's while the
   person works: the campaign lets it go on, uncounted, for as long as the cost model says
   the last image took, and opens the image then, made or not); then click the centre of
   the largest missed object, with its class, while the clicks still lower the number of
   missed objects (at most 20), each click asking the detector again with every click so
   far. The person remembers what their clicks saved
   (``fewclick.simulate.annotator.ClickMemory``: the seconds of work left before a click,
   less those after it and the click, as they saw them; per image ``click_gains``): a
   class whose last clicks saved nothing on average is drawn instead, and clicked again
   after 3 images without a click of it;
2. set the proposal slider where the fewest fixes remain (it starts at the served
   detector's suggested score; moving it is one interaction), and Enter: accept the
   proposals shown (or none: then no Enter; nor when none needs a fix: what is missing is
   drawn beside them, a drag in detect mode, and the page's submit keeps them);
3. delete false positives, draw near boxes right over them (the drawn box takes the
   proposal's place, no Enter needed for it), set wrong classes, and draw what is still
   missing, a drag each and a class key when the class changes;
4. mark the image done.

Mask mode (``--mode mask``): the image opens with SAM's proposals like the finished
images' objects, each with its mask (``POST /mask_proposals``, made while the last image was
worked on; ``--proposals off`` leaves them, for comparison): every one shown is looked at
(1.6 s), and those that are an object's mask (IoU >= 0.85, its class) are saved the cheaper
way, a click on each (then Esc hides the rest) or Enter on all once the others are rejected
(a right-click each); ``proposals_shown`` and ``proposals_accepted`` per image. Each
required object left, grouped by class, gets its mask
started (``POST /segment``, below); Tab to SAM's candidate mask closest to the object when
one is more than 0.02 of IoU better than the mask served; then RITM's corrective clicks (the
error pixel farthest from the error's boundary) until its mask IoU is >= 0.85, 20 clicks,
or the clicks stop paying (``--stop iou``, the rule before issue 54: two clicks in a row
that each gained under 0.01 of IoU; ``--stop seconds``, also two that each saved less than
a click's seconds in what finishing the mask with the brush or its outline would cost); and
Enter. A mask starts from a click in the object's middle (``--start click``: the point
farthest from its edge, which alone prompts SAM; Tab to its candidate closest to the object;
a box is dragged instead when that is under IoU 0.5), from its box dragged tight (``--start
box``), or (``auto``, the default) with a click while the class's click starts have given
the object (IoU >= 0.85) at least half of the time, as the person saw it. An object
that is not there then is finished the cheapest way the cost model prices
(``simulate.outline.cheapest_finish``): with the brush and eraser (``simulate.brush``:
strokes sent to ``/segment``, keys to pick the tool and size); or with the mask's outline
(``/outline`` makes it, ``simulate.outline.plan_edits`` drags, deletes and redraws its
wrong stretches; counted in ``edits``, its fixes in ``edit_actions``); or outlined as a new
polygon, as in the page's polygon mode (its vertices at 1 px along the object's edge, then
Enter; the server fills the outline; counted in ``polygons``). The baseline outlines every
object as a polygon the same way; its seconds are also given at COCO's measured 79.2 s an
object (``seconds_coco_polygon``), and ours with our polygons at that price. Per image,
``mask_backends`` counts the backend that answered each object's box: the tuned decoder
(``sam_tuned``) once a training job the app started by itself (``--retrain-every``) has
tuned it, kept it, and the project's comparison picked it.

Every interaction is posted to the app's interaction log with its cost-model seconds (and,
for a click, the measured wait for its boxes), as the page would; a training job the app
starts by itself runs beside the annotator and is not waited for: the simulated person works
faster than a person, so after each image it lets a running job go on for as long as a
person would have spent on the image (its cost-model seconds), uncounted, as a person's
work would have overlapped it. On the same images, as
the detector stood when each was annotated, two baselines are priced without being
carried out: drawing every object by hand, and the served detector's proposals without
clicks (Enter, then the same fixes).

``--annotators N`` runs N such people at once, each a user of its own (added with the CLI)
taking every N-th image; it doubles as a load test. Every request is timed per endpoint
(``load.p95_ms``); a 5xx, a timeout or a refused request is an error (``load.errors``); a
409 is not (the annotator reloads the image and does it again). At the end every
acknowledged annotation must be in its image and in the COCO export, and nothing deleted
may be (``load.lost_writes``). Writes F.json (keys: ``totals``, ``per_image``,
``baselines``, ``cost_model``, ``latency_ms``, ``analytics``; ``windows``, the ratios to
drawing by hand per block of 8 images; in detect mode, per image ``served_by``: for each
class, the source it opened with, ``look-alikes``, ``learner``, ``none`` or ``trainer vN``,
with that source's seconds saved an image so far on the images it never saw;
``learner_fit_s``, the fast learner's refits: ``p50``/``p95``/``count`` of those the app's
answers made, and per version the trainer's) and F.png (interactions per image against
image index, for every method).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import _campaign_resume as resume
import httpx
import numpy as np
from _campaign_served import learner_fits, mark_served, served_by, serving_now, windows
from _common import add_work, load_average, run_record, split_parts, write_report
from _server import ServerProcess, map_in_threads, stop_on_signals
from tqdm import tqdm

from fewclick.io import read_dataset
from fewclick.io.rle import mask_to_rle, polygons_to_mask, rle_to_mask, segmentation_to_mask
from fewclick.metrics.detection import box_iou
from fewclick.outline import fill_outline
from fewclick.predict.shown import page_floors, slider_value
from fewclick.protocols.segment import SIZE_EDGES, tab_to, tight_box
from fewclick.server.limits import MAX_EVENTS_PER_POST
from fewclick.simulate.annotator import (
    COCO_POLYGON_SECONDS,
    COST_SECONDS,
    COST_SOURCES,
    MASK_IOU,
    MAX_MASK_CLICKS,
    ClickMemory,
    Plan,
    at_manual_quality,
    clicks_stalled,
    edge_fit,
    finish,
    finish_cost,
    manual,
    manual_masks,
    mask_iou,
    missed,
    next_click,
    polygon_outlines,
    required,
    work_left,
)
from fewclick.simulate.brush import brush_keys, page_radius, stroke_seconds
from fewclick.simulate.corrective import ritm_next_click
from fewclick.simulate.outline import EDIT_SECONDS, cheapest_finish, clicks_not_paying, plan_edits
from fewclick.types import Clicks, Objects, geometry_only

MAX_CLICKS = 20
OUTLINE_EVENTS = {"remove": "outline_delete", "part": "outline_redraw"}  # outline.js's log
START_IOU = 0.5  # mask mode: a click's mask under this IoU found something else (a box instead)
PAGE_MIN_SCORE = 0.3  # the page's proposal slider before a detector suggests its own
NEAR_IOU = 0.5  # mask mode: a proposal this close to an object may be taken and its outline fixed
#: mask mode: the app's time, uncounted, let go on for proposals after an object (its
#: cost-model seconds, at most this: on a loaded machine a slow image's proposals would
#: otherwise hold the campaign at a person's pace, object after object)
MID_WAIT = 15.0
#: mask mode: what a person expects an object made anew to cost before they have made one
#: (a click start, a Tab, two corrective clicks and Enter)
FRESH_SECONDS = 2.55 + 1.63 + 2 * 2.55 + 1.63
#: mask mode: a small box's mask comes from the whole image while its zoom window is encoded;
#: the page asks again this many seconds later (mask.js's ZOOM_AGAIN_MS), within the mental
#: step (KLM's M, 1.35 s) the person takes before their next action: what outlasts it is waited
ZOOM_AGAIN, KLM_M = 1.0, 1.35
#: the background trainer's seconds per step on one core (its rounds' crops, ImageNet
#: EfficientNet-Lite0): ``--calibrate`` measures it; 1.24 was measured on hit_uav here
#: (2026-11-25, one other single-threaded job beside it)
TRAINER_SECONDS_PER_STEP = 1.24


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    if args.resume and (args.work is None or args.annotators != 1):
        parser.error("--resume needs --work (where the checkpoint is) and one annotator")
    if args.screenshot and Path(args.screenshot).resolve() == Path(args.out).with_suffix(".png").resolve():
        parser.error(f"--screenshot {args.screenshot} is where the plot of --out goes: name another PNG")
    data = read_dataset(args.data)
    if args.calibrate:
        print(json.dumps({"trainer_seconds_per_step": _calibrate(data)}))
        return 0
    if args.part != "all":  # the project holds every image; the annotator does this part's
        train_part, test_part = split_parts(data)
        data = test_part if args.part == "test" else train_part
    if args.mode == "mask":
        truth = {r.file_name: r for r in data.images}
    else:
        truth = {r.file_name: geometry_only(r.objects, oriented=False) for r in data.images}
    work = args.work or Path(tempfile.mkdtemp(prefix="fewclick-campaign-"))
    plain = resume.without_resume(list(map(str, argv)))
    checkpoint = resume.load(work, plain) if args.resume else None
    if checkpoint is None:  # a fresh app each run
        shutil.rmtree(work / "app", ignore_errors=True)
        (work / resume.CHECKPOINT).unlink(missing_ok=True)
        checkpoint = resume.Checkpoint(plain, {})
    server = ServerProcess(work / "app", data_roots=[Path(args.data).resolve().parent])
    server.start()
    try:
        report = _campaign(args, server, truth, data.classes, checkpoint, work)
        report["command"] = " ".join(["python benchmarks/campaign.py", *plain])
        write_report(report, args.out)
        plot(report, Path(args.out).with_suffix(".png"))
        if args.screenshot:
            _screenshot(server, report["project_id"], args.screenshot)
    except Failed as exc:
        raise SystemExit(f"the campaign stopped: {exc}") from None
    finally:
        server.stop()
    print(json.dumps(report["totals"], indent=1))
    return 0


def _campaign(
    args, server: ServerProcess, truth: dict[str, Objects], classes: list[str], checkpoint, work: Path
) -> dict:
    """The campaign's report; from the image after ``checkpoint``'s rows when it has any."""
    record = Recorder()
    fresh = not checkpoint.report
    headers = server.add_user("campaign", "admin") if fresh else server.token("campaign")
    api = TimedClient(record, base_url=server.base, headers=headers, timeout=900)
    if fresh:
        pid, class_id, images = _project(api, args, truth)
        checkpoint.report = {
            "data": str(args.data),
            "mode": args.mode,
            "project_id": pid,
            "images": len(images),
            "part": args.part,
            "retrain_every": args.retrain_every,
            "cost_model": {"seconds": COST_SECONDS, "sources": COST_SOURCES},
            **run_record("load_average_start"),
        }
    else:
        pid = checkpoint.report["project_id"]
        class_id, images = _project_images(api, args, truth, pid)
        checkpoint.mark_resumed()
        _clear(api, images[len(checkpoint.rows)] if len(checkpoint.rows) < len(images) else None)
    report = {**checkpoint.report, "per_image": []}
    position = {v: k for k, v in class_id.items()}
    people = [api] + [
        TimedClient(
            record, base_url=server.base, headers=server.add_user(f"annotator{k}", "admin"), timeout=900
        )
        for k in range(1, args.annotators)
    ]
    think = args.annotators > 1 if args.think is None else args.think
    report["think"] = think
    ways = (args.stop, args.start, args.proposals == "on", args.switch)
    annotators = [Annotator(client, pid, class_id, position, record, think, *ways) for client in people]
    report["stop"], report["start"], report["proposals"] = args.stop, args.start, args.proposals
    report["switch"] = args.switch
    if args.trainer:
        report["trainer_seconds_per_step"] = args.trainer_seconds_per_step
    report["per_image"] = _annotate_all(args, images, truth, annotators, people, pid, think, checkpoint, work)
    if checkpoint.resumed:
        report["resumed"] = checkpoint.resumed
    if args.mode == "detect":
        served_by(report["per_image"], classes, args.proposals == "on")
    report["windows"] = windows(report["per_image"])
    report["load_average_end"] = load_average()
    report["latency_ms"] = _percentiles([w for a in annotators for w in a.waits_ms])
    fits = [f for a in annotators for f in a.learner_fits]
    report["learner_fit_s"] = learner_fits(fits, report["per_image"])
    report["errors"] = record.errors
    if args.annotators > 1:
        report["load"] = {
            "annotators": args.annotators,
            "errors": record.errors,
            "conflicts": record.conflicts,
            "lost_writes": _lost_writes(api, pid, annotators),
            "p95_ms": record.p95(),
        }
    report["analytics"] = _analytics(api, pid, report["per_image"])
    report["totals"] = _totals(report["per_image"])
    report["baselines"] = {
        name: {
            "interactions": sum(r[name]["interactions"] for r in report["per_image"]),
            "seconds": round(sum(r[name]["seconds"] for r in report["per_image"]), 1),
        }
        for name in ("manual", "pre_annotation")
        if all(name in r for r in report["per_image"])
    }
    return report


def _project(api: TimedClient, args, truth: dict) -> tuple[int, dict[int, int], list[dict]]:
    """The project of ``--data`` (its annotations the hidden reference), training by itself
    every ``--retrain-every`` finished images; its id, class ids by position, and the
    images to annotate (those of ``truth``, by name, at most ``--images``)."""
    body = {"name": Path(args.data).name, "dataset": str(Path(args.data).resolve()), "reference": True}
    project = _ok(api.post("/api/projects", json=body))["project"]
    pid = project["id"]
    _ok(
        api.patch(
            f"/api/projects/{pid}", json={"auto_train_every": args.retrain_every, "queue_train_every": 0}
        )
    )
    return (pid, *_project_images(api, args, truth, pid, project))


def _project_images(
    api: TimedClient, args, truth: dict, pid: int, project: dict | None = None
) -> tuple[dict[int, int], list[dict]]:
    """Project ``pid``'s class ids by position, and the images to annotate: those of
    ``truth``, by name, at most ``--images``."""
    project = project or _ok(api.get(f"/api/projects/{pid}"))
    class_id = {c["position"]: c["id"] for c in project["classes"]}
    images = sorted(
        (im for im in _ok(api.get(f"/api/projects/{pid}/images")) if im["file_name"] in truth),
        key=lambda im: im["file_name"],
    )
    return class_id, images[: args.images] if args.images else images


def _clear(api: TimedClient, im: dict | None) -> None:
    """Delete what an image left half done by a stopped run holds, so that it is done anew."""
    if im is None:
        return
    held = _ok(api.get(f"/api/images/{im['id']}"))
    gone = [a["id"] for a in held["annotations"]]
    if gone:
        body = {"revision": held["revision"], "delete": gone, "create": []}
        _ok(api.post(f"/api/images/{im['id']}/annotations/batch", json=body))


def _annotate_all(
    args,
    images: list[dict],
    truth: dict,
    annotators: list,
    people: list,
    pid: int,
    think: bool,
    checkpoint: resume.Checkpoint,
    folder: Path,
) -> list[dict]:
    """Every image annotated, the annotators taking turns in threads of their own; the rows
    of every image, by name. One annotator goes on from ``checkpoint``'s rows, and leaves
    one in ``folder`` after each image (:mod:`_campaign_resume`)."""
    trainer = TrainerPace(pid, args.trainer_seconds_per_step, annotators[0].record if annotators else None)
    single = args.annotators == 1
    if single and checkpoint.rows:
        checkpoint.restore(annotators[0], trainer, annotators[0].record, folder / "app")
    first = list(checkpoint.rows) if single else []
    bar = tqdm(
        total=len(images), initial=len(first), desc=f"annotating ({args.annotators} at once)", unit="image"
    )

    def work(k: int) -> list[dict]:
        rows = first if k == 0 else []
        if think:  # people at a person's pace do not all start in the same second
            time.sleep(k * ARRIVALS_SECONDS / args.annotators)
        for im in images[k :: args.annotators][len(rows) :]:
            rows.append(annotators[k].annotate(im, truth[im["file_name"]], args.mode))
            if not think:  # a person's time was not taken: let the app's jobs have it
                _pace(people[k], pid, rows[-1]["seconds"])
            if args.trainer:
                rows[-1].update(trainer.after_image(people[k], rows[-1]["seconds"]))
            if single:
                checkpoint.rows = rows
                checkpoint.keep(annotators[0], trainer, annotators[0].record)
                checkpoint.save(folder)
            bar.update()
        return rows

    done = map_in_threads(work, range(args.annotators), args.annotators)  # a signal waits for none
    bar.close()
    for a in annotators:
        a.preparing.shutdown(wait=True)
    return sorted((r for rows in done for r in rows), key=lambda r: r["file_name"])


ARRIVALS_SECONDS = 60.0  # with --think, the annotators start spread over this long


class Failed(Exception):
    """A request the app refused or did not answer (``status`` None: no answer)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class Recorder:
    """Every request's time per endpoint, the errors and the 409s, from every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.conflicts = 0

    def add(self, endpoint: str, ms: float) -> None:
        with self.lock:
            self.times[endpoint].append(ms)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def conflict(self) -> None:
        with self.lock:
            self.conflicts += 1

    def p95(self) -> dict[str, float]:
        with self.lock:
            return {k: round(float(np.percentile(v, 95)), 1) for k, v in sorted(self.times.items())}


class TimedClient(httpx.Client):
    """An HTTP client whose every request is timed under its endpoint, ids replaced
    (``POST /api/images/{id}/detect``)."""

    def __init__(self, record: Recorder, **kwargs) -> None:
        super().__init__(**kwargs)
        self.record = record

    def request(self, method: str, url, **kwargs) -> httpx.Response:
        path = re.sub(r"/\d+", "/{id}", str(url).split("?")[0])
        started = time.perf_counter()
        try:
            response = super().request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise Failed(f"{method} {path}: no answer ({type(exc).__name__})", None) from None
        self.record.add(f"{method} {path}", (time.perf_counter() - started) * 1000)
        return response


@dataclass
class MaskTally:
    """What mask mode counts over an image's objects: clicks, brush strokes, polygons (and
    those outlined in parts), the backend that answered each box, the seconds waited for
    answers and the seconds of our own polygons' vertices and Enter."""

    clicks: int = 0
    strokes: int = 0
    polygons: int = 0
    drawn: int = 0  # of those, outlined without trying SAM: it had cost more on this image
    edits: int = 0  # objects whose outline was edited (not counted in polygons)
    edit_actions: int = 0  # the fixes made on those outlines (deletes, drags, redraws)
    parted: int = 0
    served: dict[str, int] = field(default_factory=dict)
    shown: int | None = None  # proposals the image opened with (None: none were ready)
    accepted: int = 0  # of those, saved by Enter as the objects' masks
    waited: float = 0.0
    outlined: float = 0.0


class Annotator:
    """One simulated person, through the HTTP API; remembers the class selected and every
    annotation the app acknowledged (``kept``: image id -> the annotation ids it holds)."""

    def __init__(
        self,
        api: httpx.Client,
        project_id: int,
        class_id: dict,
        position: dict,
        record=None,
        think=False,
        stop="seconds",
        start="click",
        proposals=True,
        switch="seconds",
    ) -> None:
        self.api, self.project_id, self.think, self.stop = api, project_id, think, stop
        self.switch = switch
        self.start, self.starts, self.proposals = start, StartMemory(), proposals
        self.boxes_only = False  # the app refused a click start on this image (a large one)
        self.class_id, self.position = class_id, position
        self.record = record or Recorder()
        self.current: int | None = 0  # the page starts on the first class
        self.waits_ms: list[float] = []
        self.learner_fits: list[float] = []  # the fast learner's refits the answers report (s)
        self.kept: dict[int, set[int]] = {}
        self.preparing = ThreadPoolExecutor(1)  # the page's requests it does not wait for
        self.memory = ClickMemory()  # whether a click of a class pays, as this person saw it
        self.images_done = 0
        self.object_seconds: list[float] = []  # mask mode: each object made anew, as the person saw it
        self.ahead = 0.0  # the cost-model seconds of the last image: what the page made meanwhile

    def annotate(self, im: dict, truth, mode: str) -> dict:
        """The image in ``mode``; after a 409 (someone else changed it) it is reloaded and done
        again; an error is recorded and the image left (not at manual quality)."""
        for _ in range(3):
            try:
                return self.image(im, truth) if mode == "detect" else self.image_masks(im, truth)
            except Failed as exc:
                if exc.status == 409:
                    self.record.conflict()
                    continue
                self.record.error(str(exc))
                break
        return {"image_id": im["id"], "file_name": im["file_name"], "failed": True, "manual_quality": False,
                "objects": 0, "clicks": 0, "interactions": 0, "seconds": 0.0, "waited_seconds": 0.0,
                "manual": {"interactions": 0, "seconds": 0.0}}  # fmt: skip

    def image(self, im: dict, gt: Objects) -> dict:
        """Bring image ``im`` to manual quality; what it took, and what the baselines would."""
        self._open(im)
        manual_plan = manual(gt, self.current)
        # the page asks the served detector on open (no click) and shows its proposals while
        # the person looks at the image: the wait is counted, as an interaction it is not
        ready = self._made_ahead(im)
        started = time.perf_counter()
        opened = self._on_open(im)
        waited = time.perf_counter() - started if opened is not None else 0.0
        events: list[tuple[str, float]] = [("open", waited)]
        pre = self._pre_annotation(gt, opened)
        out = opened or {"boxes": [], "scores": [], "labels": [], "min_score": None}
        clicks: list[list] = []
        gains: list[float] = []
        looked = _Looked()  # every proposal the page showed, looked at once
        looked.add(self._shown(out))
        out, wait = self._click(im, gt, out, clicks, gains, events, looked, time.monotonic())
        waited += wait
        least, shown, moved = self._slider(gt, out)
        looked.add(shown)  # a slider moved down shows more, each looked at
        # before deciding, the person looks at every proposal shown: 1.6 s each, whether it
        # is then accepted or dropped with the slider (the issue-52 rule)
        events.append(("look", len(looked) * COST_SECONDS["verify"]))
        self._think(events[-1][1])
        if moved:
            events.append(("threshold", COST_SECONDS["threshold"]))
        revision = _ok(self.api.get(f"/api/images/{im['id']}"))["revision"]
        shown, drawn, revision = self._fit(im, gt, shown, revision, events)
        held = shown if drawn is None else _with(shown, drawn)  # the box drawn over one, last
        plan = finish(gt, held[0], held[1], self.current)
        ids, revision = self._accept_shown(im, shown, plan, moved, revision, events)
        accepted = sum(i is not None for i in ids)
        ids += [] if drawn is None else [drawn[2]]
        self._think(plan.seconds())
        revision = self._carry_out(im, plan, ids, revision)
        events += [(a.kind, COST_SECONDS[a.kind]) for a in plan.actions]
        self.current = next(
            (a.class_index for a in reversed(plan.actions) if a.kind == "class change"), self.current
        )
        # an image left with no objects is submitted as empty (the page asks once; not counted)
        empty = not self.kept.get(im["id"])
        _ok(self.api.patch(f"/api/images/{im['id']}", json={"status": "done", "empty": empty}))
        events.append(("submit", 0.0))
        self.ahead = sum(s for _, s in events)
        self._log(im["id"], events)
        final = _ok(self.api.get(f"/api/images/{im['id']}"))["annotations"]
        boxes = np.array([a["geometry"]["box"] for a in final], np.float32).reshape(-1, 4)
        labels = np.array([self.position[a["class_id"]] for a in final], np.int64)
        acts = [e for e in events if e[0] not in ("open", "look", "submit")]
        return {
            "proposals_on_open": None if opened is None else len(opened["boxes"]),
            # SAM's proposals of the image made when it opened (None: the app made none), and
            # what the answer on open said of them ("partial": from its windows searched so far)
            "proposals_ready": ready,
            "proposals_state_on_open": ((opened or {}).get("proposals") or {}).get("state"),
            "image_id": im["id"],
            "file_name": im["file_name"],
            "objects": int(required(gt).sum()),
            "clicks": len(clicks),
            # the seconds each click saved, as the person saw it (ClickMemory decides on them)
            "click_gains": gains,
            "accepted": accepted,
            "looked_at": len(looked),
            "edges_fitted": drawn is not None,
            "interactions": len(acts),
            "seconds": round(sum(s for _, s in events), 2),
            # the rule before issue 52: only the proposals accepted were looked at
            "seconds_accepted_looked": round(
                sum(s for a, s in events if a != "look") + accepted * COST_SECONDS["verify"], 2
            ),
            "waited_seconds": round(waited, 3),
            "manual_quality": bool(at_manual_quality(gt, boxes, labels)),
            "manual": {"interactions": manual_plan.interactions, "seconds": round(manual_plan.seconds(), 2)},
            "pre_annotation": pre,
        }

    def _click(
        self,
        im: dict,
        gt: Objects,
        out: dict,
        clicks: list,
        gains: list,
        events: list,
        looked: _Looked,
        opened: float,
    ) -> tuple[dict, float]:
        """Click the objects the detector missed, one at a time (the clicks and the seconds
        each saved go into ``clicks`` and ``gains``), until a click does not help; the last
        answer and the seconds waited for the answers. A person looks at the proposals shown
        on open before the first click: the app has that long (from ``opened``, a
        ``time.monotonic()``) to set the image up for it, and only the wait beyond counts
        (the look itself is counted once, with the others)."""
        shown, waited = self._shown(out), 0.0
        before = len(missed(gt, shown[0], shown[1]))
        number = self.images_done
        self.images_done += 1
        while len(clicks) < MAX_CLICKS:
            worth = [c for c in range(len(self.class_id)) if self.memory.worth(c, number)]
            j = next_click(gt, shown[0], shown[1], worth)
            if j is None:
                break
            target = int(gt.labels[j])
            left = work_left(gt, shown[0], shown[1], self.current)
            pause = COST_SECONDS["click"]
            if target != self.current:
                events.append(("class change", COST_SECONDS["class change"]))
                self.current, pause = target, pause + COST_SECONDS["class change"]
            x0, y0, x1, y1 = gt.boxes[j].tolist()
            clicks.append([(x0 + x1) / 2, (y0 + y1) / 2, self.class_id[target]])
            self._think(pause)
            if len(clicks) == 1:
                _until(opened + len(looked) * COST_SECONDS["verify"])
            started = time.perf_counter()
            out = _ok(self.api.post(f"/api/images/{im['id']}/detect", json={"clicks": clicks}))
            self._fitted(out)
            out["clicked_classes"] = [c for _, _, c in clicks]
            wait = time.perf_counter() - started
            self.waits_ms.append(wait * 1000)
            waited += wait
            events.append(("click", COST_SECONDS["click"] + wait))
            shown = self._shown(out)
            seen = len(looked)
            looked.add(shown)
            # what the person saw the click cost: the click, the wait for its answer and a
            # look at each proposal it showed anew (each looked at once, like the campaign)
            cost = pause + wait + (len(looked) - seen) * COST_SECONDS["verify"]
            gains.append(round(left - work_left(gt, shown[0], shown[1], self.current) - cost, 2))
            self.memory.remember(target, number, gains[-1])
            now = len(missed(gt, shown[0], shown[1]))
            if now >= before:  # this click did not help: no more clicking
                break
            before = now
        return out, waited

    def _fit(self, im: dict, gt: Objects, shown: tuple, revision: int, events: list) -> tuple:
        """A box drawn over one proposal, then E, when that leaves less to do
        (:func:`~fewclick.simulate.annotator.edge_fit`): the drawn box saved, as the page saves
        it; the proposals left (moved by E), the drawn box ``(box, class index, id)`` (None: no
        fit) and the revision after."""
        fit = edge_fit(gt, shown[0], shown[1], shown[2], self.current)
        if fit is None:
            return shown, None, revision
        if fit.label != self.current:
            events.append(("class change", COST_SECONDS["class change"]))
            self.current = fit.label
        self._think(COST_SECONDS["draw"])
        drawn = [
            {"class_id": self.class_id[fit.label], "geometry": {"box": fit.box.tolist()}, "source": "manual"}
        ]
        body = {"revision": revision, "create": drawn}
        saved = _ok(self.api.post(f"/api/images/{im['id']}/annotations/batch", json=body))
        made = saved["created"][0]["id"]
        self.kept.setdefault(im["id"], set()).add(made)
        events += [("edit", COST_SECONDS["edit"]), ("fit", COST_SECONDS["fit"])]
        self._think(COST_SECONDS["fit"])
        keep = np.arange(len(shown[0])) != fit.index
        left = (fit.boxes[keep], shown[1][keep], [v for v, k in zip(shown[2], keep) if k])
        return left, (fit.box, fit.label, made), saved["revision"]

    def _accept_shown(
        self, im: dict, shown: tuple, plan, moved: bool, revision: int, events: list
    ) -> tuple[list[int], int]:
        """Enter on the proposals shown but those ``plan`` rejects (none: nothing saved); the
        id saved of each proposal shown (None: rejected, never saved) and the revision."""
        rejected = {a.index for a in plan.actions if a.kind == "reject" and a.index < len(shown[0])}
        if not len(shown[0]) or rejected >= set(range(len(shown[0]))):
            return [None] * len(shown[0]), revision
        accepted = _accept(plan)
        self._think(moved * COST_SECONDS["threshold"] + accepted[1])
        create = [
            {
                "class_id": self.class_id[int(c)],
                "geometry": {"box": b.tolist()},
                "score": s,
                "source": "detect",
            }
            for i, (b, c, s) in enumerate(zip(shown[0], shown[1], shown[2]))
            if i not in rejected
        ]
        saved = _ok(
            self.api.post(
                f"/api/images/{im['id']}/annotations/batch", json={"revision": revision, "create": create}
            )
        )
        made = iter(a["id"] for a in saved["created"])
        ids = [None if i in rejected else next(made) for i in range(len(shown[0]))]
        self.kept.setdefault(im["id"], set()).update(i for i in ids if i is not None)
        events.append(accepted)
        return ids, saved["revision"]

    def _slider(self, gt: Objects, out: dict) -> tuple[float, tuple, bool]:
        """Where a person sets the proposal slider: the score (one of the proposals', or above
        them all: drop them and draw) leaving the fewest interactions to finish, Enter and the
        slider's move included, then the fewest seconds; the page's start wins ties (all
        shown are looked at either way, the ``look`` event). Returns the score, the proposals
        shown there and whether the slider moved."""
        start, per_class = _start_score(out), bool(out.get("min_scores"))
        best = None
        # None: where the page starts (each class's own score, when the detector has them)
        for least in [None, *sorted({start, 1.01, *out["scores"]} - ({start} if not per_class else set()))]:
            shown = self._shown(out, least)
            plan = finish(gt, shown[0], shown[1], self.current)
            moved = least is not None
            cost, seconds = finish_cost(plan, len(shown[0]), ("threshold",) if moved else ())
            key = (cost, round(seconds, 2), moved)  # fewer interactions, then fewer seconds
            if best is None or key < best[0]:
                best = (key, least, shown)
        return (start if best[1] is None else best[1]), best[2], best[1] is not None

    def image_masks(self, im: dict, record) -> dict:
        """Mask mode: every required object of ``record`` (its ground truth) as a mask at
        IoU >= MASK_IOU, by a box and corrective clicks, or as a polygon."""
        need, segmentations, masks, labels = _required_masks(record)
        manual_plan = manual_masks(masks, labels, self.current, segmentations)
        events: list[tuple[str, float]] = [("open", 0.0)]
        self._open(im)
        self.boxes_only = False
        revision = _ok(self.api.get(f"/api/images/{im['id']}"))["revision"]
        tally = MaskTally()
        ways = WayMemory(self.switch == "seconds")
        taken: set[int] = set()
        if self.proposals:
            self._made_ahead(im)
            taken, revision = self._mask_proposals(im, masks, labels, revision, events, tally, set())
        order = sorted(range(len(need)), key=lambda k: (int(labels[k]) != self.current, int(labels[k])))
        done: set[int] = set()
        for k in order:
            if k in taken:
                continue
            if self.proposals and tally.shown is None and done:  # the page shows them once made
                self._made_ahead(im, min(self.object_seconds[-1], MID_WAIT))  # made meanwhile
                more, revision = self._mask_proposals(
                    im, masks, labels, revision, events, tally, done | taken
                )
                taken |= more
                if k in taken:
                    continue
            done.add(k)
            revision = self._object_mask(
                im, int(labels[k]), masks[k], segmentations[k], revision, events, tally, ways
            )
        # an image left with no objects is submitted as empty (the page asks once; not counted)
        empty = not self.kept.get(im["id"])
        _ok(self.api.patch(f"/api/images/{im['id']}", json={"status": "done", "empty": empty}))
        events.append(("submit", 0.0))
        self.ahead = sum(s for _, s in events)
        self._log(im["id"], events)
        final = [
            a for a in _ok(self.api.get(f"/api/images/{im['id']}"))["annotations"] if a["kind"] == "mask"
        ]
        acts = [e for e in events if e[0] not in ("open", "look", "submit")]
        ours = sum(s for _, s in events)  # the looks over the proposals too (not interactions)
        return {
            "image_id": im["id"],
            "file_name": im["file_name"],
            "objects": len(need),
            "clicks": tally.clicks,
            "tabs": sum(a == "tab" for a, _ in acts),
            "strokes": tally.strokes,
            "proposals_shown": tally.shown,
            "proposals_accepted": tally.accepted,
            "polygons": tally.polygons,
            "polygons_in_parts": tally.parted,
            "polygons_without_sam": tally.drawn,
            "sizes_outlined_by_hand": ways.given_up,
            "edits": tally.edits,
            "edit_actions": tally.edit_actions,
            "mask_backends": tally.served,
            "interactions": len(acts),
            "seconds": round(ours, 2),
            # our own polygons priced at COCO's 79.2 s an object instead of their vertices
            "seconds_coco_polygon": round(ours - tally.outlined + COCO_POLYGON_SECONDS * tally.polygons, 2),
            "waited_seconds": round(tally.waited, 3),
            "manual_quality": _masks_at_quality(final, masks, labels, self.position),
            "manual": {
                "interactions": manual_plan.interactions,
                "seconds": round(manual_plan.seconds(), 2),
                "seconds_coco_polygon": round(COCO_POLYGON_SECONDS * len(need), 2),
            },
        }

    def _object_mask(
        self,
        im: dict,
        target: int,
        truth_mask,
        segmentation,
        revision: int,
        events: list,
        tally: MaskTally,
        ways: WayMemory,
    ) -> int:
        """One object made anew in class ``target``: started and clicked
        (:meth:`_box_and_clicks`), finished the cheapest way when the clicks fell short, and
        saved; or outlined straight away when SAM has cost more than outlines for objects of
        its size on this image (``ways``, :class:`WayMemory`). Its seconds remembered (what
        the person expects an object to cost). The revision."""
        h, w = truth_mask.shape
        first, size = len(events), size_of(truth_mask)
        tried_sam = ways.sam_pays(size)
        if not tried_sam:
            self._select(target, events)
            done_before, pred, rle = len(events), np.zeros_like(truth_mask), None
            tally.drawn += 1
        else:
            box, clicks, shown, pred, rle = self._box_and_clicks(
                im, target, truth_mask, segmentation, events, tally
            )
            done_before = len(events)
            if mask_iou(pred, truth_mask) < MASK_IOU:
                way, fix = self._fix_plan(im, pred, rle, truth_mask, segmentation, box)
                if way == "brush":  # the cheapest of brush, outline and polygon, and gets there
                    pred, rle = self._brush(im, box, clicks, shown, fix, events, tally)
                elif way == "outline":
                    pred, rle = self._outline(fix, (h, w), events, tally)
        geometry, source = self._geometry(pred, rle, truth_mask, segmentation, (h, w), events, tally)
        body = {"class_id": self.class_id[target], "kind": "mask", "geometry": geometry, "source": source}
        self._think(sum(s for a, s in events[done_before:] if a in ("accept", "vertex")))
        made = _ok(
            self.api.post(f"/api/images/{im['id']}/annotations", params={"revision": revision}, json=body)
        )
        self.kept.setdefault(im["id"], set()).add(made["annotation"]["id"])
        spent = sum(s for _, s in events[first:])
        self.object_seconds.append(spent)
        if tried_sam:
            ways.saw(size, spent, polygon_seconds(polygon_outlines(truth_mask, segmentation)))
        return made["revision"]

    def _select(self, target: int, events: list) -> float:
        """The class ``target`` selected (a key, when it is not the current one); the pause."""
        if target == self.current:
            return 0.0
        events.append(("class change", COST_SECONDS["class change"]))
        self.current = target
        return COST_SECONDS["class change"]

    def _mask_proposals(
        self,
        im: dict,
        masks: list,
        labels: np.ndarray,
        revision: int,
        events: list,
        tally: MaskTally,
        done: set,
    ) -> tuple[set[int], int]:
        """What mask mode opens the image with: SAM's proposals like the finished images'
        objects (``/mask_proposals``, made while the last image was worked on: the app is let
        go on for that image's cost-model seconds, uncounted, as for detect mode's). Every
        one shown is looked at (1.6 s). Those that are an object's mask (IoU >= MASK_IOU,
        its class) are saved, and so are those whose outline the person would rather fix
        than make the object anew (:meth:`_near`); the cheaper way: a click on each (then
        Esc hides the rest) or Enter on all once the others are rejected (a right-click
        each). Then the near ones' outlines are edited and saved in their place. The objects
        taken, and the revision. Asked again after each object while they are being made
        (the page asks every 1.5 s, unwaited): the objects ``done`` by then are not taken,
        and a proposal on one (box IoU >= 0.5) is not shown, as on the page."""
        started = time.perf_counter()
        out = _ok(self.api.post(f"/api/images/{im['id']}/mask_proposals"))
        tally.waited += 0.0 if done else time.perf_counter() - started
        if out["state"] != "ready":
            return set(), revision
        floors = [out["min_scores"].get(str(c), out["threshold"]) for c in out["labels"]]
        made = np.array([tight_box(masks[k]) for k in done], np.float32).reshape(-1, 4)
        covered = box_iou(np.array(out["boxes"], np.float32).reshape(-1, 4), made).max(1, initial=0.0) >= 0.5
        shown = [
            i for i, (s, f) in enumerate(zip(out["scores"], floors)) if s >= min(f, 1.0) and not covered[i]
        ]
        tally.shown = len(shown)
        if not shown:
            return set(), revision
        events.append(("look", len(shown) * COST_SECONDS["verify"]))
        self._think(events[-1][1])
        pm = {i: rle_to_mask(out["masks"][i]) for i in shown}
        taken: dict[int, int] = {}  # shown proposal -> the object it is
        for i in shown:
            free = [k for k in range(len(masks)) if k not in taken.values() and k not in done]
            best = self._object_of(pm[i], self.position[out["labels"][i]], masks, labels, free)
            if best is not None and mask_iou(pm[i], masks[best]) >= MASK_IOU:
                taken[i] = best
        fixes = self._near(
            im, [i for i in shown if i not in taken], pm, out, masks, labels, done | set(taken.values())
        )
        wrong = len(shown) - len(taken) - len(fixes)
        hide = [("hide", COST_SECONDS["hide"])] if wrong else []  # else a click on one would take it
        chosen = hide
        if taken or fixes:  # Enter on them all with the wrong ones rejected, or a click on each
            every = [("reject", COST_SECONDS["reject"])] * wrong + [("accept", COST_SECONDS["accept"])]
            each = [("take", COST_SECONDS["take"])] * (len(taken) + len(fixes)) + hide
            chosen = min(every, each, key=lambda e: sum(s for _, s in e))
        events += chosen
        self._think(sum(s for _, s in chosen))
        if not (taken or fixes):
            return set(), revision
        return self._save_proposals(im, out, taken, fixes, revision, events, tally)

    def _save_proposals(
        self, im: dict, out: dict, taken: dict, fixes: dict, revision: int, events: list, tally: MaskTally
    ) -> tuple[set[int], int]:
        """The proposals ``taken`` (proposal -> object) and those to fix (proposal -> (object,
        outline plan)) saved as masks at once; then each one to fix: L on it, its edits and
        Enter, its mask saved in its place. The objects done, and the revision."""
        saving = [*taken, *fixes]
        create = [
            {
                "class_id": out["labels"][i],
                "kind": "mask",
                "geometry": {"mask": out["masks"][i]},
                "score": out["scores"][i],
                "source": "proposal",
            }
            for i in saving
        ]
        body = {"revision": revision, "create": create}
        saved = _ok(self.api.post(f"/api/images/{im['id']}/annotations/batch", json=body))
        ids = dict(zip(saving, (a["id"] for a in saved["created"])))
        revision = saved["revision"]
        for i, (_, plan) in fixes.items():  # L on the saved mask, its edits, Enter: in its place
            _, rle = self._outline(plan, tuple(out["masks"][i]["size"]), events, tally)
            events.append(("accept", COST_SECONDS["accept"]))
            self._think(COST_SECONDS["accept"])
            fixed = {
                "class_id": out["labels"][i],
                "kind": "mask",
                "geometry": {"mask": rle},
                "source": "outline",
            }
            body = {"revision": revision, "create": [fixed], "delete": [ids[i]]}
            saved = _ok(self.api.post(f"/api/images/{im['id']}/annotations/batch", json=body))
            ids[i], revision = saved["created"][0]["id"], saved["revision"]
        self.kept.setdefault(im["id"], set()).update(ids.values())
        tally.accepted = len(taken) + len(fixes)
        return set(taken.values()) | {k for k, _ in fixes.values()}, revision

    @staticmethod
    def _object_of(mask: np.ndarray, label: int, masks: list, labels: np.ndarray, free: list) -> int | None:
        """The object of ``free`` of class ``label`` a proposal's ``mask`` overlaps most."""
        mine = [k for k in free if int(labels[k]) == label]
        return max(mine, key=lambda k: mask_iou(mask, masks[k]), default=None)

    def _near(self, im: dict, shown: list, pm: dict, out: dict, masks: list, labels, busy: set) -> dict:
        """The proposals of ``shown`` the person takes to fix: each on an object not ``busy``
        (made, or a proposal has it right) at IoU >= NEAR_IOU, whose outline edits
        (``simulate.outline.plan_edits``, on the outline the app makes of it) with the click
        that takes it and Enter cost less than an object made anew has cost this person on
        average so far (its start, Tabs, clicks, fixes and Enter; FRESH_SECONDS before
        any). Proposal -> (object, plan)."""
        fresh = float(np.mean(self.object_seconds)) if self.object_seconds else FRESH_SECONDS
        budget = fresh - COST_SECONDS["take"] - COST_SECONDS["accept"]
        fixes: dict[int, tuple] = {}
        for i in shown:
            fixing = {f for f, _ in fixes.values()}
            free = [k for k in range(len(masks)) if k not in busy and k not in fixing]
            k = self._object_of(pm[i], self.position[out["labels"][i]], masks, labels, free)
            if k is None or mask_iou(pm[i], masks[k]) < NEAR_IOU:
                continue
            outline = _ok(self.api.post(f"/api/images/{im['id']}/outline", json={"mask": out["masks"][i]}))
            rings = [(r["points"], r["hole"]) for r in outline["rings"]]
            plan = plan_edits(pm[i], masks[k], MASK_IOU, rings, budget=budget)
            if plan is not None and plan.seconds <= budget:
                fixes[i] = (k, plan)
        return fixes

    def _box_and_clicks(
        self, im: dict, target: int, truth_mask, segmentation, events: list, tally: MaskTally
    ):
        """The object's mask started (in class ``target``) by a click in its middle (``self.start``
        ``click``, or ``auto`` while click starts pay for the class: :class:`StartMemory`;
        SAM's candidate closest to the object Tabbed to; when it is under START_IOU, a box is
        dragged instead) or by its box dragged (``box``), then corrective clicks until its mask
        reaches MASK_IOU, the clicks stop paying (``self.stop``: ``iou``, the last STALL_RUN
        clicks each gained under STALL_GAIN of IoU; ``seconds``, also when they each saved
        less than a click's seconds in what finishing the mask with the brush or its outline
        costs) or run out; (box, clicks, candidate shown, mask, its RLE)."""
        pause = self._select(target, events)
        clicks: list[list] = []
        box, started = None, False
        clicking = self.start == "click" or (self.start == "auto" and self.starts.pays(target))
        if clicking and not self.boxes_only:
            first = ritm_next_click(truth_mask, np.zeros_like(truth_mask))  # the object's middle
            clicks.append([first.x, first.y, True])
            self._think(pause + COST_SECONDS["click"])
            try:
                out, wait = self._segment(im, None, clicks)
            except Failed as exc:  # a large image: the page says to drag a box, and so on
                if exc.status != 400:
                    raise
                self.boxes_only, out, wait = True, None, 0.0
            tally.waited += wait
            events.append(("click", COST_SECONDS["click"] + wait))
            pause = 0.0
            if out is not None:
                shown, pred, rle = self._tab(out, truth_mask, events)
                started = mask_iou(pred, truth_mask) >= START_IOU
                self.starts.saw(target, mask_iou(pred, truth_mask) >= MASK_IOU)
            if not started:  # it found something else, or was refused: a box dragged instead
                tally.clicks, clicks = tally.clicks + 1, []
        if not started:
            box = tight_box(truth_mask).tolist()
            self._think(pause + COST_SECONDS["draw"])
            out, wait = self._segment(im, box, clicks)
            tally.waited += wait
            events.append(("draw", COST_SECONDS["draw"] + wait))
            shown, pred, rle = self._tab(out, truth_mask, events)
        tally.served[out["method"]] = tally.served.get(out["method"], 0) + 1
        ious = [mask_iou(pred, truth_mask)]
        finish = []  # the seconds finishing the mask another way would take, after each click

        def more() -> bool:
            if ious[-1] >= MASK_IOU or len(clicks) >= MAX_MASK_CLICKS:
                return False
            if self.stop == "iou" or clicks_stalled(ious):
                return not clicks_stalled(ious)
            way, _, seconds = cheapest_finish(pred, truth_mask, segmentation, box or _mask_box(pred))
            finish.append(seconds if way != "polygon" else float("inf"))  # only an edit is saved on
            return not clicks_not_paying(finish, COST_SECONDS["click"])

        while more():
            done = Clicks(
                np.array([c[:2] for c in clicks], np.float32).reshape(-1, 2),
                np.zeros(len(clicks)),
                [c[2] for c in clicks],
            )
            nxt = ritm_next_click(truth_mask, pred, clicked=done)
            if nxt is None:
                break
            clicks.append([nxt.x, nxt.y, bool(nxt.positive)])
            self._think(COST_SECONDS["click"])
            out, wait = self._segment(im, box, clicks, candidate=shown)
            tally.waited += wait
            events.append(("click", COST_SECONDS["click"] + wait))
            shown, pred, rle = self._tab(out, truth_mask, events)
            ious.append(mask_iou(pred, truth_mask))
        tally.clicks += len(clicks)
        return box or _mask_box(pred), clicks, shown, pred, rle

    def _brush(
        self, im: dict, box: list, clicks: list, shown: int, strokes: list, events: list, tally: MaskTally
    ) -> tuple[np.ndarray, dict]:
        """The brush key(s) and ``strokes`` drawn one by one, each a new answer; the last
        answer's mask and RLE."""
        keys = brush_keys(strokes, start=page_radius(box))
        self._think(COST_SECONDS["brush"] * keys)
        events += [("brush", COST_SECONDS["brush"])] * keys
        for i, stroke in enumerate(strokes):
            self._think(stroke_seconds(stroke))
            body = [s.to_json() for s in strokes[: i + 1]]
            out, wait = self._segment(im, box, clicks, candidate=shown, strokes=body)
            tally.waited += wait
            events.append(("stroke", stroke_seconds(stroke) + wait))
        tally.strokes += len(strokes)
        return rle_to_mask(out["mask"]), out["mask"]

    def _geometry(
        self, pred, rle, truth_mask: np.ndarray, segmentation, size: tuple[int, int], events: list, tally
    ) -> tuple[dict, str]:
        """What Enter saves: the mask when it reaches MASK_IOU, else the object outlined by
        hand in the page's polygon mode (O); (geometry, source)."""
        if mask_iou(pred, truth_mask) >= MASK_IOU:
            events.append(("accept", COST_SECONDS["accept"]))
            return {"mask": rle}, "mask"
        tally.polygons += 1
        rings = polygon_outlines(truth_mask, segmentation)
        for ring in rings:
            events += [("vertex", COST_SECONDS["vertex"])] * max(len(ring), 3)
            events.append(("accept", COST_SECONDS["accept"]))
        tally.outlined += polygon_seconds(rings)
        if len(rings) == 1:
            return {"polygon": rings[0].tolist()}, "polygon"
        tally.parted += 1  # the page outlines one part at a time: the parts filled into one mask
        return {"mask": mask_to_rle(polygons_to_mask(rings, *size))}, "polygon"

    def _tab(self, out: dict, truth_mask: np.ndarray, events: list) -> tuple[int, np.ndarray, dict]:
        """The candidate of ``out`` the person Tabs to (the closest to the object, when it is
        more than protocols.segment.TAB_GAIN better than the mask served; each press of Tab,
        or of Shift+Tab when going back round is shorter, an event), its mask and its RLE
        (what Enter saves)."""
        shown = out.get("candidates") or [out]
        masks = [rle_to_mask(c["mask"]) for c in shown]
        best = tab_to([mask_iou(m, truth_mask) for m in masks])
        for _ in range(min(best, len(shown) - best)):  # Tab, or Shift+Tab back round: the fewer
            self._think(COST_SECONDS["tab"])
            events.append(("tab", COST_SECONDS["tab"]))
        return best, masks[best], shown[best]["mask"]

    def _fix_plan(self, im: dict, pred, rle, truth_mask: np.ndarray, segmentation, box) -> tuple[str, object]:
        """How the person finishes a mask the clicks left short of MASK_IOU: the cheapest in
        seconds of the brush (its strokes), the outline the app makes of the mask
        (``/outline``) edited (its plan) and a new polygon (``simulate.outline.cheapest_finish``)."""
        outline = _ok(self.api.post(f"/api/images/{im['id']}/outline", json={"mask": rle}))
        rings = [(r["points"], r["hole"]) for r in outline["rings"]]
        way, fix, _ = cheapest_finish(pred, truth_mask, segmentation, box, rings)
        return way, fix

    def _outline(self, plan, size: tuple[int, int], events: list, tally: MaskTally) -> tuple:
        """The mask turned into an outline (a key, and the outline looked over), then the
        plan's edits, each click an event; the mask filled from the edited outline."""
        self._think(plan.seconds)
        events.append(("outline", EDIT_SECONDS["outline"] + EDIT_SECONDS["look"]))
        for edit in plan.edits:
            action = OUTLINE_EVENTS.get(edit.kind, f"outline_{edit.kind}")  # as the page logs it
            events += [(action, edit.seconds / edit.interactions)] * edit.interactions
        tally.edits += 1
        tally.edit_actions += len(plan.edits)
        mask = fill_outline(plan.rings, *size)
        return mask, mask_to_rle(mask)

    def _open(self, im: dict) -> None:
        """What the page does as the image opens, without waiting: ask the worker to encode
        it (and the next image) for the model ahead of the first click."""

        def prepare():
            try:
                _ok(self.api.post(f"/api/images/{im['id']}/prepare"))
            except Failed as exc:
                self.record.error(str(exc))

        self.preparing.submit(prepare)

    def _think(self, seconds: float) -> None:
        """With ``think``, take a person's time (the cost model's seconds) before an action:
        several annotators then load the app at a person's pace, not a program's."""
        if self.think and seconds > 0:
            time.sleep(seconds)

    def _segment(
        self, im: dict, box: list[float], clicks: list, candidate: int = 0, strokes: list | None = None
    ) -> tuple[dict, float]:
        started = time.perf_counter()
        body = {"box": box, "clicks": clicks, "candidate": candidate, "strokes": strokes or []}
        out = _ok(self.api.post(f"/api/images/{im['id']}/segment", json=body))
        wait = time.perf_counter() - started
        self.waits_ms.append(wait * 1000)
        if out.get("zoom") == "encoding" and not strokes:  # the page asks again (mask.js's sharpen)
            threading.Event().wait(ZOOM_AGAIN)  # the person's mental step before their next action
            again = time.perf_counter()
            out = _ok(self.api.post(f"/api/images/{im['id']}/segment", json=body))
            wait += max(0.0, ZOOM_AGAIN + time.perf_counter() - again - KLM_M)  # what outlasts it
        return out, wait

    def _shown(self, out: dict, least: float | None = None) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """The proposals the page shows: at or above ``least`` (default: where the page
        starts: each class's own score when the served detector has them, else the slider's
        start, the detector's suggested score)."""
        if least is None:  # a class clicked shows from the slider's start, as on the page
            per_class = {int(c): float(t) for c, t in (out.get("min_scores") or {}).items() if t is not None}
            clicked = out.get("clicked_classes", [])
            floors = page_floors(out["scores"], out["labels"], per_class, _start_score(out), clicked)
        else:
            floors = [least] * len(out["scores"])
        keep = [i for i, (s, floor) in enumerate(zip(out["scores"], floors)) if s >= floor]
        boxes = np.array([out["boxes"][i] for i in keep], np.float32).reshape(-1, 4)
        labels = np.array([self.position[out["labels"][i]] for i in keep], np.int64)
        return boxes, labels, [out["scores"][i] for i in keep]

    def _made_ahead(self, im: dict, seconds: float | None = None) -> bool | None:
        """Let the app go on making this image's SAM proposals (begun when the last image was
        opened: the page prepares the next image too) for as long as a person spent on the
        last image (or ``seconds``: mask mode, after an object), uncounted, as the app
        would have while they worked; no longer. What is not made by then is not waited
        for: the image opens without it, as on the page. Whether they were ready then (None:
        the app makes none for this image)."""
        end = time.monotonic() + (self.ahead if seconds is None else seconds)
        while True:  # a look a second
            said = _ok(self.api.post(f"/api/images/{im['id']}/prepare")).get("proposals")
            if said != "making" or time.monotonic() >= end:
                return None if said is None else said == "ready"
            threading.Event().wait(min(1.0, max(0.0, end - time.monotonic())))  # the app's time

    def _on_open(self, im: dict) -> dict | None:
        """What the page shows on opening an image nobody started: the served detector's
        proposals without clicks; None before a trained detector serves (a 400)."""
        r = self.api.post(f"/api/images/{im['id']}/detect", json={"clicks": []})
        return None if r.status_code == 400 else self._fitted(_ok(r))

    def _fitted(self, out: dict) -> dict:
        """``out``, its fast learner's refit (where it serves a class and was refit) kept."""
        if out.get("learner_fit_s") is not None:
            self.learner_fits.append(float(out["learner_fit_s"]))
        return out

    def _pre_annotation(self, gt: Objects, opened: dict | None) -> dict:
        """The served detector's proposals without clicks (``opened``), accepted, then fixed
        (priced, not done); drawing by hand where no trained detector serves yet."""
        looked = _Looked()
        if opened is None:
            plan, accepted, moved = manual(gt, self.current), 0, False
        else:
            looked.add(self._shown(opened))
            least, (boxes, labels, _), moved = self._slider(gt, opened)
            looked.add((boxes, labels))
            plan = finish(gt, boxes, labels, self.current)
            accepted = len(boxes) - sum(a.kind == "reject" for a in plan.actions)
        seconds = plan.seconds(verified=len(looked))  # each shown looked at, accepted or not
        enter = accepted > 0 and plan.fixes_proposals  # else the submit keeps them
        seconds += enter * COST_SECONDS["accept"] + moved * COST_SECONDS["threshold"]
        extra = int(enter) + int(moved)  # Enter, the slider
        return {"interactions": plan.interactions + extra, "seconds": round(seconds, 2), "accepted": accepted}

    def _carry_out(self, im: dict, plan: Plan, ids: list[int], revision: int) -> int:
        """Make ``plan``'s changes through the API (as the page saves them); the revision after."""
        gone, drawn = [], []
        for a in plan.actions:
            if a.kind == "edit":  # the box drawn over the proposal, in its place
                body = {
                    "geometry": {"box": a.box},
                    "class_id": self.class_id[a.class_index],
                    "revision": revision,
                }
                revision = _ok(self.api.patch(f"/api/annotations/{ids[a.index]}", json=body))["revision"]
            elif a.kind == "class change" and a.index is not None:
                body = {"class_id": self.class_id[a.class_index], "revision": revision}
                revision = _ok(self.api.patch(f"/api/annotations/{ids[a.index]}", json=body))["revision"]
            elif a.kind in ("delete", "reject") and ids[a.index] is not None:  # a saved box: deleted
                gone.append(ids[a.index])
            elif a.kind == "draw":
                drawn.append({"class_id": self.class_id[a.class_index], "geometry": {"box": a.box}})
        if gone or drawn:
            body = {"revision": revision, "delete": gone, "create": drawn}
            saved = _ok(self.api.post(f"/api/images/{im['id']}/annotations/batch", json=body))
            kept = self.kept.setdefault(im["id"], set())
            kept.difference_update(gone)
            kept.update(a["id"] for a in saved["created"])
            revision = saved["revision"]
        return revision

    def _log(self, image_id: int, events: list[tuple[str, float]]) -> None:
        """The events as the page posts them: each with the seconds since the one before, at
        most the server's ``MAX_EVENTS_PER_POST`` a request (the page posts every 3 s; an
        image of hundreds of objects logs more than that at once here)."""
        at = datetime.now(UTC).isoformat()
        body = [
            {"action": action, "image_id": image_id, "at": at, "duration_ms": round(seconds * 1000, 1)}
            for action, seconds in events
        ]
        for start in range(0, len(body), MAX_EVENTS_PER_POST):
            part = body[start : start + MAX_EVENTS_PER_POST]
            _ok(self.api.post(f"/api/projects/{self.project_id}/events", json=part))


class StartMemory:
    """Whether starting a mask of a class with a click pays, as this person saw it: a click
    whose mask is the object (IoU >= MASK_IOU, after Tab) saves a box dragged (7.0 s less a
    click's 2.55 s); one that is not needs corrective clicks a box would often not have
    needed (on coco_tiny's train part, click starts that only found the object at IoU >= 0.5
    took more seconds than boxes), or a box on top. A class is started with a click while
    its click starts gave the object at least ``PAYS`` of the time (untried: yes; the
    counts start at one success and one failure)."""

    PAYS = 0.5

    def __init__(self) -> None:
        self.seen: dict[int, list[int]] = {}

    def pays(self, label: int) -> bool:
        good, tried = self.seen.get(label, [1, 2])
        return good / tried >= self.PAYS

    def saw(self, label: int, good: bool) -> None:
        counts = self.seen.setdefault(label, [1, 2])
        counts[0], counts[1] = counts[0] + good, counts[1] + 1


class WayMemory:
    """Mask mode, on one image: whether SAM still pays against outlining by hand, as the person
    saw it, for objects of each size (:func:`size_of`: small, medium, large; a person sees
    that SAM misses the small ones here and still takes the large ones). After each object
    made anew with SAM (its start, clicks, Tabs, fixes and Enter, the polygon too when it
    ended as one) the person compares its seconds with what its outline by hand would have
    cost (its vertices and Enter: :func:`polygon_seconds`; a person judges an outline's
    length by eye). Once SAM has been tried on ``LEARN`` objects of a size on the image and
    cost more in all than their outlines, the rest of that size are outlined straight away
    (``on`` False: never). Issue 54, item 3: a stop judged by the seconds it saves."""

    LEARN = 3

    def __init__(self, on: bool = True) -> None:
        self.on = on
        self.seen: dict[str, list[float]] = {}  # size -> [SAM seconds, outline seconds, tried]

    def sam_pays(self, size: str) -> bool:
        sam, outlines, tried = self.seen.get(size, [0.0, 0.0, 0])
        return not self.on or tried < self.LEARN or sam <= outlines

    def saw(self, size: str, sam_seconds: float, outline_seconds: float) -> None:
        tally = self.seen.setdefault(size, [0.0, 0.0, 0])
        tally[0] += sam_seconds
        tally[1] += outline_seconds
        tally[2] += 1

    @property
    def given_up(self) -> list[str]:
        """The sizes outlined by hand on this image."""
        return sorted(size for size in self.seen if not self.sam_pays(size))


def size_of(mask: np.ndarray) -> str:
    """An object's size as COCO bins it (sqrt of its area against SIZE_EDGES): "small",
    "medium" or "large"."""
    side = float(np.sqrt(mask.sum()))
    return "small" if side < SIZE_EDGES[0] else "medium" if side <= SIZE_EDGES[1] else "large"


def polygon_seconds(rings: list) -> float:
    """What outlining an object by hand as ``rings`` (:func:`polygon_outlines`) costs: each
    ring's vertices (3 at least) and Enter, as the polygons-by-hand baseline prices it
    (:func:`~fewclick.simulate.annotator.manual_masks`)."""
    return sum(COST_SECONDS["vertex"] * max(len(r), 3) + COST_SECONDS["accept"] for r in rings)


def _mask_box(mask: np.ndarray) -> list[float]:
    """The box the page sizes its brush by for a mask started without one."""
    return tight_box(mask).tolist() if mask.any() else [0.0, 0.0, 1.0, 1.0]


def _required_masks(record) -> tuple[list[int], list, list[np.ndarray], np.ndarray]:
    """The objects of ``record`` a mask campaign must finish (required, with an outline):
    their indices, segmentations, masks (bool [H, W]) and labels."""
    gt = record.objects
    need = [j for j in np.flatnonzero(required(gt)) if gt.segmentations and gt.segmentations[j] is not None]
    segmentations = [gt.segmentations[j] for j in need]
    masks = [segmentation_to_mask(seg, record.height, record.width) for seg in segmentations]
    return need, segmentations, masks, gt.labels[need]


def _masks_at_quality(saved: list[dict], masks: list, labels: np.ndarray, position: dict) -> bool:
    """Whether every object's mask is matched one-to-one by a saved mask of its class at IoU
    >= MASK_IOU, and no other mask is left."""
    if len(saved) != len(masks):
        return False
    pred = [(position[a["class_id"]], rle_to_mask(a["geometry"]["mask"])) for a in saved]
    free = list(range(len(pred)))
    for truth_mask, label in zip(masks, labels):
        hit = next(
            (i for i in free if pred[i][0] == label and mask_iou(pred[i][1], truth_mask) >= MASK_IOU), None
        )
        if hit is None:
            return False
        free.remove(hit)
    return True


def _screenshot(server: ServerProcess, project_id: int, path: Path) -> None:
    """The project page after the campaign, analytics in view, in headless Chromium, as a
    person logged in with a password (a user added with the CLI) sees it."""
    import secrets

    from _browser import chromium_page, log_in

    password = secrets.token_urlsafe(12)
    server.add_user("viewer", "admin", password)
    with chromium_page(viewport=(1280, 1400)) as page:
        log_in(page, server.base, "viewer", password)
        page.goto(f"{server.base}/#/project/{project_id}")
        analytics = "(document.querySelector('#analytics')?.textContent ?? 'loading').trim()"
        page.wait_for_function(f"() => {analytics} !== 'loading'")
        page.locator("#analytics").scroll_into_view_if_needed()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)


def _start_score(out: dict) -> float:
    """Where the page's slider starts for an answer (detect.js ``detectNow``): the step at or
    below the served detector's suggested score, else the look-alikes' start for a clicked
    class, else the page's own start."""
    least = out.get("min_score")
    if least is None:
        least = (out.get("proposals") or {}).get("threshold")
    return PAGE_MIN_SCORE if least is None else slider_value(float(least))


def _ok(response: httpx.Response):
    if response.status_code >= 300:
        what = f"{response.request.method} {response.request.url.path}"
        raise Failed(f"{what}: {response.status_code} {response.text[:300]}", response.status_code)
    return response.json()


class TrainerPace:
    """The project's background trainer, given a person's time: started once an image is
    finished; after each image, the steps it would have trained in the person's seconds on
    it at its idle speed are added to its due, and the campaign waits until it has trained
    them (a simulated person is faster than a real one). Per image it records the trainer's
    steps and the detector version serving; a trainer that ended without being stopped (it
    failed) is an error of the campaign, recorded once."""

    STALL_SECONDS = 300.0  # no step for this long: it waits for images (held out), not for time

    def __init__(self, project_id: int, seconds_per_step: float, record: Recorder | None = None) -> None:
        self.project_id, self.seconds_per_step = project_id, seconds_per_step
        self.due, self.started, self.record, self.ended = 0.0, False, record, False

    def after_image(self, api: httpx.Client, seconds: float) -> dict:
        url = f"/api/projects/{self.project_id}"
        if not self.started:
            r = api.post(f"{url}/trainer", json={"action": "start"})
            self.started = r.status_code in (202, 409)  # 409: it runs already
        self.due += seconds / self.seconds_per_step
        project = _ok(api.get(url))
        last, moved = None, time.monotonic()
        while project["trainer"] is not None and project["trainer"]["status"] in ("queued", "running"):
            steps = project["trainer"]["steps"]
            if steps >= self.due or time.monotonic() - moved > self.STALL_SECONDS:
                break  # due, or it has nothing to train on yet (no finished image outside the held-out)
            if steps != last:
                last, moved = steps, time.monotonic()
            time.sleep(2.0)
            project = _ok(api.get(url))
        trainer, detector = project["trainer"], project["detector"]
        if self.started and trainer is None and not self.ended:
            self.ended = True
            self._ended(api, url)
        return {
            "trainer_steps": None if trainer is None else trainer["steps"],
            "serving_version": None if detector is None else detector["version"],
            "serving": serving_now(project),
        }

    def _ended(self, api: httpx.Client, url: str) -> None:
        """Record why the trainer ended: only a stop ends it in a campaign, and none was sent."""
        ran = [j for j in _ok(api.get(f"{url}/jobs")) if j["kind"] == "trainer"]
        last = ran[-1] if ran else None
        why = "no trainer job" if last is None else f"its job {last['status']}: {last['message']}"
        if self.record is not None:
            self.record.error(f"the background trainer ended during the campaign ({why})")


def _calibrate(data, steps: int = 40, skip: int = 10) -> float:
    """Seconds per step of the background trainer's training on one core, on ``data``'s
    first 5 images (the first ``skip`` steps, which allocate, not counted)."""
    import torch

    from fewclick.active.continual import ContinualConfig
    from fewclick.io.dataset import Dataset
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    torch.set_num_threads(1)
    subset = Dataset(data.classes, [r for r in data.images if len(r.objects)][:5], data.format)
    rounds = ContinualConfig()
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(step: int, total: int | None) -> None:
        now = time.perf_counter()
        if step > skip:
            times.append(now - last[0])
        last[0] = now

    with tempfile.TemporaryDirectory() as out:
        train = TrainConfig(steps=steps, crop=rounds.crop, batch_size=rounds.batch_size, threads=1)
        config = detector_config_for(subset, "c3det", backbone="imagenet")
        train_detector(subset, out, config, train, progress=tick)
    return round(float(np.median(times)), 4)


def _with(shown: tuple, drawn: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The proposals ``shown`` with the ``drawn`` box ``(box, class index, id)`` after them."""
    boxes = np.concatenate([np.asarray(shown[0], np.float32).reshape(-1, 4), drawn[0][None]])
    return boxes, np.concatenate([np.asarray(shown[1], np.int64), [drawn[1]]])


def _accept(plan: Plan) -> tuple[str, float]:
    """The event of accepting the proposals shown (looked at before, the ``look`` event):
    Enter when ``plan`` fixes some of them; else the page's submit keeps them, what is
    missing drawn beside them (no interaction: the ``submit`` event, which the interactions
    leave out)."""
    if plan.fixes_proposals:
        return ("accept", COST_SECONDS["accept"])
    return ("submit", 0.0)


class _Looked:
    """The proposals a person has looked at on one image (class and box, to the pixel): each
    answer's proposals shown, counted once however many answers show them again."""

    def __init__(self) -> None:
        self.seen: set[tuple] = set()

    def add(self, shown: tuple) -> None:
        boxes, labels = shown[0], shown[1]
        self.seen.update((int(c), *np.round(b).astype(int).tolist()) for b, c in zip(boxes, labels))

    def __len__(self) -> int:
        return len(self.seen)


def _until(moment: float) -> None:
    """Let the app work, uncounted, until ``moment`` (a ``time.monotonic()``): a person's
    time spent on something the campaign counts elsewhere."""
    threading.Event().wait(max(0.0, moment - time.monotonic()))


def _pace(api: httpx.Client, project_id: int, seconds: float) -> None:
    """While a job of the project runs, wait up to ``seconds`` (a person's time on the image
    just done) for it: what a person's slower work would have overlapped. The background
    trainer is paced apart (:class:`TrainerPace`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jobs = _ok(api.get(f"/api/projects/{project_id}/jobs"))
        if not any(j["status"] in ("queued", "running") and j["kind"] != "trainer" for j in jobs):
            return
        time.sleep(1.0)


def _lost_writes(api: httpx.Client, project_id: int, annotators: list[Annotator]) -> int:
    """Acknowledged annotations missing from their image or from the COCO export, and
    deleted ones still there."""
    kept: dict[int, set[int]] = {}
    for a in annotators:
        for image_id, ids in a.kept.items():
            kept.setdefault(image_id, set()).update(ids)
    lost = 0
    for image_id, ids in kept.items():
        there = {a["id"] for a in _ok(api.get(f"/api/images/{image_id}"))["annotations"]}
        lost += len(ids ^ there)
    exported = _ok(api.get(f"/api/projects/{project_id}/export", params={"format": "coco"}))
    lost += abs(len(exported["annotations"]) - sum(len(ids) for ids in kept.values()))
    return lost


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
    }


def _totals(rows: list[dict]) -> dict:
    ours = sum(r["interactions"] for r in rows)
    by_hand = sum(r["manual"]["interactions"] for r in rows)
    # mask mode's polygons priced as COCO's, where every image has them (a failed one has not)
    coco = [r["manual"]["seconds_coco_polygon"] for r in rows if "seconds_coco_polygon" in r]
    coco = coco if len(coco) == len(rows) else []
    return {
        "interactions": ours,
        "seconds": round(sum(r["seconds"] for r in rows), 1),
        **(
            {"seconds_accepted_looked": round(sum(r["seconds_accepted_looked"] for r in rows), 1)}
            if rows and all("seconds_accepted_looked" in r for r in rows)
            else {}
        ),
        "manual_interactions": by_hand,
        "manual_seconds": round(sum(r["manual"]["seconds"] for r in rows), 1),
        **(
            {
                "seconds_coco_polygon": round(sum(coco), 1),
                "fewclick_seconds_coco_polygon": round(sum(r["seconds_coco_polygon"] for r in rows), 1),
            }
            if coco
            else {}
        ),
        "ratio_to_manual": round(by_hand / ours, 3) if ours else None,
        **(
            {
                "objects": sum(r["objects"] for r in rows),
                "polygons": sum(r["polygons"] for r in rows),
                "polygons_without_sam": sum(r.get("polygons_without_sam", 0) for r in rows),
                "edits": sum(r["edits"] for r in rows),
                "strokes": sum(r["strokes"] for r in rows),
                "proposals_accepted": sum(r.get("proposals_accepted", 0) for r in rows),
            }
            if rows and all("edits" in r for r in rows)
            else {}
        ),
        "manual_quality": all(r["manual_quality"] for r in rows),
        "failed_images": sum(bool(r.get("failed")) for r in rows),
        "waited_seconds": round(sum(r["waited_seconds"] for r in rows), 2),
    }


def _analytics(api: httpx.Client, project_id: int, rows: list[dict]) -> dict:
    """The app's analytics against the campaign's own count: interactions and active time."""
    got = _ok(api.get(f"/api/projects/{project_id}/analytics"))
    by_id = {r["image_id"]: r for r in got["images"]}
    app_interactions = sum(by_id.get(r["image_id"], {}).get("interactions", 0) for r in rows)
    app_seconds = sum(by_id.get(r["image_id"], {}).get("seconds", 0.0) for r in rows)
    ours_i = sum(r["interactions"] for r in rows)
    ours_s = sum(r["seconds"] for r in rows)
    return {
        "interactions": app_interactions,
        "seconds": round(app_seconds, 1),
        "interactions_difference": round(abs(app_interactions - ours_i) / max(ours_i, 1), 4),
        "seconds_difference": round(abs(app_seconds - ours_s) / max(ours_s, 1e-9), 4),
    }


def plot(report: dict, path: Path) -> None:
    """Per image, in the order annotated: interactions (left) and cost-model seconds (right),
    fewclick's against the baseline's; shaded where a trained version served."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = report["per_image"]
    x = np.arange(1, len(rows) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    ours = (
        "fewclick (clicks, accept, fix)"
        if report["mode"] == "detect"
        else "fewclick (proposals, box, corrective clicks)"
    )
    by_hand = "drawing by hand" if report["mode"] == "detect" else "polygons by hand"
    for ax, key in zip(axes, ("interactions", "seconds")):
        ax.plot(x, [r[key] for r in rows], "o-", label=ours)
        if all("pre_annotation" in r for r in rows):
            ax.plot(x, [r["pre_annotation"][key] for r in rows], "s--", label="pre-annotation, then fix")
        ax.plot(x, [r["manual"][key] for r in rows], "^:", label=by_hand)
        ax.set_xlabel("image (in the order annotated)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # images are counted whole
        ax.set_ylabel(key if key == "interactions" else "seconds (cost model)")
        ax.legend()
        mark_served(ax, rows)
    name, mode = Path(report["data"]).name, report["mode"]
    fig.suptitle(f"{name}, {mode} mode (train every {report['retrain_every']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--mode", choices=("detect", "mask"), default="detect")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--retrain-every",
        type=int,
        default=2,
        help="the app trains after this many finished images (0: never)",
    )
    p.add_argument(
        "--part",
        choices=("all", "train", "test"),
        default="all",
        help="only this part of the data's split by image (every 4th image by name is test)",
    )
    p.add_argument("--images", type=int, help="only the first N images by name")
    p.add_argument(
        "--start",
        choices=("auto", "click", "box"),
        default="auto",
        help="mask mode: a mask starts from a click in the object's middle (a box is dragged "
        "when the click's mask is under START_IOU), from a box dragged around it, or (auto, "
        "the default) with a click while click starts have paid for the class",
    )
    p.add_argument(
        "--stop",
        choices=("seconds", "iou"),
        default="seconds",
        help="mask mode: a person stops clicking once clicks stop saving seconds (the default) "
        "or stop gaining IoU (the rule before issue 54)",
    )
    p.add_argument(
        "--switch",
        choices=("seconds", "never"),
        default="seconds",
        help="mask mode: once SAM has cost more than outlining by hand on an image's first "
        "objects of a size (small, medium, large) made anew, its other objects of that size are "
        "outlined straight away (seconds, the default: WayMemory) or SAM is tried on every "
        "object (never: the rule before)",
    )
    p.add_argument(
        "--proposals",
        choices=("on", "off"),
        default="on",
        help="mask mode: whether the person uses the masks SAM proposes on open (off: the rule "
        "before issue 54's proposals, for comparison)",
    )
    p.add_argument(
        "--annotators", type=int, default=1, help="people at once, on different images (a load test)"
    )
    p.add_argument(
        "--think",
        action=argparse.BooleanOptionalAction,
        help="take a person's time (the cost model's seconds) before each action, so that "
        "several annotators load the app at a person's pace, starting spread over a minute "
        "(default: with --annotators > 1)",
    )
    p.add_argument(
        "--screenshot", type=Path, help="a PNG of the project page with its analytics afterwards (Chromium)"
    )
    add_work(p, "where the app's database, files and models go")
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on from the checkpoint a run with the same arguments left in --work after its "
        "last image (one annotator); without it a run starts afresh",
    )
    p.add_argument(
        "--trainer",
        action="store_true",
        help="start the project's background trainer once an image is finished, and after each "
        "image wait for the steps it would have trained in the person's seconds on it",
    )
    p.add_argument(
        "--trainer-seconds-per-step",
        type=float,
        default=TRAINER_SECONDS_PER_STEP,
        help="the trainer's speed on one idle core (--calibrate measures it on --data)",
    )
    p.add_argument(
        "--calibrate", action="store_true", help="measure the trainer's seconds per step on one core and stop"
    )
    return p


if __name__ == "__main__":
    with stop_on_signals():  # SIGTERM and SIGINT stop the server and its workers too
        sys.exit(main())
