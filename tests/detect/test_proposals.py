"""SAM's class-agnostic proposals and the look-alikes matched among them (issue 52)."""

from __future__ import annotations

import numpy as np
import pytest

from fewclick.metrics.detection import box_iou
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.local_decoder import LocalDecoder, crop_cells
from fewclick.predict.lookalike import (
    LookAlikeDetector,
    clicked_and_alike,
    clicked_proposal,
    look_alikes,
    proposals_file,
    rejected_vectors,
    relative_scores,
)
from fewclick.predict.proposals import ProposalMaker, Proposals, prompt_points

DISCS = [(60, 60), (160, 50), (260, 70), (90, 170), (210, 180)]  # red, radius 14
SQUARES = [(130, 120), (40, 120), (280, 150)]  # blue, side 20


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured grey field with five red discs and three blue squares: (image, disc boxes, square boxes)."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    image = rng.normal(120, 10, (h, w, 3)).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:h, :w]
    for cx, cy in DISCS:
        image[(xs - cx) ** 2 + (ys - cy) ** 2 < 14**2] = (210, 40, 40)
    for cx, cy in SQUARES:
        image[cy - 10 : cy + 10, cx - 10 : cx + 10] = (40, 60, 220)
    discs = np.array([[cx - 14, cy - 14, cx + 14, cy + 14] for cx, cy in DISCS], np.float32)
    squares = np.array([[cx - 10, cy - 10, cx + 10, cy + 10] for cx, cy in SQUARES], np.float32)
    return image, discs, squares


@pytest.fixture(scope="module")
def maker(sam_files, tmp_path_factory) -> ProposalMaker:
    encoder = ImageEncoder(sam_files[0], threads=2, cache_dir=tmp_path_factory.mktemp("features"))
    return ProposalMaker(encoder, LocalDecoder(sam_files[1]), limit=128)


@pytest.fixture(scope="module")
def scene(maker) -> tuple[Proposals, np.ndarray, np.ndarray]:
    image, discs, squares = _scene()
    return maker(image, key="scene"), discs, squares


def test_every_disc_and_square_is_proposed_once_with_its_own_box(scene):
    proposals, discs, squares = scene
    for what, boxes in (("disc", discs), ("square", squares)):
        iou = box_iou(boxes, proposals.boxes)
        assert (iou.max(1) >= 0.7).all(), f"every {what} has a proposal of its own box: {iou.max(1).round(2)}"
        assert ((iou >= 0.5).sum(1) == 1).all(), f"and only one ({what}s)"
    assert proposals.vectors.shape == (len(proposals), proposals.background.shape[0])
    assert np.allclose(np.linalg.norm(proposals.vectors, axis=1), 1, atol=1e-4)
    x0, y0, mask = proposals.masks[int(box_iou(discs[:1], proposals.boxes).argmax())]
    assert (x0, y0) == tuple(
        int(v) for v in proposals.boxes[int(box_iou(discs[:1], proposals.boxes).argmax()), :2]
    )
    assert 0.6 < mask.mean() < 0.9, "a disc fills about pi / 4 of its box"


def test_a_click_on_a_disc_finds_the_other_discs_above_every_square(scene):
    proposals, discs, squares = scene
    index = clicked_proposal(proposals, *DISCS[0])
    assert index is not None and box_iou(proposals.boxes[index : index + 1], discs[:1])[0, 0] >= 0.7
    clicked = proposals.boxes[index : index + 1]
    found = look_alikes(
        proposals, {0: proposals.vectors[index : index + 1]}, clicked=clicked, thresholds={0: -np.inf}
    )
    on_disc = box_iou(found.boxes, discs[1:]).max(1) >= 0.7
    assert on_disc.sum() == 4, "the other four discs, not the clicked one again"
    on_square = box_iou(found.boxes, squares).max(1) >= 0.7
    assert found.scores[on_disc].min() > found.scores[on_square].max(initial=-np.inf), (
        "discs rank above squares"
    )
    assert (found.labels == 0).all()


def test_squares_rejected_on_the_page_keep_the_other_squares_out_of_a_click_s_look_alikes(scene):
    proposals, discs, squares = scene
    disc = clicked_proposal(proposals, *DISCS[0])
    objects = proposals.take(np.array([disc]))
    shown_square = squares[:1] + np.array([1, -1, 1, 1], np.float32)  # as the page shows it: moved a pixel
    negatives = rejected_vectors(proposals, np.concatenate([shown_square, [[500, 500, 510, 510]]]))
    assert len(negatives) == 1, "the square found by its box; a box on no proposal left out"
    _, before = clicked_and_alike(proposals, objects, np.array([0]))
    _, after = clicked_and_alike(proposals, objects, np.array([0]), negatives=negatives)
    on_square = lambda found: (box_iou(found.boxes, squares).max(1) >= 0.7).sum()  # noqa: E731
    assert on_square(after) == 0 and on_square(after) < on_square(before), "no square is more like the disc"
    assert (box_iou(after.boxes, discs).max(1) >= 0.7).sum() == 4, "the discs stay"


def test_a_square_marked_negative_takes_the_squares_away_and_two_classes_share_nothing(scene):
    proposals, discs, squares = scene
    disc = clicked_proposal(proposals, *DISCS[0])
    square = clicked_proposal(proposals, *SQUARES[0])
    positives = {0: proposals.vectors[disc : disc + 1]}
    found = look_alikes(
        proposals, positives, negatives=proposals.vectors[square : square + 1], thresholds={0: -np.inf}
    )
    assert not (box_iou(found.boxes, squares).max(1) >= 0.7).any(), (
        "no square is more like the disc than the negative"
    )
    both = look_alikes(
        proposals, {**positives, 1: proposals.vectors[square : square + 1]}, thresholds={0: 0.0, 1: 0.0}
    )
    on_square = box_iou(both.boxes, squares).max(1) >= 0.7
    assert on_square.sum() == 3 and (both.labels[on_square] == 1).all(), "the squares go to the square class"
    assert (both.labels[box_iou(both.boxes, discs).max(1) >= 0.7] == 0).all()
    assert relative_scores(proposals, proposals.vectors[disc : disc + 1])[disc, 0] == pytest.approx(
        1.0, abs=1e-4
    )


def test_a_blank_image_has_no_proposals_and_a_click_on_it_finds_nothing(maker):
    blank = np.full((200, 260, 3), 128, np.uint8)
    proposals = maker(blank, key="blank")
    assert len(proposals) == 0
    assert clicked_proposal(proposals, 100, 100) is None
    assert len(look_alikes(proposals, {0: np.ones((1, proposals.background.shape[0]), np.float32)})) == 0


def test_proposals_survive_a_save_and_a_load(scene, tmp_path):
    proposals, _, _ = scene
    proposals.save(tmp_path / "p.npz")
    back = Proposals.load(tmp_path / "p.npz")
    assert np.array_equal(back.boxes, proposals.boxes) and np.array_equal(back.vectors, proposals.vectors)
    assert all(a[:2] == b[:2] and np.array_equal(a[2], b[2]) for a, b in zip(back.masks, proposals.masks))
    assert back.image_size == proposals.image_size and back.prompts == proposals.prompts
    assert not list(tmp_path.glob(".*.tmp")), "the file is written whole, then renamed"


def test_two_writers_of_one_file_leave_it_whole_and_a_torn_one_is_named(scene, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    proposals, _, _ = scene
    path = tmp_path / "p.npz"
    with ThreadPoolExecutor(4) as pool:  # the worker preparing the image and the next, at once
        list(pool.map(lambda _: proposals.save(path), range(8)))
    assert np.array_equal(Proposals.load(path).boxes, proposals.boxes)
    assert not list(tmp_path.glob(".*.tmp"))
    path.write_bytes(path.read_bytes()[:100])  # torn by a full disk
    with pytest.raises(ValueError, match="p.npz: not a whole proposals file"):
        Proposals.load(path)
    with pytest.raises(FileNotFoundError):
        Proposals.load(tmp_path / "none.npz")


def test_a_batch_of_prompts_answers_as_one_prompt_at_a_time(maker):
    image, _, _ = _scene()
    e = maker.encoder.encode(image, key="scene")
    points = np.array([[p[0] * e.scale, p[1] * e.scale] for p in DISCS[:3]], np.float32)
    for side in (None, 28 * e.scale):
        logits, iou = maker.decoder(e.embedding, points, side)
        assert logits.shape == (3, 3, 256, 256) and iou.shape == (3, 3)
        for i in range(3):
            one_logits, one_iou = maker.decoder(e.embedding, points[i : i + 1], side)
            assert np.allclose(one_logits[0], logits[i], atol=1e-3)
            assert np.allclose(one_iou[0], iou[i], atol=1e-4)


def test_a_clicks_crop_is_three_objects_wide_and_what_it_cuts_is_not_kept(maker):
    assert [crop_cells(s) for s in (None, 10.0, 100.0, 900.0)] == [64, 16, 20, 64]
    image, _, _ = _scene()
    e = maker.encoder.encode(image, key="scene")
    disc = np.array([[DISCS[0][0] * e.scale, DISCS[0][1] * e.scale]], np.float32)
    logits, iou = maker.decoder(e.embedding, disc, 28 * e.scale)
    assert (logits[:, :, 128:, 128:] <= -20).all(), "nothing outside the click's crop"
    best = int(iou[0].argmax())
    assert iou[0, best] >= 0.7 and (logits[0, best] > 0).any(), "the disc, whole inside its crop"
    # a disc far larger than the objects were read to be reaches past its crop: a candidate
    # that reaches an edge of its crop inside the grid is not kept
    big = np.full((240, 320, 3), 120, np.uint8)
    ys, xs = np.mgrid[:240, :320]
    big[(xs - 150) ** 2 + (ys - 120) ** 2 < 70**2] = (210, 40, 40)
    e = maker.encoder.encode(big, key="big disc")
    centre = np.array([[150.0 * e.scale, 120.0 * e.scale]], np.float32)
    logits, iou = maker.decoder(e.embedding, centre, 10 * e.scale)
    rows, cols = (np.nonzero((logits[0, 0] != -20).any(a))[0] for a in (1, 0))
    assert 0 < rows[0] and 0 < cols[0] and len(rows) == 4 * crop_cells(10 * e.scale), "a crop inside the grid"
    for c in range(3):
        here = logits[0, c, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] > 0
        reaches = here[0].any() or here[-1].any() or here[:, 0].any() or here[:, -1].any()
        assert not reaches or iou[0, c] == 0, f"candidate {c} reaches its crop's edge and is kept"
    assert (iou[0] == 0).any(), "the big disc reaches past its crop"
    _, whole = maker.decoder(e.embedding, centre, None)
    assert whole[0].max() >= 0.7, "on the whole embedding the disc is found"


def test_every_blob_has_a_point_at_its_centre_one_point_a_logit_cell():
    image, _, _ = _scene()
    points = prompt_points(np.kron(image, np.ones((3, 3, 1), np.uint8)))
    cells = np.floor(points / 4).astype(int)
    assert len(np.unique(cells, axis=0)) == len(points)
    near = [np.hypot(*(points - np.array([cx * 3, cy * 3])).T).min() for cx, cy in DISCS + SQUARES]
    assert max(near) < 5, "every disc and square has a point near its centre within the default limit"
    assert len(prompt_points(np.full((300, 300, 3), 128, np.uint8))) == 64, (
        "a blank image: the 8 x 8 grid alone"
    )


def test_bad_settings_are_refused_by_name(maker):
    with pytest.raises(ValueError, match="window of 64 px"):
        ProposalMaker(maker.encoder, window=10)
    with pytest.raises(ValueError, match="limit of 1 prompt"):
        ProposalMaker(maker.encoder, limit=0)


def test_a_click_no_proposal_holds_gets_sams_own_object_and_outside_the_image_is_refused(maker):
    image, discs, _ = _scene()
    own = maker.click(image, *DISCS[1], key="scene")
    assert len(own) == 1 and box_iou(own.boxes, discs[1:2])[0, 0] >= 0.7
    assert own.vectors.shape == (1, own.background.shape[0])
    blank = maker.click(np.full((200, 260, 3), 128, np.uint8), 100, 100, key="blank")
    assert len(blank) <= 1, "a flat image: SAM's object, or nothing"
    with pytest.raises(ValueError, match="outside the 320 x 240 image"):
        maker.click(image, 400, 10, key="scene")


def test_the_background_is_what_no_proposal_covers_in_a_wide_image(maker):
    image, _, _ = _scene()
    wide = np.concatenate(
        [image, np.full((240, 160, 3), 120, np.uint8)], 1
    )  # 480 x 240: half the input is padding
    proposals = maker(wide, key="wide")
    disc = clicked_proposal(proposals, *DISCS[0])
    assert disc is not None
    assert float(proposals.vectors[disc] @ proposals.background) < 0.9, "the background is not made of discs"
    assert relative_scores(proposals, proposals.vectors[disc : disc + 1])[disc, 0] == pytest.approx(
        1.0, abs=1e-4
    )


@pytest.mark.parametrize("radius", [6, 12, 24])
def test_the_objects_size_is_read_from_the_image_and_sets_the_window(radius):
    from fewclick.predict.prompts import INPUT_SIZE, MIN_WINDOW, TARGET_SIDE, auto_window, object_size

    rng = np.random.default_rng(radius)
    image = rng.normal(60, 4, (600, 800, 3)).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:600, :800]
    for cy in range(3 * radius, 600 - 3 * radius, 5 * radius):
        for cx in range(3 * radius, 800 - 3 * radius, 5 * radius):
            image[(xs - cx) ** 2 + (ys - cy) ** 2 < radius**2] = 200
    side = object_size(image)
    assert 2 * radius / 1.5 <= side <= 2 * radius * 1.5, side  # within half again of the diameter
    window = auto_window(image)
    assert window == int(np.clip(round(INPUT_SIZE * side / TARGET_SIDE), MIN_WINDOW, INPUT_SIZE))


def test_a_proposal_holding_two_smaller_ones_is_a_group_and_goes():
    from fewclick.predict.proposal_groups import without_groups

    def crop(x0, y0, x1, y1):
        mask = np.ones((y1 - y0, x1 - x0), bool)
        return [x0, y0, x1, y1], (x0, y0, mask)

    pair = [crop(10, 10, 30, 30), crop(30, 10, 50, 30)]  # two touching objects
    group = crop(10, 10, 50, 30)  # SAM's answer holding both
    ring = crop(60, 60, 90, 90)  # one object, a smaller one of its own inside (a pale centre)
    centre = crop(70, 70, 80, 80)
    made = [group, *pair, ring, centre]
    proposals = Proposals(
        np.array([b for b, _ in made], np.float32),
        np.linspace(0.99, 0.9, len(made)).astype(np.float32),
        np.eye(len(made), 4, dtype=np.float32),
        [m for _, m in made],
        np.zeros(4, np.float32),
        (100, 100),
    )
    kept = without_groups(proposals)
    assert kept.boxes.tolist() == [b for b, _ in made[1:]], "the group goes; one held proposal is no group"


def test_a_look_alike_far_from_the_exemplars_size_or_one_sam_doubts_scores_lower():
    def square(x0, side):
        return (x0, 0, np.ones((side, side), bool))

    vector = np.array([1.0, 0.0, 0.0], np.float32)
    masks = [square(0, 10), square(20, 12), square(40, 40), square(90, 12)]
    proposals = Proposals(
        np.array([[x, y, x + m.shape[1], y + m.shape[0]] for x, y, m in masks], np.float32),
        np.array([0.95, 0.95, 0.95, 0.5], np.float32),  # the last: SAM doubts it
        np.tile(vector, (4, 1)),  # every proposal looks the same
        masks,
        np.array([0.0, 1.0, 0.0], np.float32),
        (40, 140),
    )
    exemplar, area = vector[None], np.array([100.0], np.float32)
    found = look_alikes(proposals, {0: exemplar}, thresholds={0: -np.inf}, areas={0: area})
    by_x = {int(b[0]): s for b, s in zip(found.boxes, found.scores)}
    assert by_x[0] == pytest.approx(0.95), "the exemplar's own size"
    assert by_x[20] == pytest.approx(0.95), "within twice its area: not weighed"
    assert by_x[40] == pytest.approx(0.95 * 2 / 16, rel=1e-3), "16 times its area: weighed by 2/16"
    assert by_x[90] == pytest.approx(0.5), "SAM's doubt carries over"
    unsized = look_alikes(proposals, {0: exemplar}, thresholds={0: -np.inf})
    assert sorted(unsized.scores.tolist()) == pytest.approx([0.5, 0.95, 0.95, 0.95])


def test_with_the_objects_side_known_the_prompts_go_to_the_objects_before_the_grain():
    rng = np.random.default_rng(5)
    image = np.full((512, 512, 3), 90, np.uint8)
    image[rng.random((512, 512)) < 0.02] = 255  # a fine bright grain all over
    ys, xs = np.mgrid[:512, :512]
    centres = [(cx, cy) for cy in range(40, 512, 80) for cx in range(40, 512, 80)]  # 36 discs, 24 px across
    for cx, cy in centres:
        image[(xs - cx) ** 2 + (ys - cy) ** 2 < 12**2] = 200

    def found(points) -> int:
        return sum(bool((np.hypot(*(points - [cx, cy]).T) < 6).any()) for cx, cy in centres)

    assert found(prompt_points(image, limit=len(centres), side=24.0)) == len(centres)
    unknown = found(prompt_points(image, limit=len(centres)))
    assert unknown < len(centres), "without the side, the finest scales' grain takes its turns"


def test_the_look_alikes_as_a_click_detector_keep_their_proposals_beside_the_embeddings(maker, tmp_path):
    from fewclick.types import Clicks

    image, discs, _ = _scene()
    detector = LookAlikeDetector(maker, tmp_path)
    detector.set_image(image, key="scene")
    assert proposals_file(tmp_path, "scene").is_file(), "kept where the app keeps them"
    det = detector.predict(Clicks(np.array([DISCS[0]], np.float32), [0], [True]))
    assert det.scores[0] == 1 and box_iou(det.boxes[:1], discs[:1])[0, 0] >= 0.7, "the clicked disc first"
    assert (box_iou(discs, det.boxes).max(1) >= 0.7).all(), "and every other disc"
    assert len(detector.predict(Clicks(np.zeros((0, 2)), [], []))) == 0, "no click, nothing like it"

    class Never:  # a second image set under the same key reads the file: no SAM
        def __call__(self, *args, **kwargs):
            raise AssertionError("proposed again")

    again = LookAlikeDetector(Never(), tmp_path)
    again.set_image(image, key="scene")
    assert len(again.proposals) == len(detector.proposals)


def _squares(n: int, dim: int = 4) -> Proposals:
    """``n`` proposals of 10 px squares along a row, their vectors alike (no SAM)."""
    boxes = np.array([[20 * i, 0, 20 * i + 10, 10] for i in range(n)], np.float32)
    vectors = np.tile(np.eye(dim, dtype=np.float32)[:1], (n, 1))
    masks = [(20 * i, 0, np.ones((10, 10), bool)) for i in range(n)]
    return Proposals(
        boxes, np.full(n, 0.9, np.float32), vectors, masks, np.eye(dim, dtype=np.float32)[1], (10, 20 * n)
    )


def test_two_clicks_on_one_proposal_box_it_once():
    from fewclick.predict.lookalike import clicked_objects

    found = _squares(3)
    objects, boxed, unboxed = clicked_objects(
        found, np.array([[5, 5], [6, 4], [45, 5]]), lambda x, y: found.take([])
    )
    assert boxed == [0, 2] and unboxed == [] and len(objects) == 2, "each object once"


def test_finished_boxes_of_a_class_no_proposal_matches_still_give_thresholds(tmp_path):
    from fewclick.server import worker_proposals

    for key in ("1-1-0", "1-2-0"):
        _squares(4).save(proposals_file(tmp_path, key))
    # class 0 boxes the squares; class 1 boxes something no proposal holds (as small debris)
    boxes = [[0, 0, 0, 10, 10], [0, 20, 0, 30, 10], [1, 5, 2, 7, 4]]
    finished = [["1-1-0", "one.png", boxes], ["1-2-0", "two.png", boxes]]
    exemplars, least, used = worker_proposals.carried(str(tmp_path), finished)
    assert set(exemplars) == {0} and len(exemplars[0][0]) == 4, "class 0's two squares on each image"
    assert set(least) <= {0, 1} and 0 in least
    assert [u[:3] for u in used] == [[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0]]  # image, box, class


def test_a_box_removed_from_the_exemplars_is_no_exemplar_but_still_an_object(tmp_path):
    from fewclick.server import worker_proposals

    for key in ("1-1-0", "1-2-0"):
        _squares(4).save(proposals_file(tmp_path, key))
    boxes = [[0, 0, 0, 10, 10], [0, 20, 0, 30, 10]]
    finished = [["1-1-0", "one.png", boxes, [1]], ["1-2-0", "two.png", boxes, []]]
    exemplars, least, used = worker_proposals.carried(str(tmp_path), finished)
    assert len(exemplars[0][0]) == 3, "the second box of the first image is removed"
    assert [u[:2] for u in used] == [[0, 0], [1, 0], [1, 1]]
    assert used[0][3] == [0.0, 0.0, 10.0, 10.0]
    everything, _, _ = worker_proposals.carried(str(tmp_path), [[*f[:3], []] for f in finished])
    assert len(everything[0][0]) == 4, "put back, it serves again (no stale cache)"


def test_the_exemplars_name_their_images_by_place_when_an_image_without_proposals_comes_first(tmp_path):
    from fewclick.server import worker_proposals

    for key in ("1-1-0", "1-2-0"):
        _squares(2).save(proposals_file(tmp_path, key))
    boxes = [[0, 0, 0, 10, 10]]
    finished = [["1-1-0", "one.png", boxes, []], ["1-2-0", "two.png", boxes, []]]
    assert [u[0] for u in worker_proposals.carried(str(tmp_path), finished)[2]] == [0, 1]
    # an image finished since, whose proposals are not made (its file is gone: none will be)
    _, _, used = worker_proposals.carried(str(tmp_path), [["1-9-0", "gone.png", boxes, []], *finished])
    assert [u[0] for u in used] == [1, 2], "the same two images, one place further down"


def test_mask_mode_opens_with_the_look_alikes_masks_where_they_lie(tmp_path):
    from fewclick.io.rle import rle_to_mask
    from fewclick.server import worker_mask_proposals

    assert worker_mask_proposals.mask_look_alikes(str(tmp_path), "1-3-0", []) is None, "not made yet"
    for key in ("1-1-0", "1-2-0", "1-3-0"):
        _squares(4).save(proposals_file(tmp_path, key))
    boxes = [[0, 0, 0, 10, 10], [0, 20, 0, 30, 10]]
    finished = [["1-1-0", "one.png", boxes, []], ["1-2-0", "two.png", boxes, []]]
    out = worker_mask_proposals.mask_look_alikes(str(tmp_path), "1-3-0", finished)
    assert out["state"] == "ready" and out["made"] == 4 and out["labels"] == [0, 0, 0, 0]
    shown = sorted(out["boxes"])
    assert shown == [[20.0 * i, 0.0, 20.0 * i + 10, 10.0] for i in range(4)]
    for box, rle in zip(out["boxes"], out["masks"]):
        mask = rle_to_mask(rle)
        assert mask.shape == (10, 80), "each mask at the image's size"
        ys, xs = np.nonzero(mask)
        assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == box, "the proposal's own pixels"
        assert mask.sum() == 100
    assert set(out["min_scores"]) == {0} and out["threshold"] > 0


def test_mask_mode_shows_one_object_once_and_waits_to_learn_from_finished_images(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    from fewclick.server import worker_mask_proposals, worker_proposals

    for key in ("1-1-0", "1-2-0"):
        _squares(4).save(proposals_file(tmp_path, key))
    boxes = [[0, 0, 0, 10, 10], [0, 20, 0, 30, 10]]
    finished = [["1-1-0", "one.png", boxes, []], ["1-2-0", "two.png", boxes, []]]
    # the open image: a square twice, once with a strip below it (box IoU 0.63, under box
    # NMS's 0.7; mask IoU 0.63), SAM surer of the square alone; and a square elsewhere
    found = _squares(3)
    taller = Proposals(
        np.array([[0, 0, 10, 16]], np.float32), np.array([0.8], np.float32), found.vectors[:1],
        [(0, 0, np.ones((16, 10), bool))], found.background, (16, 60),
    )  # fmt: skip
    both = Proposals(
        np.concatenate([found.boxes, taller.boxes]), np.concatenate([found.scores, taller.scores]),
        np.concatenate([found.vectors, taller.vectors]), [*found.masks, *taller.masks], found.background,
        (16, 60),
    )  # fmt: skip
    both.save(proposals_file(tmp_path, "1-3-0"))
    out = worker_mask_proposals.mask_look_alikes(str(tmp_path), "1-3-0", finished)
    assert out["state"] == "ready" and out["made"] == 4
    assert sorted(out["boxes"]) == [[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [40.0, 0.0, 50.0, 10.0]]
    # finished images whose proposals are not made yet teach nothing: they are started (one
    # a call), and the page is told to ask again
    started = []
    monkeypatch.setattr(worker_proposals, "prepare", lambda folder, items: started.extend(items))
    waiting = []
    for key in ("1-8-0", "1-9-0"):
        PILImage.new("RGB", (60, 16)).save(tmp_path / f"{key}.png")
        waiting.append([key, str(tmp_path / f"{key}.png"), boxes, []])
    assert worker_mask_proposals.mask_look_alikes(str(tmp_path), "1-3-0", waiting) == {"state": "learning"}
    assert started == [("1-8-0", str(tmp_path / "1-8-0.png"))]


def test_the_proposal_under_a_point_comes_back_in_the_image_s_pixels(tmp_path):
    from fewclick.server import worker_proposals

    assert worker_proposals.proposal_at(str(tmp_path), "1-9-0", 5, 5) is None, "none made yet"
    found = _squares(3)
    found.masks[1] = (20, 0, np.pad(np.ones((6, 6), bool), 2))  # the middle one a ring of background
    found.save(proposals_file(tmp_path, "1-9-0"))
    got = worker_proposals.proposal_at(str(tmp_path), "1-9-0", 25.5, 4.5)
    expected = np.zeros((10, 60), bool)
    expected[2:8, 22:28] = True
    np.testing.assert_array_equal(got.mask, expected)
    assert got.score == pytest.approx(0.9) and got.offset is None
    assert worker_proposals.proposal_at(str(tmp_path), "1-9-0", 20.5, 0.5) is None, "its ring: no object"
    assert worker_proposals.proposal_at(str(tmp_path), "1-9-0", 15.5, 5.5) is None, "between the squares"


def test_a_blank_image_is_searched_in_one_short_pass_and_nothing_is_found(maker):
    from fewclick.predict.proposals import IDLE_PROMPTS
    from fewclick.predict.stage_clock import StageClock

    clock = StageClock()
    blank = np.full((240, 320, 3), 128, np.uint8)
    made = maker(blank, key="blank", clock=clock)
    assert len(made) == 0, "nothing is there"
    (window,) = clock.windows
    assert 0 < made.prompts == window.prompts <= IDLE_PROMPTS, "it stops once its prompts keep nothing"
    assert window.seconds["encode"] > 0 and window.seconds["decode"] > 0


def test_a_window_stops_asking_once_its_prompts_keep_nothing_and_still_finds_every_object(maker):
    image, discs, squares = _scene(seed=4)
    made = maker(image, key="scene-4")
    assert made.prompts < maker.limit, f"asked {made.prompts} of at most {maker.limit}"
    iou = box_iou(np.concatenate([discs, squares]), made.boxes)
    assert (iou.max(1) >= 0.7).all(), f"every object is still boxed: {iou.max(1).round(2)}"
