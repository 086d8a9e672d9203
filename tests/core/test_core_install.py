"""``pip install fewclick`` without extras: io, metrics and the light simulators work with
none of the optional packages, and what needs one names its extra.

Each check runs in a fresh interpreter where importing an optional package fails, as it
does in a core install (measured in a real one: docs/install.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fewclick.extras import EXTRA_OF

BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, sys

    class _NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {sorted(EXTRA_OF)!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

    sys.meta_path.insert(0, _NotInstalled())
    """
)


REPO = Path(__file__).resolve().parents[2]


def _run(code: str, cwd: Path) -> dict:
    """Run ``code`` (which prints one JSON line last) in a core-like interpreter in ``cwd``."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_formats_round_trip_without_optional_packages(tmp_path):
    out = _run(
        """
        import json, sys, warnings
        from pathlib import Path
        import numpy as np
        from tests.io.test_formats import rich_dataset
        from fewclick.io import WRITERS, read_dataset, write_dataset

        from fewclick.io import FILE_WRITERS

        warnings.simplefilter("ignore")  # what each format leaves out is tested in tests/io
        data = rich_dataset(Path("data"))
        for rec in data.images:  # a world file georeferences each PNG for GeoJSON
            rec.path.with_suffix(".pgw").write_text("0.5\\n0\\n0\\n-0.5\\n500000\\n4100000\\n")
        first = data.images[0]
        first.objects = first.objects[np.array([0, 2, 3])]  # a box, a polygon, a mask: no oriented box
        result = {}
        for name in sorted(WRITERS):
            target = Path("out") / name
            target = target / "a.json" if name in FILE_WRITERS else target
            try:
                write_dataset(data, target, name)
                back = read_dataset(target)
                result[name] = ["ok", sum(len(r.objects) for r in back.images)]
            except ImportError as exc:
                result[name] = ["ImportError", str(exc)]
        heavy = sorted(m for m in ("cv2", "scipy", "torch", "sklearn", "matplotlib") if m in sys.modules)
        print(json.dumps({"formats": result, "heavy": heavy}))
        """,
        tmp_path,
    )
    assert out["heavy"] == []
    works = {name for name, (status, _) in out["formats"].items() if status == "ok"}
    # box, polygon and RLE formats need nothing optional
    assert {"coco", "coco_panoptic", "cvat", "labelstudio", "masks", "points", "voc", "yolo"} <= works
    for name, (status, detail) in out["formats"].items():
        if status != "ok":  # what traces a mask's outline or fits an oriented box needs OpenCV
            assert "pip install 'fewclick[image]'" in detail and "OpenCV" in detail, (name, detail)
    assert out["formats"]["coco"][1] == 3


def test_metrics_and_light_simulators_without_optional_packages(tmp_path):
    out = _run(
        """
        import json
        import numpy as np
        from fewclick.metrics.segmentation import boundary_f, mask_iou
        from fewclick.metrics.detection import box_iou
        from fewclick.simulate import centre_clicks, click_order, coarse_points, extreme_points, noisy_box
        from fewclick.simulate import corrective_clicks
        from fewclick.types import Objects

        mask = np.zeros((40, 40), bool)
        mask[10:30, 5:25] = True
        objects = Objects(labels=[0], boxes=np.array([[5.0, 10.0, 25.0, 30.0]]))
        rng = np.random.default_rng(0)
        result = {
            "iou": mask_iou(mask, np.roll(mask, 2, 1)),
            "boundary_f": boundary_f(mask, np.roll(mask, 2, 1)).f,
            "box_iou": float(box_iou(objects.boxes, objects.boxes)[0, 0]),
            "clicks": len(centre_clicks(objects, 1, click_order(objects, rng))),
            "coarse": coarse_points(objects, rng, masks=mask[None]).tolist(),
            "extreme": extreme_points(mask).points.tolist(),
            "noisy_box": len(noisy_box(objects.boxes[0], rng, sigma=2.0)),
        }
        try:
            corrective_clicks(mask, np.zeros_like(mask), 1, rng)
        except ImportError as exc:
            result["corrective"] = str(exc)
        print(json.dumps(result))
        """,
        tmp_path,
    )
    assert out["iou"] == pytest.approx(360 / 440)
    assert out["boundary_f"] == 1.0  # a 2-pixel shift is within the 2-pixel tolerance
    assert out["box_iou"] == 1.0 and out["clicks"] == 1 and out["noisy_box"] == 4
    (left, _), (_, top), (right, _), (_, bottom) = out["extreme"]
    assert (left, top, right, bottom) == (5, 10, 24, 29)  # pixels of the mask [10:30, 5:25]
    x, y = out["coarse"][0]
    assert 5 <= x < 25 and 10 <= y < 30
    assert "pip install 'fewclick[image]'" in out["corrective"]


def test_commands_name_the_extra_they_need(tmp_path):
    out = _run(
        """
        import contextlib, io, json
        from fewclick.cli import main

        said = {}
        for argv in (["serve", "--data", "srv", "--port", "1"],):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code
            said[argv[0]] = [code, err.getvalue()]
        print(json.dumps(said))
        """,
        tmp_path,
    )
    code, message = out["serve"]
    assert code == 2 and "pip install 'fewclick[server]'" in message, message


def test_a_present_but_failing_package_keeps_its_own_error():
    from fewclick.extras import require

    # SciPy is installed here: a failure inside it is not "install the extra"
    with pytest.raises(ModuleNotFoundError) as err:
        require("scipy.not_a_module", "a check")
    assert "pip install" not in str(err.value)


def test_the_numpy_stand_ins_agree_with_scipy():
    """Boundary F's disk test, label windows and the nearest mask pixel against SciPy's
    distance transform and find_objects, on random masks (SciPy is in the test install)."""
    import numpy as np
    from scipy import ndimage

    from fewclick.io.labelmap import label_windows
    from fewclick.metrics.segmentation import _near

    rng = np.random.default_rng(3)
    for _ in range(200):
        h, w = rng.integers(1, 40, 2)
        mask = rng.random((h, w)) < rng.uniform(0.01, 0.5)
        radius = float(rng.choice([0, 0.5, 1, 1.5, 2, 2**0.5, 3.7, 6]))
        if mask.any():
            expected = ndimage.distance_transform_edt(~mask) <= radius
            np.testing.assert_array_equal(_near(mask, radius), expected)
        ids = rng.integers(-2, 6, (h, w))
        count = int(rng.integers(1, 7))
        assert label_windows(ids, count) == ndimage.find_objects(np.where(ids > 0, ids, 0), max_label=count)
    with pytest.raises(ValueError, match="tolerance_px"):
        from fewclick.metrics.segmentation import boundary_f

        boundary_f(np.ones((4, 4), bool), np.ones((4, 4), bool), float("nan"))
