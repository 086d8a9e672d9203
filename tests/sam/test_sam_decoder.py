"""SAM's decoder ported to torch: the same numbers as the ONNX graph, weights written back
into it, and fine-tuning on cached embeddings (skipped without the pretrained pair)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewclick.models.sam_decoder import SamDecoder
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.sam import CANDIDATE_TENSORS, SamPredictor
from fewclick.train.sam_decoder import MaskExample, TuneConfig, low_res_target, score_decoder, tune_decoder
from fewclick.types import Clicks

INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")


def _scene(h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(110, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:h, :w]
    disc = (xs - w * 0.55) ** 2 + (ys - h * 0.45) ** 2 < (min(h, w) * 0.18) ** 2
    image[disc] = (200, 40, 40)
    return image, disc


@pytest.fixture(scope="module")
def sam(sam_files, tmp_path_factory) -> SamPredictor:
    encoder = ImageEncoder(sam_files[0], threads=2, cache_dir=tmp_path_factory.mktemp("embeddings"))
    predictor = SamPredictor(encoder, sam_files[1])
    predictor.set_image(_scene()[0])
    return predictor


def _feeds(sam: SamPredictor, box, clicks, previous=None) -> dict:
    """The ONNX decoder's inputs for a prompt, as SamPredictor builds them."""
    e = sam._embedding
    coords, labels = sam._prompt(
        None if box is None else np.asarray(box, np.float32), clicks or Clicks.empty()
    )
    has = previous is not None
    return {
        "image_embeddings": e.embedding,
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": previous if has else np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.array([float(has)], np.float32),
        "orig_im_size": np.array(e.input_size, np.float32),
    }


def _onnx(sam: SamPredictor, feeds: dict) -> tuple[np.ndarray, np.ndarray]:
    return tuple(sam.session.run([CANDIDATE_TENSORS["low_res"], CANDIDATE_TENSORS["iou"]], feeds))


def _torch(decoder: SamDecoder, feeds: dict) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        low, iou = decoder(*(torch.from_numpy(np.asarray(feeds[k])) for k in INPUTS))
    return low.numpy(), iou.numpy()


def test_the_torch_port_gives_the_onnx_decoders_numbers_on_real_prompts(sam, sam_files):
    decoder = SamDecoder.from_onnx(sam_files[1]).eval()
    _, disc = _scene()
    ys, xs = np.nonzero(disc)
    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    click = Clicks(np.array([[176.0, 108.0], [60.0, 60.0]], np.float32), [0, 0], [True, False])
    previous = sam.predict(box).state
    for feeds in (_feeds(sam, box, None), _feeds(sam, None, click[:1]), _feeds(sam, box, click, previous)):
        (low, iou), (ours_low, ours_iou) = _onnx(sam, feeds), _torch(decoder, feeds)
        assert np.abs(ours_low - low).max() < 1e-4 * max(1.0, np.abs(low).max())
        assert np.abs(ours_iou - iou).max() < 1e-4


def test_weights_written_back_run_in_the_same_graph(sam, sam_files, tmp_path):
    decoder = SamDecoder.from_onnx(sam_files[1]).eval()
    with torch.no_grad():
        for p in decoder.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    written = decoder.write_onnx(sam_files[1], tmp_path / "tuned.onnx")
    assert SamDecoder.from_onnx(written).state_dict().keys() == decoder.state_dict().keys()
    tuned = SamPredictor(sam.encoder, written)
    tuned.set_embedding(sam._embedding)
    feeds = _feeds(tuned, [100, 60, 240, 170], None)
    (low, iou), (ours_low, ours_iou) = _onnx(tuned, feeds), _torch(decoder, feeds)
    assert np.abs(ours_low - low).max() < 1e-4 * max(1.0, np.abs(low).max())
    assert np.abs(ours_iou - iou).max() < 1e-4
    assert not np.allclose(low, _onnx(sam, feeds)[0], atol=1e-3), "the written weights are the ones run"


def test_a_file_that_is_not_a_sam_decoder_is_named(sam_files, tmp_path):
    with pytest.raises(ValueError, match="not a SAM-format decoder, it lacks weights"):
        SamDecoder.from_onnx(sam_files[0])  # the encoder


def test_tuning_runs_its_steps_on_cached_embeddings_and_refuses_empty_masks(sam, sam_files):
    _, disc = _scene()
    e = sam._embedding
    example = MaskExample(e.embedding, e.input_size, low_res_target(disc, e.input_size))
    assert example.target.shape == (256, 256) and 0 < example.target.mean() < 1
    decoder = SamDecoder.from_onnx(sam_files[1])
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    result = tune_decoder(decoder, [example], TuneConfig(steps=2, budget_minutes=None, batch=2, threads=1))
    assert result.steps == 2 and len(result.losses) == 2 and all(np.isfinite(result.losses))
    assert any(not torch.equal(before[k], v) for k, v in decoder.state_dict().items())
    score = score_decoder(decoder, [example])
    assert score["count"] == 1 and 0 <= score["box_mIoU"] <= 1
    empty = MaskExample(e.embedding, e.input_size, np.zeros((256, 256), np.float32))
    with pytest.raises(ValueError, match="no example with an object and background"):
        tune_decoder(decoder, [empty], TuneConfig(steps=1, budget_minutes=None))
