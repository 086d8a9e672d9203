"""benchmarks/sam_pick.py on a small synthetic dataset: the offsets fit on the first images
and the mask served scored on the next, with SAM's own choice and the project's."""

import importlib
import json
from pathlib import Path

from fewclick.data.synthetic import make_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_choice_is_fit_on_the_first_images_and_scored_on_the_next(sam_files, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("sam_pick")
    make_dataset("cells", 6, seed=2, width=160, height=160, out_dir=tmp_path / "cells")
    out = tmp_path / "pick.json"
    data = str(tmp_path / "cells" / "annotations.json")
    assert (
        bench.main(
            ["--data", data, "--fit", "2", "--images", "2", "--out", str(out), "--work", str(tmp_path / "w")]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["fit_images"] == 2 and report["fit_objects"] > 0
    assert set(report["offsets"]) <= {"box", "click"}
    for kind in ("box", "click"):
        row = report["prompts"][kind]
        assert row["objects"] > 0
        for key in ("mIoU_own", "mIoU_fitted", "tab_share_own", "tab_share_fitted"):
            assert 0 <= row[key] <= 1
        if not report["offsets"].get(kind):
            assert row["mIoU_fitted"] == row["mIoU_own"], "no offsets: SAM's own choice both times"
