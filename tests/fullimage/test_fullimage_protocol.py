"""The full-image protocol on made-up scenes: the ground-truth region map, the region
mIoU, and sessions whose scribbles help the box baseline and SAM's competing regions."""

import numpy as np
import pytest

from fewclick.io.dataset import ImageRecord
from fewclick.io.rle import mask_to_rle, rle_boxes
from fewclick.models.fullimage import VOID, region_map
from fewclick.predict.fullimage import BoxFill, SamCompete
from fewclick.protocols.fullimage import extreme_prompts, region_miou, run_session
from fewclick.types import Objects


def _record(masks, h=60, w=80):
    rles = [mask_to_rle(m) for m in masks]
    objects = Objects(labels=np.zeros(len(rles), np.int64), boxes=rle_boxes(rles), segmentations=rles)
    return ImageRecord("scene.png", w, h, objects)


def _disc(h, w, cx, cy, r):
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_the_region_map_adds_the_background_and_voids_tiny_regions_and_overlaps():
    a, b = _disc(60, 80, 20, 30, 12), _disc(60, 80, 30, 30, 8)  # overlapping discs
    tiny = _disc(60, 80, 70, 10, 1)
    gt, void_share = region_map(_record([a, b, tiny]), min_region=0.005)
    assert (gt[a & b] == VOID).all(), "pixels two objects claim are void"
    assert (gt[tiny] == VOID).all(), "a region under 0.5% of the image is void"
    assert sorted(np.unique(gt).tolist()) == [VOID, 0, 1, 2], "a, b and the background"
    assert (gt[~a & ~b & ~tiny] == 2).all() and void_share == pytest.approx((gt == VOID).mean())


def test_region_miou_leaves_void_out_and_counts_a_missed_region_as_zero():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, VOID]])
    assert region_miou(gt, np.array([[0, 0, 1, 1], [0, 0, 1, 0]])) == 1.0
    assert region_miou(gt, np.zeros_like(gt)) == pytest.approx((4 / 7 + 0) / 2)


def _scene():
    h, w = 60, 80
    image = np.zeros((h, w, 3), np.uint8)
    image[...] = (40, 60, 40)
    disc = _disc(h, w, 25, 30, 14)
    ring = _disc(h, w, 58, 30, 16) & ~_disc(h, w, 58, 30, 7)  # its box holds pixels of another region
    image[disc], image[ring] = (220, 60, 60), (60, 60, 220)
    gt, _ = region_map(_record([disc, ring], h, w))
    return image, gt


def test_scribbles_raise_the_box_baselines_miou_under_both_allocations():
    image, gt = _scene()
    for allocation in ("one_per_region", "free"):
        curve = run_session(BoxFill(), image, gt, 3, allocation, np.random.default_rng(0))
        assert len(curve) == 4 and curve[-1] > curve[0], (allocation, curve)


def test_extreme_prompts_are_on_their_regions():
    _, gt = _scene()
    for k, prompt in enumerate(extreme_prompts(gt)):
        xs, ys = prompt.extreme.points.astype(int).T
        assert (gt[ys, xs] == k).all()


def test_sam_compete_gives_every_pixel_one_region_and_beats_the_boxes(sam_files):
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.sam import SamPredictor

    image, gt = _scene()
    sam = SamCompete(SamPredictor(ImageEncoder(sam_files[0]), sam_files[1]))
    sam.set_image(image)
    labels = sam.predict(extreme_prompts(gt))
    assert labels.shape == gt.shape and set(np.unique(labels)) <= {0, 1, 2}
    boxes = BoxFill()
    boxes.set_image(image)
    assert region_miou(gt, labels) > region_miou(gt, boxes.predict(extreme_prompts(gt)))


class _DiscSam:
    """A stand-in SAM: inside the disc its box holds (logit 3), outside it (-3)."""

    def set_image(self, image):
        self.shape = image.shape[:2]

    def logits(self, box, clicks):
        x0, y0, x1, y1 = box
        r = min(x1 - x0, y1 - y0) / 2
        return np.where(_disc(*self.shape, (x0 + x1) / 2, (y0 + y1) / 2, r), 3.0, -3.0).astype(np.float32)


def _region(x0, y0, x1, y1, background=False):
    from fewclick.models.fullimage import RegionPrompt
    from fewclick.types import ExtremePoints

    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    points = np.array([[x0, cy], [cx, y0], [x1 - 1, cy], [cx, y1 - 1]], np.float32)
    return RegionPrompt(ExtremePoints(points), background=background)


NUCLEI = [(10, 10, 20, 20), (40, 30, 50, 40), (60, 10, 70, 20)]  # three of one class on an 80 x 60 image


@pytest.mark.parametrize(
    ("predictor", "background"),
    [(SamCompete(_DiscSam()), True), (BoxFill(), True), (SamCompete(_DiscSam()), False)],
)
def test_a_background_region_takes_the_pixels_no_object_claims(predictor, background):
    """Without it every pixel goes to some nucleus (the strips a new user saw)."""
    prompts = [_region(*box) for box in NUCLEI]
    if background:
        prompts.append(_region(0, 0, 80, 60, background=True))
    predictor.set_image(np.zeros((60, 80, 3), np.uint8))
    labels = predictor.predict(prompts)
    assert [labels[15, 15], labels[35, 45], labels[15, 65]] == [0, 1, 2]  # each nucleus keeps its centre
    far = {int(labels[55, 5]), int(labels[5, 40]), int(labels[50, 75])}
    assert far == {3} if background else far <= {0, 1, 2}
