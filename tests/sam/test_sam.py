"""The pretrained encoder and SamPredictor on the real ONNX pair (skipped, naming the fix,
when the set-up has not fetched it): shapes, the caches, images of any kind, the prompts,
``previous`` and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.metrics.segmentation import mask_iou
from fewclick.predict.encoder import Embedding, ImageEncoder, preprocess, resized_size
from fewclick.predict.sam import SamPredictor, click_centre, upscale_mask
from fewclick.types import Clicks


def _scene(h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A grey textured background with one red disc; (image, disc mask)."""
    rng = np.random.default_rng(0)
    image = (rng.normal(110, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:h, :w]
    disc = (xs - w * 0.55) ** 2 + (ys - h * 0.45) ** 2 < (min(h, w) * 0.18) ** 2
    image[disc] = (200, 40, 40)
    return image, disc


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.fixture(scope="module")
def encoder(sam_files, tmp_path_factory) -> ImageEncoder:
    return ImageEncoder(sam_files[0], threads=2, cache_dir=tmp_path_factory.mktemp("embeddings"))


@pytest.fixture(scope="module")
def sam(encoder, sam_files) -> SamPredictor:
    predictor = SamPredictor(encoder, sam_files[1])
    predictor.set_image(_scene()[0])
    return predictor


@pytest.mark.parametrize(
    "h, w, expected", [(240, 320, (768, 1024)), (1024, 1024, (1024, 1024)), (3000, 10, (1024, 3))]
)
def test_the_longest_side_becomes_1024(h, w, expected):
    assert resized_size(h, w) == expected
    x, size = preprocess(np.zeros((h, w, 3), np.uint8))
    assert x.shape == (1, 3, 1024, 1024) and size == expected
    assert (x[0, :, size[0] :, :] == 0).all() and (x[0, :, :, size[1] :] == 0).all()  # zero padding


def test_the_encoder_gives_the_embedding_and_three_feature_maps(encoder):
    e = encoder.encode(_scene()[0], features=True)
    assert e.embedding.shape == (1, 256, 64, 64) and e.embedding.dtype == np.float32
    assert {s: m.shape for s, m in e.features.items()} == {
        4: (1, 64, 256, 256),
        8: (1, 128, 128, 128),
        16: (1, 160, 64, 64),
    }
    assert e.image_size == (240, 320) and e.input_size == (768, 1024)


def test_a_cached_embedding_is_not_computed_again_in_memory_or_from_disk(encoder, sam_files, monkeypatch):
    image = _scene(200, 200)[0]
    first = encoder.encode(image, key="scene-200")
    assert encoder.encode(image, key="scene-200") is first
    again = ImageEncoder(sam_files[0], cache_dir=encoder.cache_dir)  # a new process, the same folder
    monkeypatch.setattr(again.session, "run", lambda *a, **k: pytest.fail("encoded again"))
    from_disk = again.encode(image, key="scene-200")
    np.testing.assert_allclose(from_disk.embedding, first.embedding, atol=2e-2, rtol=1e-2)  # float16 on disk
    assert from_disk.image_size == (200, 200)


def test_the_disk_cache_keeps_its_budget_dropping_the_least_recently_used(sam_files, tmp_path, monkeypatch):
    import os

    enc = ImageEncoder(sam_files[0], cache_dir=tmp_path, disk_mb=5)  # room for two 2 MB embeddings
    monkeypatch.setattr(enc.session, "run", lambda *a, **k: [np.ones((1, 256, 64, 64), np.float32)])
    image = np.zeros((64, 64, 3), np.uint8)
    for key in "ab":
        enc.encode(image, key=key)
    for age, key in enumerate("ab"):  # a written before b, long ago
        os.utime(tmp_path / f"{key}.npz", (1000 + age, 1000 + age))
    (tmp_path / "c.123-4.tmp.npz").write_bytes(b"x" * 2**19)  # another writer's, unfinished
    again = ImageEncoder(sam_files[0], cache_dir=tmp_path, disk_mb=5)  # a, read from disk: used
    assert again.cached("a") is not None
    enc.encode(image, key="c")  # 6.5 MB: b goes; the file being written stays
    assert sorted(f.name for f in tmp_path.glob("*.npz")) == ["a.npz", "c.123-4.tmp.npz", "c.npz"]
    assert sum(f.stat().st_size for f in tmp_path.glob("*.npz")) <= 5 * 2**20
    (tmp_path / "d.9-9.tmp.npz").write_bytes(b"x" * 2**20)
    os.utime(tmp_path / "d.9-9.tmp.npz", (1000, 1000))  # left by a writer that died long ago
    enc.encode(image, key="e")
    assert sorted(f.name for f in tmp_path.glob("*.npz")) == ["c.123-4.tmp.npz", "c.npz", "e.npz"]


def test_a_torn_cache_file_is_encoded_again(encoder, sam_files):
    (encoder.cache_dir / "torn.npz").write_bytes(b"PK\x03\x04 not really")
    fresh = ImageEncoder(sam_files[0], cache_dir=encoder.cache_dir)
    assert fresh.encode(_scene(64, 64)[0], key="torn").embedding.shape == (1, 256, 64, 64)


@pytest.mark.parametrize(
    "image",
    [
        np.full((50, 700), 30000, np.uint16),  # 16-bit grayscale, long and thin
        np.full((300, 40), 128, np.uint8),  # 8-bit grayscale, tall
    ],
    ids=["16-bit wide", "gray tall"],
)
def test_images_of_any_kind_and_aspect_are_encoded(encoder, image):
    e = encoder.encode(image)
    assert e.image_size == image.shape[:2]
    assert max(e.input_size) == 1024


def test_a_box_gives_the_object(sam):
    _, disc = _scene()
    prediction = sam.predict(_box(disc))
    assert prediction.mask.shape == disc.shape and prediction.mask.dtype == bool
    assert mask_iou(prediction.mask, disc) > 0.85
    assert 0 <= prediction.score <= 1
    assert prediction.state.shape == (1, 1, 256, 256)


def test_one_click_alone_gives_the_object_and_previous_is_used(sam):
    _, disc = _scene()
    ys, xs = np.nonzero(disc)
    click = Clicks(np.array([[xs.mean(), ys.mean()]], np.float32), [0], [True])
    first = sam.predict(clicks=click)
    assert mask_iou(first.mask, disc) > 0.8
    fed_back = sam.predict(clicks=click, previous=first.state)
    assert fed_back.mask.shape == disc.shape  # runs with SAM's mask_input
    assert not np.array_equal(fed_back.state, first.state)  # and the logits did change


def test_a_box_partly_outside_the_image_is_clipped(sam):
    _, disc = _scene()
    x0, y0, x1, y1 = _box(disc)
    assert mask_iou(sam.predict([x0, y0, x1 + 500, y1]).mask, disc) > 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "expected a box or at least one click, got neither"),
        ({"box": [10, 10, 10, 50]}, "degenerate"),
        ({"box": [900, 900, 990, 990]}, "outside the 320 x 240 image"),
        (
            {"clicks": Clicks(np.array([[400.0, 10.0]], np.float32), [0], [True])},
            "click 0 at \\(400, 10\\) is outside",
        ),
        (
            {"box": [10, 10, 50, 50], "previous": np.zeros((64, 64), np.float32)},
            "previous SAM logits of shape",
        ),
    ],
)
def test_bad_prompts_are_named(sam, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sam.predict(**kwargs)


def test_predict_before_set_image_says_what_to_do(encoder, sam_files):
    with pytest.raises(RuntimeError, match="call set_image"):
        SamPredictor(encoder, sam_files[1]).predict([0, 0, 5, 5])


def test_an_embedding_from_another_model_is_refused(sam):
    other = Embedding(np.zeros((1, 384, 64, 64), np.float32), (240, 320), (768, 1024), 3.2)
    with pytest.raises(ValueError, match="encoder and decoder are from different models"):
        sam.set_embedding(other)


def test_a_foreign_file_as_encoder_or_decoder_is_named(tmp_path, sam_files, encoder):
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="foreign.onnx: not an ONNX model"):
        ImageEncoder(foreign)
    with pytest.raises(ValueError, match="foreign.onnx: not an ONNX model"):
        SamPredictor(encoder, foreign)
    with pytest.raises(ValueError, match="expected a SAM encoder with one input"):
        ImageEncoder(sam_files[1])  # the decoder given as the encoder


def test_upscaling_keeps_the_positive_region_and_handles_an_empty_mask():
    logits = -np.ones((8, 8), np.float32)
    assert not upscale_mask(logits, (80, 80)).any()
    logits[2:4, 2:4] = 5.0
    mask = upscale_mask(logits, (80, 80))
    ys, xs = np.nonzero(mask)
    assert 15 <= ys.min() <= 25 and 35 <= ys.max() <= 45 and 15 <= xs.min() <= 25


def test_upscaling_keeps_rows_and_columns_apart():
    """Non-square logits to a non-proportional size: a swap of x and y would move the region."""
    logits = -np.ones((4, 8), np.float32)
    logits[1, 6] = 5.0  # row 1 of 4, column 6 of 8
    ys, xs = np.nonzero(upscale_mask(logits, (40, 16)))  # rows x10, columns x2
    # cell (1, 6) covers rows 10..19 and columns 12..13; bilinearly, logit 5 against -1 stays
    # positive 5/6 of the way to the next cell's centre: 8.3 rows and 1.7 columns further
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (7, 22, 11, 14)


def test_the_prompt_is_scaled_per_axis_into_the_1024_frame(encoder, sam_files):
    """On a 3000 x 10 image (resized to 1024 x 3) x scales by 3 / 10 and y by 1024 / 3000;
    clicks come first, then the box corners (labels 2, 3); without a box a padding point."""
    sam = SamPredictor(encoder, sam_files[1])
    sam.set_embedding(Embedding(np.zeros((1, 256, 64, 64), np.float32), (3000, 10), (1024, 3), 1024 / 3000))
    clicks = Clicks(np.array([[5.0, 1500.0]], np.float32), [0], [False])
    coords, labels = sam._prompt(np.array([2, 300, 8, 600], np.float32), clicks)
    sx, sy = 3 / 10, 1024 / 3000
    expected = [[5 * sx, 1500 * sy], [2 * sx, 300 * sy], [8 * sx, 600 * sy]]
    np.testing.assert_allclose(coords[0], expected, rtol=1e-5)
    np.testing.assert_array_equal(labels[0], [0, 2, 3])
    coords, labels = sam._prompt(None, clicks)
    np.testing.assert_array_equal(labels[0], [0, -1])


def test_a_click_off_centre_moves_to_the_objects_centre(sam):
    _, disc = _scene()
    ys, xs = np.nonzero(disc)
    true = ((xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2)
    cx, cy, mask = click_centre(sam, xs.min() + 6.0, float(true[1]) + 5.0)
    assert abs(cx - true[0]) < 3 and abs(cy - true[1]) < 3
    assert mask_iou(mask, disc) > 0.8


def test_a_click_whose_mask_misses_it_stays_where_it_was():
    class Empty:
        def predict(self, clicks):
            return type("P", (), {"mask": np.zeros((20, 30), bool)})()

    assert click_centre(Empty(), 4.0, 7.0)[:2] == (4.0, 7.0)


def test_candidates_are_sams_masks_for_an_ambiguous_prompt_the_one_served_first(sam):
    image, disc = _scene()
    box, click = _box(disc), Clicks(np.array([[176.0, 108.0]], np.float32), [0], [True])
    for prompt, offered in (({"box": box}, 3), ({"clicks": click}, 3), ({"box": box, "clicks": click}, 1)):
        single = sam.predict(**prompt)
        served = sam.predict(**prompt, multimask=True)
        assert len(served.candidates) == offered, prompt
        assert served.candidates[0] is served and (served.mask == single.mask).all()
        assert served.score == single.score and np.allclose(served.state, single.state)
        others = [c.score for c in served.candidates[1:]]
        assert others == sorted(others, reverse=True), "the others best predicted first"
        for c in served.candidates:
            assert c.mask.shape == disc.shape and c.state.shape == (1, 1, 256, 256) and 0 <= c.score <= 1
        # a candidate's state goes back as previous like the served one's
        again = sam.predict(box, click, served.candidates[-1].state)
        assert again.mask.shape == disc.shape
    assert sam.predict(box).candidates == [], "no candidates unless asked for"


def test_offsets_given_per_call_choose_the_mask_served(sam):
    """A project's offsets (fewclick.server.worker_pick) pick among all four masks for a box."""
    _, disc = _scene()
    box = _box(disc)
    *_, iou = sam._decode(box, None, None, candidates=True)
    iou = iou.reshape(-1)
    for k in range(4):
        favour = [0.0] * 4
        favour[k] = 5.0
        served = sam.predict(box, offsets={"box": favour})
        assert served.score == pytest.approx(float(np.clip(iou[k], 0, 1)), abs=1e-6), f"mask {k} served"
    assert sam.predict(box, offsets={"click": [5.0, 0, 0, 0]}).score == sam.predict(box).score, "a box's own"


def test_first_prompt_records_give_each_mask_a_box_and_a_click(sam):
    _, disc = _scene()
    records = sam.first_prompt_records([disc, np.zeros_like(disc)])
    assert [kind for kind, _, _ in records] == ["box", "click"], "an empty mask gives none"
    for _, predicted, actual in records:
        assert predicted.shape == (4,) and actual.shape == (4,)
        assert ((0 <= actual) & (actual <= 1)).all()
    assert max(records[0][2]) > 0.85, "one of the box's four masks is the disc"
