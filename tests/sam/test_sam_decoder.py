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


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


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


def test_clicks_near_their_crop_answer_as_the_whole_embedding_does_inside_it(sam, sam_files):
    decoder = SamDecoder.from_onnx(sam_files[1]).eval()
    embedding = torch.from_numpy(sam._embedding.embedding)
    points = torch.tensor([[176.0, 108.0], [500.0, 300.0], [1010.0, 5.0]]) * sam._embedding.scale
    with torch.no_grad():
        whole_low, whole_iou, origins = decoder.forward_near(embedding, points, 64)
        assert (origins == 0).all()
        for i, p in enumerate(points):
            click = Clicks(p[None].numpy() / sam._embedding.scale, [0], [True])
            low, iou = _onnx(sam, _feeds(sam, None, click))
            assert np.abs(whole_low[i].numpy() - low[0]).max() < 1e-4 * max(1.0, np.abs(low).max())
            assert np.abs(whole_iou[i].numpy() - iou[0]).max() < 1e-4
        near_low, near_iou, origins = decoder.forward_near(embedding, points, 16)
    assert near_low.shape == (3, 4, 64, 64) and near_iou.shape == (3, 4)
    cells = np.floor(points.numpy() / 16).astype(int)
    assert (origins.numpy() == np.clip(cells - 8, 0, 48)).all(), "centred on the click, inside the grid"
    (x, y) = origins[0].tolist()
    inside = whole_low[0, :, 4 * y : 4 * y + 64, 4 * x : 4 * x + 64]
    agree = ((near_low[0] > 0) == (inside > 0)).float().mean()
    assert agree > 0.9, f"the disc's crop answers much as the whole embedding does there ({agree:.2f})"


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


def test_offsets_travel_in_the_onnx_file_and_choose_the_mask_served(sam, sam_files, tmp_path):
    _, disc = _scene()
    box = _box(disc)
    frozen = sam.predict(box, multimask=True)
    feeds = _feeds(sam, box, None)
    _, iou = _onnx(sam, feeds)
    served = 1 + int(np.argmax(iou[0, 1:]))
    other = next(i for i in (1, 2, 3) if i != served)
    offsets = np.zeros(4)
    offsets[other] = 2.0  # SAM's predicted IoUs are in [0, 1]: this one wins
    decoder = SamDecoder.from_onnx(sam_files[1])
    assert decoder.iou_offsets is None, "the pretrained file has none"
    decoder.iou_offsets = {"box": offsets.tolist()}
    written = decoder.write_onnx(sam_files[1], tmp_path / "tuned.onnx")
    assert SamDecoder.from_onnx(written).iou_offsets == {"box": offsets.tolist()}
    tuned = SamPredictor(sam.encoder, written)
    tuned.set_embedding(sam._embedding)
    chosen = tuned.predict(box, multimask=True)
    low, _ = _onnx(tuned, feeds)
    assert np.allclose(chosen.state, low[:, other : other + 1]), "the offsets' mask is served"
    assert np.isclose(chosen.score, float(np.clip(iou[0, other], 0, 1)), atol=1e-5), "with SAM's own estimate"
    assert len(chosen.candidates) == 4 and chosen.candidates[0] is chosen
    assert any(np.allclose(c.state, frozen.state) for c in chosen.candidates[1:]), "SAM's choice one Tab away"
    assert np.allclose(tuned.predict(box).state, chosen.state), "served with or without candidates"
    one = Clicks(np.array([[176.0, 108.0]], np.float32), [0], [True])
    assert np.allclose(tuned.predict(clicks=one).state, sam.predict(clicks=one).state), (
        "clicks keep SAM's choice"
    )
    # offsets that are not four numbers per prompt kind: the file is refused, by name
    decoder.iou_offsets = {"box": [1.0, 2.0]}
    broken = decoder.write_onnx(sam_files[1], tmp_path / "broken.onnx")
    with pytest.raises(ValueError, match=r"broken\.onnx: expected fewclick\.iou_offsets"):
        SamPredictor(sam.encoder, broken)


def test_tuning_fits_offsets_on_the_tuned_decoder_and_scores_one_click(sam, sam_files):
    _, disc = _scene()
    e = sam._embedding
    example = MaskExample(e.embedding, e.input_size, low_res_target(disc, e.input_size))
    result = tune_decoder(
        SamDecoder.from_onnx(sam_files[1]), [example] * 3, TuneConfig(steps=0, budget_minutes=None)
    )
    assert result.steps == 0 and result.fit_prompts == 6, "a box and a click for each object"
    assert result.decoder.iou_offsets is None, "too few prompts to fit offsets on"
    score = score_decoder(result.decoder, [example])
    assert set(score) == {"box_mIoU", "clicks_mIoU", "click_mIoU", "count"} and 0 <= score["click_mIoU"] <= 1
