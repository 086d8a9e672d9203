"""The mask models a project's training job makes (:mod:`fewclick.server.jobs.training`):
M_b and M_b+c, the mask-quality ranker, and SAM's decoder tuned to the project
(:func:`train_masks`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.io.rle import objects_masks
from fewclick.server.serving import (
    RANKER_FILE,
    Trained,
    TrainingRun,
    record_key,
)

MIN_MASKS = 8  # finished masks before M_b and M_b+c train
RANKER_INSTANCES = 300


def train_masks(run: TrainingRun) -> Trained:
    """M_b and M_b+c, then the mask-quality ranker on simulated sessions over the finished
    masks (one click per round, as the app re-predicts after every click; the annotator
    stops when no error is over 5% of the object). The finished masks are the models'
    training masks too, so its estimates lean high until more images are finished. With
    SAM's files, the app's ``run.embeddings`` and :data:`TUNE_MASKS` finished masks, half the
    time (at least :data:`TUNE_MINUTES`) goes to tuning SAM's decoder (:func:`_tune_sam`)."""
    from fewclick.predict.segment import MaskPredictor
    from fewclick.protocols.segment import RoundsConfig, run_rounds
    from fewclick.protocols.segment_run import InstanceItems
    from fewclick.quality.ranker import QualityRanker
    from fewclick.server.serving import sam_available
    from fewclick.train.segment import SegmentTrainConfig, train_segmenter

    data, out, progress, steps = run.data, run.out, run.progress, run.steps
    progress(0, 1)
    tune = run.embeddings is not None and sam_available()
    masks = sum(1 for r in data.images for m in (r.objects.segmentations or []) if m is not None)
    if tune and masks < TUNE_MASKS:
        why = f"needs {TUNE_MASKS} finished masks, the project has {masks}"
        tune, metrics = False, {"sam_decoder": {"serves": False, "why": why}}
    else:
        metrics = None
    share = run.minutes / 2 if tune else run.minutes
    train_segmenter(data, out, train=SegmentTrainConfig(budget_minutes=share, steps=steps))
    sessions = run_rounds(
        MaskPredictor.load(out),
        InstanceItems(data),
        RoundsConfig(rounds=6, clicks_per_round=1, min_region_fraction=0.05, max_instances=RANKER_INSTANCES),
        progress=False,
    )
    if len(sessions.final_ious) >= MIN_MASKS:
        ranker = QualityRanker(with_score=True).fit(sessions.features, sessions.final_ious, sessions.scores)
        ranker.save(out / RANKER_FILE)
    if tune:  # at least TUNE_MINUTES: a job that starts by itself has 1 minute for every model
        tuning = _tune_sam(data, out, max(share, TUNE_MINUTES), steps, run.embeddings, run.project_id)
        metrics = {"sam_decoder": tuning}
    progress(1, 1)
    return Trained(out, metrics=metrics)


TUNE_MASKS = 10  # finished masks before SAM's decoder is tuned to the project
TUNE_MINUTES = 3.0  # SAM's decoder tunes at least this long (on one core, in the job's process)
TUNE_GAIN = 0.005  # the held-out mIoU (the SCORES, averaged) a tuned decoder must gain to serve
SCORES = ("box_mIoU", "clicks_mIoU", "click_mIoU")  # train.sam_decoder.score_decoder's
#: held-out masks before a tuned decoder may serve: a campaign's decoder kept on 3 (coco_tiny,
#: +0.24 box mIoU there) cost 15% more interactions on the next 10 images than the pretrained one
#: (docs/benchmarks/campaign.md, session 44)
MIN_HELD_OUT = 20
MAX_TUNE_MASKS = 2000  # masks read for tuning at most


def _tune_sam(data, out: Path, minutes: float, steps: int | None, embeddings: str, project_id) -> dict:
    """SAM's decoder fine-tuned on the finished masks of all but every 4th finished image,
    scored against the pretrained decoder on those held out (box alone, box and 2 clicks,
    one click alone). With fewer than :data:`MIN_HELD_OUT` held-out masks it never serves. It
    is written beside the mask model (``backends.TUNED_DECODER``) only when it gains more
    than :data:`TUNE_GAIN` there; what was measured is returned either way."""
    from fewclick.train.sam_decoder import examples_from

    records = sorted(data.images, key=lambda r: r.id)
    held = [r for i, r in enumerate(records) if i % 4 == 3]
    fit = [r for i, r in enumerate(records) if i % 4 != 3]
    from fewclick.server.embeddings import cache_encoder

    encoder = cache_encoder(embeddings, threads=1)

    def examples(recs: list) -> list:  # one image in memory at a time
        made = []
        for rec in recs:
            segs = rec.objects.segmentations or [None] * len(rec.objects)
            keep = ~np.asarray(rec.objects.ignore, bool) & np.array([s is not None for s in segs], bool)
            if not keep.any():  # boxes only: no mask to learn from
                continue
            image = rec.load_image()
            e = encoder.encode(image, key=record_key(project_id, rec))
            masks = objects_masks(rec.objects[keep], *image.shape[:2])
            encoded = (e.embedding, e.input_size)
            made += examples_from([(image, masks)], lambda _, got=encoded: got, MAX_TUNE_MASKS - len(made))
            if len(made) >= MAX_TUNE_MASKS:
                break
        return [x for x in made if (x.target > 0.5).any()]  # too small for SAM's 256 x 256 frame: left out

    try:
        return _tuned(examples(held), examples(fit), out, minutes, steps)
    except ValueError as exc:  # a template that is no SAM decoder, masks that leave nothing to learn
        return {"serves": False, "why": f"could not be tuned ({exc})"}


def _tuned(held_out: list, tuning: list, out: Path, minutes: float, steps: int | None) -> dict:
    """:func:`_tune_sam`'s tuning and scoring of the examples made."""
    from fewclick.models.sam_decoder import SamDecoder
    from fewclick.predict.backends import TUNED_DECODER
    from fewclick.predict.pretrained import default_model_files
    from fewclick.train.sam_decoder import TuneConfig, score_decoder, tune_decoder

    if not held_out or not tuning:
        return {
            "serves": False,
            "why": "needs finished masks on at least 4 finished images (1 in 4 held out)",
        }
    template = default_model_files()[1]
    frozen = score_decoder(SamDecoder.from_onnx(template), held_out)
    config = TuneConfig(steps=steps, budget_minutes=None if steps else minutes, threads=1)
    result = tune_decoder(SamDecoder.from_onnx(template), tuning, config)
    tuned = score_decoder(result.decoder, held_out)
    gain = float(np.mean([tuned[k] - frozen[k] for k in SCORES]))
    few = len(held_out) < MIN_HELD_OUT
    serves = bool(gain > TUNE_GAIN) and not few
    if serves:
        result.decoder.write_onnx(template, Path(out) / TUNED_DECODER)
    return {
        "serves": serves,
        **(
            {"why": f"was scored on {len(held_out)} held-out masks, too few to trust (needs {MIN_HELD_OUT})"}
            if few
            else {}
        ),
        "held_out_masks": len(held_out),
        "tuning_masks": len(tuning),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "pretrained": {k: round(frozen[k], 4) for k in SCORES},
        "tuned": {k: round(tuned[k], 4) for k in SCORES},
        "offsets": result.decoder.iou_offsets or {},
    }
