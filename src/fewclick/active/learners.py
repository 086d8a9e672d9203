"""The detector an active-learning run trains, on either backbone, behind one interface.

A learner holds the training units (images, or encoder tiles) and the test units, and
knows how to train a plain detector (no clicks) on some units' objects, fine-tune it from
the last episode's, predict on units, score it on the test units, and give the features
the core-set measures compare:

- :class:`PretrainedLearner`: the neck and head on the frozen maps of the pretrained
  encoder, held in memory per unit (:class:`fewclick.train.detect_pretrained.FeatureTile`);
  box features are the encoder's maps averaged in the box (the same whatever the model);
- :class:`PixelLearner`: the detector on the images' own pixels, from scratch or on an
  ImageNet-pretrained EfficientNet-Lite fine-tuned end to end (``backbone="imagenet"``,
  :mod:`fewclick.models.imagenet`: the paper's detector starts from ImageNet too); box
  features are the detector's own stride-4 features averaged in the box, so they follow
  the episode's model, as the paper's FC features of its detector do.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import roi_align

from fewclick.active.pool import box_features as encoder_box_features
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.metrics.detection import evaluate_detections
from fewclick.models.backbone import PRETRAINED_MAPS
from fewclick.models.detector import DetectorConfig, load_detector
from fewclick.predict.detect import ClickDetector, DecodeConfig, detect_feature_maps
from fewclick.train.detect import TrainConfig, train_detector
from fewclick.train.detect_pretrained import FeatureTile, PretrainedTrainConfig, train_pretrained_detector
from fewclick.types import Objects

BACKBONES = ("imagenet", "scratch", "pretrained")


@dataclass(frozen=True)
class Fit:
    """How a learner trains: ``steps``, and ``init``, the checkpoint it starts from (None:
    from scratch, at the trainer's own learning rate and warm-up)."""

    steps: int
    seed: int = 0
    init: Path | None = None
    lr: float = 1e-3  # when fine-tuning
    warmup: int = 10  # when fine-tuning


class PretrainedLearner:
    """Units are encoder tiles (maps in memory, objects in encoder input pixels)."""

    backbone = "pretrained"

    def __init__(self, units: list[FeatureTile], test: list[FeatureTile], classes: list[str]) -> None:
        self.units, self.test, self.classes = units, test, list(classes)

    @property
    def ground_truth(self) -> list[Objects]:
        return [u.objects for u in self.units]

    def shape(self, unit: int) -> tuple[int, int]:
        """(height, width) of the unit's input, in the pixels its objects are in."""
        return self.units[unit].valid

    def train(self, objects: dict[int, Objects], out: Path, fit: Fit) -> Path:
        tiles = [replace(self.units[u], objects=o) for u, o in sorted(objects.items())]
        train = PretrainedTrainConfig(steps=fit.steps, seed=fit.seed)
        if fit.init is not None:
            train = replace(train, init=str(fit.init), lr=fit.lr, warmup_steps=fit.warmup)
        config = DetectorConfig(
            num_classes=len(self.classes), method="plain", backbone="pretrained", uel=False
        )
        return train_pretrained_detector(tiles, self.classes, out, config, train)

    def predict(self, model: Path, which: list[int], decode: DecodeConfig, test: bool = False) -> dict:
        units = self.test if test else self.units
        net, _ = load_detector(model)
        net = net.to(memory_format=torch.channels_last)
        return {
            u: detect_feature_maps(net, _valid_maps(units[u]), [units[u].valid], decode)[0] for u in which
        }

    def box_features(self, model: Path, unit: int, boxes: np.ndarray) -> np.ndarray:
        maps = [torch.from_numpy(m[None]) for m in self.units[unit].maps]
        return encoder_box_features(maps, boxes)

    def image_feature(self, model: Path, unit: int) -> np.ndarray:
        h, w = self.units[unit].valid
        return self.box_features(model, unit, np.array([[0, 0, w, h]], np.float32))[0]


class PixelLearner:
    """Units are whole images (pixels and objects in image pixels). ``backbone`` "scratch"
    or "imagenet"; ``input_scale`` as :class:`~fewclick.train.detect.TrainConfig`'s (a
    warm start keeps its model's); ``threads`` torch's, in training."""

    def __init__(
        self,
        records: list[ImageRecord],
        test: list[ImageRecord],
        classes: list[str],
        backbone: str = "scratch",
        input_scale: float | str = 1.0,
        threads: int = 2,
    ) -> None:
        if backbone not in ("scratch", "imagenet"):
            raise ValueError(
                f"a learner on the pixels takes backbone 'scratch' or 'imagenet', not {backbone!r}"
            )
        self.units, self.test, self.classes = records, test, list(classes)
        self.backbone, self.input_scale, self.threads = backbone, input_scale, threads
        self._net: tuple[Path, torch.nn.Module] | None = None  # the last model read, for its features

    @property
    def ground_truth(self) -> list[Objects]:
        return [r.objects for r in self.units]

    def shape(self, unit: int) -> tuple[int, int]:
        """(height, width) of the unit's image."""
        return self.units[unit].extra["pixels"].shape[:2]

    def train(self, objects: dict[int, Objects], out: Path, fit: Fit) -> Path:
        shutil.rmtree(out, ignore_errors=True)  # a fresh run: train_detector resumes what it finds
        records = [replace(self.units[u], objects=o) for u, o in sorted(objects.items())]
        data = Dataset(self.classes, records, "fewclick")
        config = DetectorConfig(
            num_classes=len(self.classes), method="plain", uel=False, backbone=self.backbone
        )
        train = TrainConfig(
            steps=fit.steps,
            min_steps=0,
            seed=fit.seed,
            val_every=10**9,
            warmup_steps=10,
            threads=self.threads,
            input_scale=self.input_scale,
        )
        if fit.init is not None:
            train = replace(train, init=str(fit.init), lr=fit.lr, warmup_steps=fit.warmup, input_scale="auto")
        return train_detector(data, out, config, train)

    def predict(self, model: Path, which: list[int], decode: DecodeConfig, test: bool = False) -> dict:
        units = self.test if test else self.units
        net, ckpt = load_detector(model)
        detector = ClickDetector(net, ckpt["classes"], decode)
        out = {}
        for u in which:
            detector.set_image(units[u].extra["pixels"])
            out[u] = detector.predict()
        return out

    def box_features(self, model: Path, unit: int, boxes: np.ndarray) -> np.ndarray:
        """The detector's stride-4 features averaged in each box, unit-normalised."""
        from fewclick.models.detector import normalise

        if self._net is None or self._net[0] != model:  # read once for all the units of an episode
            self._net = (model, load_detector(model)[0])
        net = self._net[1]
        pixels = torch.from_numpy(normalise(self.units[unit].extra["pixels"]))[None]
        with torch.inference_mode():
            features = net.backbone(_pad16(pixels))
            rois = torch.cat([torch.zeros(len(boxes), 1), torch.from_numpy(np.asarray(boxes, np.float32))], 1)
            pooled = roi_align(features, rois, output_size=1, spatial_scale=1 / net.stride, aligned=True)
        return torch.nn.functional.normalize(pooled.flatten(1), dim=1).numpy()

    def image_feature(self, model: Path, unit: int) -> np.ndarray:
        r = self.units[unit]
        return self.box_features(model, unit, np.array([[0, 0, r.width, r.height]], np.float32))[0]


def test_map(learner, model: Path, decode: DecodeConfig) -> float:
    """VOC07 mAP@0.5 of ``model`` on the learner's test units."""
    n = len(learner.test)
    preds = learner.predict(model, list(range(n)), decode, test=True)
    gts = [u.objects for u in learner.test]
    return float(
        np.nan_to_num(evaluate_detections(gts, [preds[i] for i in range(n)], len(learner.classes)).map)
    )


def _valid_maps(unit: FeatureTile) -> list[torch.Tensor]:
    """A unit's maps (``[1, C, h, w]`` float32, channels last) cut to the input it fills,
    rounded up to the coarsest stride: the padding costs the head as much as the image."""
    vh, vw = (-(-side // 16) * 16 for side in unit.valid)
    out = []
    for (stride, _), m in zip(PRETRAINED_MAPS, unit.maps):
        part = torch.from_numpy(np.ascontiguousarray(m[:, : vh // stride, : vw // stride])).float()[None]
        out.append(part.contiguous(memory_format=torch.channels_last))
    return out


def _pad16(pixels: torch.Tensor) -> torch.Tensor:
    h, w = pixels.shape[-2:]
    return torch.nn.functional.pad(pixels, (0, -w % 16, 0, -h % 16))


__all__ = ["BACKBONES", "Fit", "PretrainedLearner", "PixelLearner", "test_map"]
