"""The command line, end to end on synthetic data (no shared data needed, but for the tests
marked ``shared_data``)."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import shared_dataset
from fewclick.cli import main
from fewclick.data.synthetic import make_dataset
from fewclick.io import WRITERS, read_dataset
from fewclick.io.results import ResultsError, read_results, write_results
from fewclick.io.rle import rle_to_mask
from fewclick.types import Detections, rboxes_to_boxes


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    ds = make_dataset("aerial", 3, seed=7, width=160, height=128, out_dir=out)
    return out, ds


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_data_info_prints_the_summary(synth, capsys):
    out, ds = synth
    code, stdout, _ = _run(capsys, "data", "info", out / "annotations.json")
    info = json.loads(stdout)
    assert code == 0 and info["format"] == "coco" and info["images"] == 3
    assert info["objects"] == sum(len(r.objects) for r in ds.images)
    assert info["classes"] == ds.classes
    assert sum(info["objects_per_class"].values()) == info["objects"]


def test_convert_to_dota_keeps_every_object(synth, capsys, tmp_path):
    out, ds = synth
    code, _, _ = _run(
        capsys, "data", "convert", out / "annotations.json", "--to", "dota", "--out", tmp_path / "dota"
    )
    assert code == 0
    back = read_dataset(tmp_path / "dota", "dota")
    assert [(r.width, r.height) for r in back.images] == [(160, 128)] * 3  # images linked beside the labels
    assert sum(len(r.objects) for r in back.images) == sum(len(r.objects) for r in ds.images)


def test_convert_offers_every_format_the_library_writes(capsys):
    with pytest.raises(SystemExit):
        main(["data", "convert", "--help"])
    usage = capsys.readouterr().out
    assert "{" + ",".join(w.replace("_", "-") for w in WRITERS) + "}" in usage


def _regions(dataset) -> dict[str, list[tuple[str, bool, bytes]]]:
    """Per image, the sorted (class name, crowd, mask bytes) of its objects."""
    return {
        rec.file_name: sorted(
            (dataset.classes[label], bool(crowd), rle_to_mask(seg).tobytes())
            for label, crowd, seg in zip(
                rec.objects.labels, rec.objects.ignore, rec.objects.segmentations, strict=True
            )
        )
        for rec in dataset.images
    }


@pytest.mark.shared_data
def test_convert_coco_panoptic_to_masks_and_back_keeps_every_region(capsys, tmp_path):
    sample = shared_dataset("coco_panoptic_sample")
    source = read_dataset(sample, "coco_panoptic")
    assert sum(len(r.objects) for r in source.images) > 0
    code, stdout, _ = _run(capsys, "data", "convert", sample, "--to", "masks", "--out", tmp_path / "masks")
    assert code == 0 and "as masks" in stdout
    masks = read_dataset(tmp_path / "masks")
    assert masks.format == "masks" and masks.classes == source.classes
    assert _regions(masks) == _regions(source)
    out = tmp_path / "back" / "panoptic.json"
    code, _, _ = _run(capsys, "data", "convert", tmp_path / "masks", "--to", "coco_panoptic", "--out", out)
    assert code == 0
    back = read_dataset(out)
    assert back.format == "coco_panoptic" and back.classes == source.classes
    assert _regions(back) == _regions(source)
    assert all(r.path is not None and r.path.is_file() for r in back.images), "images linked beside it"


def test_show_draws_every_input_kind(synth, capsys, tmp_path):
    out, ds = synth
    name = ds.images[0].file_name
    code, stdout, _ = _run(
        capsys,
        "data",
        "show",
        out / "annotations.json",
        "--image",
        name,
        "--out",
        tmp_path / "s.png",
        "--clicks",
        "all",
    )
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 10_000


def test_eval_ground_truth_as_predictions_scores_one(synth, capsys, tmp_path):
    out, _ = synth
    ds = read_dataset(out / "annotations.json")
    dets = [Detections(r.objects.boxes, np.ones(len(r.objects)), r.objects.labels) for r in ds.images]
    write_results(tmp_path / "pred.json", ds, dets)
    for ap in ("voc07", "coco"):
        code, stdout, _ = _run(
            capsys,
            "eval",
            "detections",
            "--gt",
            out / "annotations.json",
            "--pred",
            tmp_path / "pred.json",
            "--ap",
            ap,
        )
        assert code == 0 and json.loads(stdout)["mAP"] == pytest.approx(1.0)


def test_results_round_trip_and_errors(synth, tmp_path):
    out, _ = synth
    ds = read_dataset(out / "annotations.json")
    rec = ds.images[0]
    det = Detections(rec.objects.boxes[:2], [0.9, 0.4], rec.objects.labels[:2], rboxes=rec.objects.rboxes[:2])
    write_results(tmp_path / "r.json", ds, [det, Detections.empty(True), Detections.empty(True)])
    back = read_results(tmp_path / "r.json", ds)
    np.testing.assert_allclose(back[0].boxes, rboxes_to_boxes(det.rboxes), atol=0.05)
    np.testing.assert_allclose(back[0].scores, [0.9, 0.4])
    assert back[0].rboxes is not None and len(back[1]) == 0
    bad = [
        ('[{"image_id": 999, "category_id": 1, "bbox": [0,0,1,1], "score": 1}', "not valid JSON"),
        ('[{"image_id": 999, "category_id": 1, "bbox": [0,0,1,1], "score": 1}]', "entry 0: unknown image"),
        ('[{"image_id": 1, "category_id": 42, "bbox": [0,0,1,1], "score": 1}]', "unknown category"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0,0,-1,1], "score": 1}]', "w, h >= 0"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0,0,1,1], "score": "high"}]', "'score'"),
        ('[{"image_id": 1, "category_id": 1, "score": 1}]', "expected one of 'bbox'"),
        ('{"image_id": 1}', "expected a JSON list"),
    ]
    for text, message in bad:
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(ResultsError, match=message):
            read_results(tmp_path / "bad.json", ds)


def test_user_errors_exit_2_with_one_line_naming_the_problem(synth, capsys, tmp_path):
    out, _ = synth
    (tmp_path / "cut.json").write_text('{"images": [{"id": 1, "file_name"')
    code, _, err = _run(capsys, "data", "info", tmp_path / "cut.json", "--format", "coco")
    assert code == 2 and "cut.json" in err and "Traceback" not in err
    code, _, err = _run(capsys, "data", "info", tmp_path / "missing")
    assert code == 2 and "missing" in err
    code, _, err = _run(
        capsys,
        "data",
        "show",
        out / "annotations.json",
        "--image",
        "x",
        "--out",
        tmp_path / "x.png",
        "--clicks",
        "telepathy",
    )
    assert code == 2 and "telepathy" in err
    code, _, err = _run(
        capsys, "data", "show", out / "annotations.json", "--image", "nope", "--out", tmp_path / "x.png"
    )
    assert code == 2 and "no image named 'nope'" in err


def _one_object_dataset(classes, point):
    from fewclick.io.dataset import Dataset, ImageRecord
    from fewclick.types import Objects

    nan = np.full((1, 4), np.nan, np.float32)
    objects = Objects(labels=[0], boxes=nan, points=np.asarray([point], np.float32))
    return Dataset(classes, [ImageRecord("a.png", 8, 8, objects)], format="points")


@pytest.mark.parametrize(
    "command, point, model_classes, message",
    [
        ("train", [np.nan, np.nan], None, "a.png: object 0 has no point and no box"),
        ("refine", [2.0, 3.0], ["cat"], "the model's classes ['cat'] are not the dataset's ['cell']"),
    ],
)
def test_point_commands_refuse_bad_input_with_exit_2_on_stderr(
    monkeypatch, capsys, tmp_path, command, point, model_classes, message
):
    import fewclick.io
    from fewclick.predict.points import PointRefiner

    monkeypatch.setattr(fewclick.io, "read_dataset", lambda *a: _one_object_dataset(["cell"], point))
    monkeypatch.setattr(
        PointRefiner, "load", classmethod(lambda cls, path: SimpleNamespace(classes=model_classes))
    )
    if command == "train":
        argv = ("train", "cpr", "--data", tmp_path, "--out", tmp_path / "m", "--steps", "1")
    else:
        argv = ("refine", "points", "--model", tmp_path / "m.pt", "--data", tmp_path, "--out", tmp_path / "o")
    code, stdout, err = _run(capsys, *argv)
    assert (code, stdout) == (2, "") and err == f"fewclick: error: {message}\n"


def test_data_inputs_writes_its_picture(capsys, tmp_path):
    code, stdout, _ = _run(capsys, "data", "inputs", "--out", tmp_path)
    assert code == 0 and (tmp_path / "inputs.png").stat().st_size > 20_000
    assert "synthetic" in stdout


def test_demo_sets_up_a_project_with_finished_and_reference_images(capsys, tmp_path):
    from fewclick.server.db import Image, Project, init_db, session_factory, sqlite_url

    code, stdout, _ = _run(capsys, "demo", "--out", tmp_path, "--no-serve")
    assert code == 0 and "demo project" in stdout
    with session_factory(init_db(sqlite_url(tmp_path / "fewclick.db")))() as session:
        project = session.query(Project).one()
        assert project.oriented, "the synthetic scenes' oriented boxes make an oriented project"
        images = session.query(Image).filter_by(project_id=project.id).order_by(Image.file_name).all()
        assert [im.status for im in images] == ["done"] * 4 + ["new"] * 8
        work = [a for im in images for a in im.annotations if not a.reference]
        reference = [a for im in images for a in im.annotations if a.reference]
        assert work and len(reference) > len(work)
        assert {a.image_id for a in work} == {im.id for im in images[:4]}
    code, _, _ = _run(capsys, "demo", "--out", tmp_path, "--no-serve")
    assert code == 0, "a second run reuses the project"


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "fewclick", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("fewclick ")


def test_converted_coco_elsewhere_still_finds_the_images(synth, capsys, tmp_path):
    out, ds = synth
    code, _, _ = _run(
        capsys,
        "data",
        "convert",
        out / "annotations.json",
        "--to",
        "coco",
        "--out",
        tmp_path / "elsewhere" / "copy.json",
    )
    assert code == 0
    back = read_dataset(tmp_path / "elsewhere" / "copy.json")
    assert all(r.path is not None and r.path.is_file() for r in back.images)
    code, stdout, _ = _run(
        capsys,
        "data",
        "show",
        tmp_path / "elsewhere" / "copy.json",
        "--image",
        back.images[0].file_name,
        "--out",
        tmp_path / "picture",
    )
    assert code == 0 and (tmp_path / "picture.png").is_file() and "picture.png" in stdout


def test_train_then_protocol_detect_write_a_checkpoint_results_and_a_plot(synth, capsys, tmp_path):
    out, _ = synth
    data = out / "annotations.json"
    code, stdout, _ = _run(
        capsys, "train", "detect", "--data", data, "--out", tmp_path / "m", "--steps", "2", "--crop", "64"
    )
    assert code == 0 and (tmp_path / "m" / "last.pt").is_file()
    code, stdout, _ = _run(
        capsys,
        "protocol",
        "detect",
        "--models",
        tmp_path / "m",
        "--data",
        data,
        "--clicks",
        "2",
        "--sessions",
        "1",
        "--out",
        tmp_path / "r.json",
    )
    assert code == 0 and (tmp_path / "r.png").is_file()
    result = json.loads((tmp_path / "r.json").read_text())["methods"]["c3det"]
    assert result["k"] == [0, 1, 2] and len(result["mAP_mean"]) == 3
    code, _, err = _run(
        capsys,
        "protocol",
        "detect",
        "--models",
        f"passthrough:{tmp_path / 'm'}",
        "--data",
        data,
        "--out",
        tmp_path / "p.json",
    )
    assert code == 2 and "Passthrough runs a plain detector" in err


def test_train_then_protocol_segment_with_the_baselines(capsys, tmp_path):
    make_dataset("cells", 2, seed=3, width=96, height=96, out_dir=tmp_path / "cells")
    data = tmp_path / "cells" / "annotations.json"
    code, stdout, _ = _run(
        capsys, "train", "segment", "--data", data, "--out", tmp_path / "m", "--steps", "2"
    )
    assert code == 0 and (tmp_path / "m" / "m_b.pt").is_file() and (tmp_path / "m" / "m_bc.pt").is_file()
    code, stdout, _ = _run(
        capsys,
        "protocol",
        "segment",
        "--models",
        tmp_path / "m",
        "grabcut",
        "box",
        "--data",
        data,
        "--max-instances",
        "3",
        "--noc",
        "--out",
        tmp_path / "r.json",
    )
    assert code == 0 and (tmp_path / "r.png").is_file()
    methods = json.loads((tmp_path / "r.json").read_text())["methods"]
    assert sorted(methods) == ["box", "grabcut", "m"]
    for result in methods.values():
        assert result["instances"] == 3 and len(result["mIoU"]) == 4
        assert 1 <= result["noc"]["NoC@85"] <= 20
    assert len(set(methods["box"]["mIoU"])) == 1, "the box ignores clicks"
    code, _, err = _run(
        capsys,
        "protocol",
        "segment",
        "--models",
        tmp_path / "nothing",
        "--data",
        data,
        "--out",
        tmp_path / "x.json",
    )
    assert code == 2 and "nothing" in err


def test_log_level_comes_from_the_flag_or_fewclick_log_and_a_bad_one_is_named(synth, monkeypatch):
    out, _ = synth
    monkeypatch.delenv("FEWCLICK_LOG", raising=False)

    def run(*argv, env=None):
        cmd = [sys.executable, "-m", "fewclick", *argv, "data", "info", str(out / "annotations.json")]
        return subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60
        )

    quiet, loud, by_env, bad = (
        run(),
        run("--log-level", "info"),
        run(env={"FEWCLICK_LOG": "debug"}),
        run(env={"FEWCLICK_LOG": "loud"}),
    )
    assert quiet.returncode == 0 and quiet.stderr == ""  # data info logs nothing by default
    assert loud.returncode == 0 and "INFO fewclick.io: read " in loud.stderr
    assert "DEBUG fewclick: fewclick " in by_env.stderr
    assert bad.returncode == 2 and bad.stdout == "" and "FEWCLICK_LOG='LOUD'" in bad.stderr
