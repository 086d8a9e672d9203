"""Batch jobs over every image of a dataset, in this process or on Ray.

A job is a class whose instances hold the model sessions (built once per worker) and
whose ``__call__`` takes a batch ``{"path": [...], "rel": [...]}`` and returns one row per
image. :func:`run` feeds it the dataset's images: in this process (one worker, the same
code), or with ``ray`` set, as Ray Data ``map_batches`` over actors, one per worker, each
with one intra-op thread. ``ray=""`` starts a local Ray; an address joins that cluster.

:class:`EncodeJob` writes each image's pretrained-encoder embedding as
``OUT/<relative image path>.npy`` (float32 ``[1, 256, 64, 64]``): the same file whatever
ran it. Files are written to a temporary name and renamed, so a job that stops leaves no
half-written embedding. An image that fails (unreadable, or the encoder refuses it) is
named in the error and the others are still written; a worker process that dies is
restarted by Ray Data, which runs its images again (its actors restart by default).

:func:`predict_dataset` never holds a large image whole: an image read by regions (a tiled
TIFF, GeoTIFF or slide) over :data:`PREDICT_WINDOW` px a side is split into windows of that
side overlapping by :data:`PREDICT_OVERLAP` px, each a batch item of its own (read by
:func:`fewclick.io.regions.load_pixels`), so that Ray spreads one image's windows over its
workers; the windows' boxes move into the image and those found twice are merged once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset
from fewclick.types import Detections

log = logging.getLogger(__name__)

__all__ = [
    "merge_windows",
    "window_items",
    "EncodeJob",
    "PredictJob",
    "BatchError",
    "run",
    "encode_dataset",
    "predict_dataset",
    "embedding_path",
]


class BatchError(RuntimeError):
    """A batch job that could not finish: names the image (or the cluster) that stopped it."""


def embedding_path(out: Path, rel: str) -> Path:
    """Where an image's embedding goes: ``out/<rel>.npy`` (``a/b.png`` -> ``a/b.png.npy``)."""
    return Path(out) / f"{rel}.npy"


class EncodeJob:
    """The pretrained image encoder over a batch of images (one intra-op thread)."""

    def __init__(self, out: str, encoder: str | None = None, threads: int = 1) -> None:
        from fewclick.predict.encoder import ImageEncoder

        self.out = Path(out)
        self.encoder = ImageEncoder(encoder, threads=threads, memory_items=1)

    def __call__(self, batch: dict) -> dict:
        from fewclick.io.images import load_image

        rows: dict[str, list] = {"rel": [], "read": [], "encode": [], "write": [], "error": []}
        for path, rel in zip(batch["path"], batch["rel"], strict=True):
            times = [time.perf_counter()]
            try:
                image = load_image(str(path))
                times.append(time.perf_counter())
                embedding = self.encoder.encode(image, key=str(rel)).embedding
                times.append(time.perf_counter())
                target = embedding_path(self.out, str(rel))
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f"{target.name}.{os.getpid()}.part")
                with open(partial, "wb") as f:
                    np.save(f, embedding.astype(np.float32))
                os.replace(partial, target)
                times.append(time.perf_counter())
                rows["error"].append("")
            except Exception as exc:  # named per image; the driver raises with the first one
                rows["error"].append(f"{type(exc).__name__}: {exc}")
            times += [times[-1]] * (4 - len(times))
            rows["rel"].append(str(rel))
            for key, (a, b) in zip(("read", "encode", "write"), zip(times, times[1:]), strict=True):
                rows[key].append(b - a)
        return rows


class PredictJob:
    """A trained click-to-detect model's pre-annotation (no clicks) over a batch of images:
    per image its boxes, oriented boxes (when the model has them), scores and labels."""

    def __init__(self, model: str, threads: int = 1, score_threshold: float | None = None) -> None:
        import torch

        from fewclick.predict.detect import ClickDetector, DecodeConfig

        torch.set_num_threads(threads)
        decode = None if score_threshold is None else DecodeConfig(score_threshold=score_threshold)
        self.detector = ClickDetector.load(model, decode=decode, encoder_threads=threads)

    def __call__(self, batch: dict) -> dict:
        return _per_image(batch, "detections", self._detect)

    def _detect(self, image: np.ndarray, item: dict) -> str:
        self.detector.set_image(image)
        return _detections_text(self.detector.predict([]))


def _detections_text(det: Detections) -> str:
    """A row's ``detections``: JSON of the boxes, scores, labels and oriented boxes."""
    return json.dumps(
        {
            "boxes": det.boxes.tolist(),
            "scores": det.scores.tolist(),
            "labels": det.labels.tolist(),
            "rboxes": None if det.rboxes is None else det.rboxes.tolist(),
        }
    )


class RefineJob:
    """A trained CPRNet's point refinement (CPR) over a batch of images: per image, its
    annotated points (``points``, JSON ``[[x, y], ...]``) with their class ids (``labels``,
    JSON) moved to their objects' semantic centres."""

    def __init__(self, model: str, threads: int = 1) -> None:
        import torch

        from fewclick.predict.points import PointRefiner

        torch.set_num_threads(threads)
        self.refiner = PointRefiner.load(model)

    def __call__(self, batch: dict) -> dict:
        return _per_image(batch, "points", self._refine)

    def _refine(self, image: np.ndarray, item: dict) -> str:
        points = np.asarray(json.loads(str(item["points"])), np.float32).reshape(-1, 2)
        if len(points):
            self.refiner.set_image(image)
            points = self.refiner.refine(points, np.asarray(json.loads(str(item["labels"])), np.int64))
        return json.dumps(points.tolist())


def _per_image(batch: dict, column: str, answer: Callable[[np.ndarray, dict], str]) -> dict:
    """One row per image (or window of a large one) of ``batch``: ``answer(image, item)``
    (text) in ``column``, the seconds to read the image (``read``) and to answer
    (``model``), and the error ('' when none), named per image: the driver raises with the
    first one."""
    from fewclick.io.regions import load_pixels

    rows: dict[str, list] = {"rel": [], column: [], "read": [], "model": [], "error": []}
    for values in zip(*batch.values(), strict=True):
        item = dict(zip(batch, values, strict=True))
        started = read = time.perf_counter()
        out, error = "", ""
        try:
            image = load_pixels(str(item["path"]))
            read = time.perf_counter()
            out = answer(image, item)
        except Exception as exc:  # one image's failure does not stop the others
            error = f"{type(exc).__name__}: {exc}"
        rows["rel"].append(str(item["rel"]))
        rows[column].append(out)
        rows["read"].append(read - started)
        rows["model"].append(time.perf_counter() - read)
        rows["error"].append(error)
    return rows


#: a large image's pre-annotation windows: their side and their overlap, level-0 pixels
PREDICT_WINDOW, PREDICT_OVERLAP = 2048, 256


def window_items(items: list[dict]) -> tuple[list[dict], dict[str, list]]:
    """The batch items of ``items`` (``{"path", "rel"}``): an image as it is, a large image
    read by regions as its windows; and per large image's ``rel``, its windows' item names,
    tiles and cores (for :func:`merge_windows`). A window's core is what it owns: up to the
    middle of its overlaps with its neighbours (the image's sides where it has none)."""
    from fewclick.io.regions import cached_regions, window_path
    from fewclick.io.tiling import Tile, window_cores

    out, windows = [], {}
    for item in items:
        try:
            regions = cached_regions(item["path"])
        except (OSError, ValueError):  # unreadable: its item fails when it is read, named
            regions = None
        if regions is None or max(regions.width, regions.height) <= PREDICT_WINDOW:
            out.append(item)
            continue
        parts = windows[item["rel"]] = []
        xs, ys = _starts(regions.width), _starts(regions.height)
        x_cores = window_cores(xs, regions.width, PREDICT_WINDOW)
        y_cores = window_cores(ys, regions.height, PREDICT_WINDOW)
        for y0, y_core in zip(ys, y_cores, strict=True):
            for x0, x_core in zip(xs, x_cores, strict=True):
                x1, y1 = min(x0 + PREDICT_WINDOW, regions.width), min(y0 + PREDICT_WINDOW, regions.height)
                rel = window_path(item["rel"], (x0, y0, x1, y1))
                out.append({"path": window_path(item["path"], (x0, y0, x1, y1)), "rel": rel})
                parts.append((rel, Tile(x0, y0, x1, y1), (x_core[0], y_core[0], x_core[1], y_core[1])))
    return out, windows


def merge_windows(rows: list[dict], windows: dict[str, list]) -> list[dict]:
    """:class:`PredictJob`'s rows with each large image's window rows made one row of its
    own: the windows' boxes moved into the image, each kept by the one window whose core
    holds its centre (:func:`fewclick.io.tiling.owned`: an object found by two overlapping
    windows is kept once, with no NMS across tens of thousands of boxes), highest score
    first; its error the first of its windows' ('' when none)."""
    from fewclick.io.tiling import owned

    by_rel = {row["rel"]: row for row in rows}
    image_of = {rel: name for name, parts in windows.items() for rel, _, _ in parts}
    out, merged = [], set()
    for row in rows:
        name = image_of.get(row["rel"])
        if name is None:
            out.append(row)
            continue
        if name in merged:
            continue
        merged.add(name)
        parts = [(tile, core, by_rel[rel]) for rel, tile, core in windows[name] if rel in by_rel]
        missing = [rel for rel, _, _ in windows[name] if rel not in by_rel]
        errors = [f"no result came back for window {missing[0]!r}"] if missing else []
        errors += [r["error"] for _, _, r in parts if r["error"]]
        kept = [owned(detections_of(r), tile, core) for tile, core, r in parts if not r["error"]]
        det = Detections.concatenate(kept) if kept else Detections.empty()
        det = det[np.argsort(-det.scores, kind="stable")]
        text = "" if errors else _detections_text(det)
        seconds = {k: sum(r[k] for _, _, r in parts) for k in row if k not in _TEXT_COLUMNS}
        out.append({**seconds, "rel": name, "detections": text, "error": errors[0] if errors else ""})
    return out


def _starts(extent: int) -> list[int]:
    """Window starts along a side of ``extent`` px: every ``PREDICT_WINDOW - PREDICT_OVERLAP``,
    the last window ending at the side's end."""
    step = PREDICT_WINDOW - PREDICT_OVERLAP
    starts = list(range(0, max(extent - PREDICT_WINDOW, 0) + 1, step))
    if starts[-1] + PREDICT_WINDOW < extent:
        starts.append(extent - PREDICT_WINDOW)
    return starts


def _items(dataset: Dataset) -> list[dict]:
    items = []
    for rec in dataset.images:
        if rec.path is None or not Path(rec.path).is_file():
            raise BatchError(f"image {rec.file_name!r}: no image file found (path {rec.path})")
        items.append({"path": str(Path(rec.path).resolve()), "rel": rec.file_name})
    if not items:
        raise BatchError("the dataset has no images to run on")
    return items


def run(
    job: type,
    items: list[dict],
    options: dict,
    ray: str | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Rows of ``job(**options)`` over ``items``, in item order; see the module doc."""
    if ray is None:
        worker = job(**options)
        rows = []
        for item in items:
            out = worker({key: [value] for key, value in item.items()})
            rows.append({k: v[0] for k, v in out.items()})
            if progress:
                progress(1)
        return rows
    return _run_on_ray(job, items, options, ray, workers, progress)


#: Ray's own logging kept to warnings: the job shows its progress bar instead.
_QUIET = {"log_to_driver": False, "include_dashboard": False, "logging_level": logging.WARNING}


def _run_on_ray(
    job: type, items: list[dict], options: dict, address: str, workers: int, progress
) -> list[dict]:
    try:
        import ray
        import ray.data
    except ImportError:
        raise BatchError("--ray needs Ray: pip install 'fewclick[ray]'") from None
    if address:
        _check_answers(address)
    if ray.is_initialized():  # a batch command owns its Ray connection: start from none
        ray.shutdown()
    try:
        if address:
            ray.init(address=address, **_QUIET)
        else:
            ray.init(num_cpus=max(workers, 1), **_QUIET)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BatchError(f"no Ray cluster answers at {address or 'a new local Ray'}: {exc}") from None
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # one image a block: the progress bar moves with every image
        data = ray.data.from_items(items, override_num_blocks=len(items))
        rows = data.map_batches(
            job,
            fn_constructor_kwargs=options,
            batch_size=1,
            batch_format="numpy",
            concurrency=workers,
            num_cpus=1,
        )
        by_rel = {}
        for row in rows.iter_rows():
            by_rel[str(row["rel"])] = {k: _scalar(k, v) for k, v in row.items()}
            if progress:
                progress(1)
    finally:  # the local Ray stops with the job, also when it fails
        ray.shutdown()
    return [by_rel[item["rel"]] for item in items if item["rel"] in by_rel]


def _scalar(key: str, value) -> str | float:
    return str(value) if key in _TEXT_COLUMNS else float(value)


def _check_answers(address: str, timeout: float = 3.0) -> None:
    """A BatchError unless something listens at a ``host:port`` (or ``ray://host:port``)
    address, within ``timeout`` seconds (``ray.init`` itself waits much longer)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray resolves them itself
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise BatchError(f"no Ray cluster answers at {address}: {exc}") from None


def _finished(rows: list[dict], items: list[dict]) -> None:
    """A BatchError naming the first image that failed or never came back."""
    failed = [r for r in rows if r["error"]]
    if failed:
        raise BatchError(f"image {failed[0]['rel']!r}: {failed[0]['error']} ({len(failed)} image(s) failed)")
    if len(rows) != len(items):
        done = {r["rel"] for r in rows}
        missing = [i["rel"] for i in items if i["rel"] not in done]
        raise BatchError(f"image {missing[0]!r}: no result came back ({len(missing)} image(s) missing)")


#: Row columns that are not seconds.
_TEXT_COLUMNS = ("rel", "error", "detections", "points")


def _summary(rows: list[dict], seconds: float, workers: int, ray: str | None) -> dict:
    """The run's summary: images, wall-clock seconds, images per second, and the mean
    seconds per image of each step the job timed (``read``, ``encode``, ...)."""
    steps = [k for k in rows[0] if k not in _TEXT_COLUMNS]
    return {
        "images": len(rows),
        "seconds": round(seconds, 3),
        "images_per_second": round(len(rows) / seconds, 4) if seconds else None,
        **{f"{k}_seconds_per_image": round(float(np.mean([r[k] for r in rows])), 4) for k in steps},
        "workers": workers,
        "runner": "in-process" if ray is None else f"ray ({ray or 'local'})",
    }


def _run_all(
    job: type, items: list[dict], options: dict, ray: str | None, workers: int, what: str
) -> tuple[list[dict], dict]:
    """:func:`run` with a progress bar named ``what``: the rows, and the run's summary; a
    BatchError names the first image that failed or never came back."""
    from tqdm import tqdm

    started = time.perf_counter()
    with tqdm(total=len(items), desc=what, unit="image") as bar:
        rows = run(job, items, options, ray, workers, bar.update)
    seconds = time.perf_counter() - started
    _finished(rows, items)
    summary = _summary(rows, seconds, workers, ray)
    log.info("%s: %d images in %.1f s (%s)", what, len(items), seconds, summary["runner"])
    return rows, summary


def detections_of(row: dict) -> Detections:
    """A :class:`PredictJob` row's detections."""
    found = json.loads(row["detections"])
    rboxes = None if found["rboxes"] is None else np.asarray(found["rboxes"], np.float32).reshape(-1, 5)
    return Detections(
        np.asarray(found["boxes"], np.float32).reshape(-1, 4),
        np.asarray(found["scores"], np.float32),
        np.asarray(found["labels"], np.int64),
        rboxes=rboxes,
    )


def predict_dataset(
    dataset: Dataset,
    model: Path,
    out: Path,
    ray: str | None = None,
    workers: int = 1,
    score_threshold: float | None = None,
) -> dict:
    """Pre-annotate every image of ``dataset`` with the trained detector ``model`` (a
    checkpoint, or a training folder holding ``last.pt``) and write the detections with
    their scores (those at ``score_threshold`` or above; None: the detector's default) as a
    COCO results JSON at ``out``; returns the run's summary (``images`` counts the images;
    with large images, ``windows`` the windows and small images run, and each step's mean
    seconds are per window)."""
    from fewclick.io.results import write_results

    model = Path(model)
    if model.is_dir():
        model = model / "last.pt"
    if not model.is_file():
        raise BatchError(
            f"{model}: no trained detector here (`fewclick train detect --out DIR` writes DIR/last.pt)"
        )
    options = {"model": str(model), "score_threshold": score_threshold}
    items, windows = window_items(_items(dataset))
    rows, summary = _run_all(PredictJob, items, options, ray, workers, "predict")
    found = {row["rel"]: detections_of(row) for row in merge_windows(rows, windows)}
    write_results(out, dataset, [found[rec.file_name] for rec in dataset.images])
    if windows:  # the rows were windows: the summary counts the images, and says so of its steps
        summary["windows"] = summary["images"]
        summary["images"] = len(dataset.images)
        seconds = summary["seconds"]
        summary["images_per_second"] = round(len(dataset.images) / seconds, 4) if seconds else None
        summary["steps_per"] = "window (or small image)"
    summary["large_images"] = len(windows)
    return summary


def refine_dataset(
    dataset: Dataset, model: Path, ray: str | None = None, workers: int = 1
) -> tuple[list[np.ndarray], dict]:
    """Refine every image's annotated points (each object's box centre, else its point, as
    CPR training takes them) with the CPRNet checkpoint ``model``: the refined points per
    image, in dataset order, and the run's summary. A BatchError names the first image that
    failed."""
    from fewclick.predict.points import PointRefiner

    classes = PointRefiner.load(model).classes
    if list(classes) != list(dataset.classes):
        raise BatchError(f"the model's classes {classes} are not the dataset's {dataset.classes}")
    items = _items(dataset)
    for item, rec in zip(items, dataset.images, strict=True):
        xy = rec.objects.centers
        missing = ~np.isfinite(xy).all(1)
        if missing.any():
            raise BatchError(
                f"{rec.file_name}: object {int(np.flatnonzero(missing)[0])} has no point and no box"
            )
        item["points"], item["labels"] = json.dumps(xy.tolist()), json.dumps(rec.objects.labels.tolist())
    rows, summary = _run_all(RefineJob, items, {"model": str(model)}, ray, workers, "refine points")
    return [np.asarray(json.loads(row["points"]), np.float32).reshape(-1, 2) for row in rows], summary


def encode_dataset(
    dataset: Dataset,
    out: Path,
    ray: str | None = None,
    workers: int = 1,
    encoder: str | None = None,
) -> dict:
    """Encode every image of ``dataset`` into ``out`` (see :class:`EncodeJob`) and write
    ``out/summary.json``; returns that summary. A BatchError names the first image that
    failed (its embedding is not written; the others are)."""
    out = Path(out)
    items = _items(dataset)
    out.mkdir(parents=True, exist_ok=True)
    _, summary = _run_all(EncodeJob, items, {"out": str(out), "encoder": encoder}, ray, workers, "encode")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
