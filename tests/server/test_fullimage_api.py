"""Full-image segmentation through the API (``POST /api/images/{id}/fullimage``): what is
refused and why (a 422 naming the region, scribble or point; nothing saved is touched),
the answer's masks without the SAM files (BoxFill serves) and with them (SamCompete,
skipped naming the fix when they are absent), and who may ask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from clients import client_for, make_user
from hypothesis import given
from hypothesis import strategies as st

from fewclick.io.rle import rle_to_mask
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.server.fullimage import MAX_REGIONS, check_regions, order_extreme
from fewclick.simulate.extreme import extreme_points

H, W = 120, 160


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A grey textured background (region 0), a red disc (1) and a blue bar (2): (RGB image,
    int label map)."""
    rng = np.random.default_rng(0)
    image = rng.normal(120, 10, (H, W, 3)).clip(0, 255).astype(np.uint8)
    gt = np.zeros((H, W), np.int32)
    ys, xs = np.mgrid[:H, :W]
    gt[(xs - 50) ** 2 + (ys - 60) ** 2 < 25**2] = 1
    gt[20:50, 100:150] = 2
    image[gt == 1] = (210, 40, 40)
    image[gt == 2] = (40, 60, 200)
    return image, gt


def _extreme(gt: np.ndarray, k: int) -> list[list[float]]:
    return extreme_points(gt == k).points.tolist()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("fullimage")
    (root / "images").mkdir()
    image, gt = _scene()
    cv2.imwrite(str(root / "images" / "scene.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    np.save(root / "gt.npy", gt)
    return root


@pytest.fixture(scope="module")
def app(home):
    return create_app(sqlite_url(home / "app.db"), home / "data", data_roots=[home])


@pytest.fixture(scope="module")
def client(app):
    with client_for(app) as c:
        yield c


@pytest.fixture(scope="module")
def image_id(client, home) -> int:
    r = client.post("/api/projects", json={"name": "scene", "folder": str(home / "images"), "classes": ["a"]})
    assert r.status_code == 201, r.text
    return client.get(f"/api/projects/{r.json()['project']['id']}/images").json()[0]["id"]


@pytest.fixture
def no_sam(tmp_path, monkeypatch):
    """The SAM files are not set up: BoxFill serves."""
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path))


# ------------------------------------------------------------------ the checks alone
BOX = [[10, 30], [40, 10], [70, 30], [40, 50]]  # left, top, right, bottom: box 10-71 x 10-51
OTHER = [[80, 60], [100, 55], [120, 60], [100, 90]]


def _region(extreme=BOX, scribbles=()):
    return {"extreme": [list(p) for p in extreme], "scribbles": [list(map(list, s)) for s in scribbles]}


LINE = [[10, 30], [20, 30], [30, 30], [40, 30]]
OUT = "is outside the 160 x 120 image"


@pytest.mark.parametrize(
    "regions, changed, message",
    [
        ([], None, "expected at least one region, got none"),
        ([_region(BOX[:3])], None, "region 0: expected 4 extreme points"),
        ([_region(BOX + [[20, 20]])], None, "got 5"),
        ([_region(LINE)], None, "do not form a box: they span 30 px across and 0 px down"),
        ([_region([[5, 5]] * 4)], None, "do not form a box"),
        (
            [_region(), _region(OTHER), _region(BOX[::-1])],
            None,
            "region 2 has the same extreme points as region 0",
        ),
        ([_region(BOX, [[[20, 30]]])], None, "region 0, scribble 0 has zero length (1 points"),
        ([_region(BOX, [[[20, 30], [20.2, 30.3]]])], None, "scribble 0 has zero length (2 points, 0.4 px"),
        ([_region(BOX, [[[20, 30], [25, 30]], []])], None, "region 0, scribble 1 has zero length (0 points"),
        ([_region(BOX, [[[150, 110], [100, 30]]])], None, "starts at (150, 110), outside every region's box"),
        ([_region(BOX, [[[20, 30], [170, 30]]])], None, f"region 0, scribble 0: point 1 at (170, 30) {OUT}"),
        ([_region([[10, 30], [40, -1], [70, 30], [40, 50]])], None, f"extreme point 1 at (40, -1) {OUT}"),
        ([_region([[10, 30], [40, 10], [160, 30], [40, 50]])], None, f"extreme point 2 at (160, 30) {OUT}"),
        (
            [_region([[10, 30], [40, 10], [70, float("nan")], [40, 50]])],
            None,
            "point 2 at (70, nan) is not finite",
        ),
        ([_region(), _region(OTHER)], [2], "changed holds 2, not a region index (0 to 1)"),
        ([_region(), _region(OTHER)], [1, 1], "changed names a region twice"),
    ],
)
def test_bad_regions_are_refused_naming_the_problem(regions, changed, message):
    with pytest.raises(ValueError) as info:
        check_regions(regions, changed, W, H)
    assert message in str(info.value)


def test_two_regions_with_the_same_box_but_other_points_are_both_kept():
    same_box = [[10, 20], [30, 10], [70, 40], [50, 50]]  # the box of BOX, other points on its sides
    check_regions([_region(), _region(same_box)], None, W, H)  # no error: both are served


def test_the_limits_on_regions_and_image_size():
    regions = [_region([[x, 0], [x + 1, 0], [x + 1, 1], [x, 1]]) for x in range(MAX_REGIONS + 1)]
    check_regions(regions[:MAX_REGIONS], None, 1000, 1000)  # 500 are served
    with pytest.raises(ValueError, match="501 regions: at most 500"):
        check_regions(regions, None, 1000, 1000)
    with pytest.raises(ValueError, match="6000 x 6000 = 36000000 pixels"):
        check_regions(regions[:1], None, 6000, 6000)


@given(st.permutations(range(4)))
def test_extreme_points_in_any_order_come_out_left_top_right_bottom(order):
    got = order_extreme([BOX[k] for k in order])
    np.testing.assert_array_equal(got, np.array(BOX, np.float32))


def test_a_corner_point_serves_the_side_that_leaves_the_others_nearest_theirs():
    # (10, 10) is both left- and top-most: as left it leaves (60, 25) 15 px below the top,
    # as top it leaves (30, 40) 20 px right of the left side
    got = order_extreme([[60, 40], [10, 10], [30, 40], [60, 25]])
    assert got.tolist() == [[10, 10], [60, 25], [60, 40], [30, 40]]


# ------------------------------------------------------------------ through the API
def _post(client, image_id, regions, changed=None):
    return client.post(f"/api/images/{image_id}/fullimage", json={"regions": regions, "changed": changed})


@pytest.mark.parametrize(
    "regions, message",
    [
        ([_region(BOX[:3])], "region 0: expected 4 extreme points"),
        ([_region(LINE)], "do not form a box"),
        ([_region(), _region(BOX)], "region 1 has the same extreme points as region 0"),
        ([_region(BOX, [[[20, 30], [20, 30]]])], "has zero length"),
        ([_region(BOX, [[[150, 110], [100, 30]]])], "outside every region's box"),
        ([_region([[0, 0], [1, 0], [1, 1], [0, 1]])] * 501, "501 regions: at most 500"),
        ([_region([[10, 30], [40, 10], [700, 30], [40, 50]])], "is outside the 160 x 120 image"),
    ],
)
def test_the_route_refuses_bad_regions_with_422_and_saves_nothing(client, image_id, regions, message):
    before = client.get(f"/api/images/{image_id}").json()
    r = _post(client, image_id, regions)
    assert r.status_code == 422 and message in r.json()["detail"], r.text
    after = client.get(f"/api/images/{image_id}").json()
    assert after["revision"] == before["revision"] and after["annotations"] == before["annotations"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_coordinates_are_refused(client, image_id, number):
    body = '{"regions": [{"extreme": [[10, 30], [40, 10], [70, NUMBER], [40, 50]]}]}'.replace(
        "NUMBER", number
    )
    r = client.post(
        f"/api/images/{image_id}/fullimage", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "regions", 0, "extreme", 2, 1] and "finite" in error["msg"]


def test_an_unknown_image_is_404(client):
    assert _post(client, 10**9, [_region()]).status_code == 404


def _masks(answer: dict) -> np.ndarray:
    return np.stack([rle_to_mask(r["rle"]) for r in answer["regions"]])


def test_without_sam_box_fill_gives_every_pixel_one_region(client, image_id, home, no_sam):
    gt = np.load(home / "gt.npy")
    regions = [_region(_extreme(gt, k)) for k in (0, 1, 2)]
    r = _post(client, image_id, regions)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["method"] == "box_fill" and out["ms"] >= 0
    masks = _masks(out)
    assert masks.shape == (3, H, W) and (masks.sum(axis=0) == 1).all(), "every pixel in exactly one region"
    assert [a["area"] for a in out["regions"]] == masks.sum(axis=(1, 2)).tolist()
    assert [a["index"] for a in out["regions"]] == [0, 1, 2]
    # a region is its box: the disc's region is the disc's bounding box
    ys, xs = np.nonzero(gt == 1)
    assert masks[1, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()


def test_a_region_the_others_cover_is_answered_with_area_zero(client, image_id, no_sam):
    inner = [[20, 30], [40, 20], [60, 30], [40, 40]]
    same_box = [[10, 20], [30, 10], [70, 40], [50, 50]]
    # BoxFill paints larger boxes first, then equal boxes in order: region 1 covers region 0
    out = _post(client, image_id, [_region(), _region(same_box), _region(inner)]).json()
    areas = [a["area"] for a in out["regions"]]
    assert areas[0] == 0 and areas[1] > 0 and areas[2] > 0


def test_who_may_ask_annotators_yes_reviewers_no(app, client, image_id, no_sam):
    annotator, reviewer = make_user(app, "ann", "annotator"), make_user(app, "rev", "reviewer")
    for token, status in ((annotator, 200), (reviewer, 403)):
        r = client.post(
            f"/api/images/{image_id}/fullimage",
            json={"regions": [_region()]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == status, r.text


# ------------------------------------------------------------------ with SAM
def test_sam_compete_finds_the_regions_and_a_scribble_moves_pixels(client, image_id, home, sam_files):
    gt = np.load(home / "gt.npy")
    regions = [_region(_extreme(gt, k)) for k in (0, 1, 2)]
    first = _post(client, image_id, regions)
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["method"] == "sam_compete"
    masks = _masks(out)
    assert (masks.sum(axis=0) == 1).all(), "every pixel in exactly one region"
    ious = [(masks[k] & (gt == k)).sum() / (masks[k] | (gt == k)).sum() for k in (1, 2)]
    assert min(ious) > 0.8, f"the disc and the bar from their extreme points: IoU {ious}"

    # a scribble of the background from inside it, across the bar's top rows: the pixels
    # it crosses become background, and only regions 0 and 2 change
    regions[0]["scribbles"] = [[[95, 15], [125, 25], [155, 22]]]
    second = _post(client, image_id, regions, changed=[0]).json()
    after = _masks(second)
    assert after[0, 25, 125] and not masks[0, 25, 125], "the scribbled pixel changed region"
    areas = [a["area"] for a in second["regions"]]
    assert areas[0] > out["regions"][0]["area"] and areas[2] < out["regions"][2]["area"]
    disc_iou = (after[1] & masks[1]).sum() / (after[1] | masks[1]).sum()
    assert disc_iou > 0.95, "the disc, away from the scribble, stays"


def test_the_worker_gives_a_predictor_with_update_only_the_changed_regions(home, monkeypatch):
    """The seam for the trained model: ``update(prompts, changed)`` once the image has been
    predicted, ``predict(prompts)`` first and whenever ``changed`` is None."""
    from fewclick.server import fullimage, worker_masks

    calls = []

    class Recording:
        name = "recording"

        def set_image(self, image):
            self.shape = image.shape[:2]

        def predict(self, prompts):
            calls.append(("predict", len(prompts)))
            return np.zeros(self.shape, np.int32)

        def update(self, prompts, changed):
            calls.append(("update", changed))
            return np.ones(self.shape, np.int32)

    monkeypatch.setattr(fullimage, "fullimage_predictor", lambda sam, model=None: Recording())
    monkeypatch.setattr(worker_masks, "_FULLIMAGE", type(worker_masks._FULLIMAGE)())
    path = str(home / "images" / "scene.png")
    regions = [_region(), _region(OTHER)]
    first = worker_masks.fullimage(path, None, regions, [1])
    second = worker_masks.fullimage(path, None, regions, [1])
    third = worker_masks.fullimage(path, None, regions, None)
    assert calls == [("predict", 2), ("update", [1]), ("predict", 2)]
    assert [r["area"] for r in first["regions"]] == [H * W, 0]
    assert [r["area"] for r in second["regions"]] == [0, H * W] and third["method"] == "recording"


def test_a_trained_model_in_the_data_folder_serves_instead(client, image_id, home, no_sam):
    import torch

    from fewclick.models.checkpoint import write_checkpoint
    from fewclick.models.fullimage import KIND, VERSION, FullImageConfig, FullImageNet

    config = FullImageConfig(backbone="scratch", channels=8, head_width=8, scratch_side=64)
    torch.manual_seed(0)
    model = home / "data" / "models" / "fullimage.pt"
    write_checkpoint(model, KIND, VERSION, config=config.to_dict(), model=FullImageNet(config).state_dict())
    try:
        gt = np.load(home / "gt.npy")
        r = _post(client, image_id, [_region(_extreme(gt, k)) for k in (0, 1, 2)])
        assert r.status_code == 200, r.text
        assert r.json()["method"] == "full_image"
        assert (_masks(r.json()).sum(axis=0) == 1).all(), "every pixel in exactly one region"
    finally:
        model.unlink()
