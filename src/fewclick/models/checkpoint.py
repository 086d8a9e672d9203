"""Reading and writing fewclick model files: one place for the errors a user sees on a bad file.

Every model kind has one format: a dict with the model's ``kind`` and format ``version``, its
config as a plain dict under ``config``, its weights under ``model``, and whatever else its
training records (class names, the optimizer's state, ...). Each model module
(:mod:`~fewclick.models.detector`, :mod:`~fewclick.models.masknet`,
:mod:`~fewclick.models.cpr`, :mod:`~fewclick.models.fullimage`) names its kind and version,
writes with :func:`save_module` and reads with :func:`load_module`; its config class derives
from :class:`StoredConfig`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import asdict
from pathlib import Path

import torch

#: a folder of fault switches for soak tests (``benchmarks/soak.py``): while ``<folder>/enospc``
#: exists, every checkpoint write fails as a full disk would. Unset: no fault is ever made.
FAULTS_ENV = "FEWCLICK_FAULTS"


class StoredConfig:
    """What a model's config (a frozen dataclass deriving from this, ``name="..."`` naming it in
    errors) needs to travel in its checkpoints: :meth:`to_dict`, a plain dict, and
    :meth:`from_dict`, which refuses keys it does not know (a newer fewclick's) and makes the
    lists a stored dict may hold for tuple fields tuples again."""

    _name = "config"

    def __init_subclass__(cls, name: str = "", **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._name = name or cls._name

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown {cls._name} keys {sorted(unknown)}: a model from a newer fewclick?")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def read_checkpoint(path: str | Path, kind: str, version: int, upgrades: dict | None = None) -> dict:
    """The checkpoint dict of a fewclick model file of ``kind`` and ``version``;
    ``upgrades`` maps an older version to the function that makes its dict this version's.

    A missing file raises FileNotFoundError; a corrupt file, another kind of file or
    another version raises ValueError naming the file and what was found."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except Exception as exc:  # torch raises many kinds for a corrupt file
        raise ValueError(f"{path}: not a readable fewclick model ({type(exc).__name__}: {exc})") from None
    found = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
    if found != kind:
        raise ValueError(f"{path}: expected a fewclick {kind} checkpoint, got {found!r}")
    if ckpt.get("version") in (upgrades or {}):
        ckpt = {**upgrades[ckpt["version"]](ckpt), "version": version}
    if ckpt.get("version") != version:
        raise ValueError(
            f"{path}: checkpoint version {ckpt.get('version')} is not {version}; retrain with this fewclick"
        )
    return ckpt


def write_checkpoint(path: str | Path, kind: str, version: int, **fields) -> Path:
    """Write ``{"kind": kind, "version": version, **fields}`` to ``path`` (its folder made
    if missing) through a temporary file, so a reader never sees a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two writers never share one
    try:
        _injected_fault(path)
        torch.save({"kind": kind, "version": version, **fields}, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind
    return path


def _injected_fault(path: Path) -> None:
    """OSError(ENOSPC) while the soak test's switch says the disk is full (:data:`FAULTS_ENV`)."""
    folder = os.environ.get(FAULTS_ENV)
    if folder and (Path(folder) / "enospc").exists():
        raise OSError(errno.ENOSPC, f"No space left on device (injected by {FAULTS_ENV})", str(path))


def save_module(path: str | Path, kind: str, version: int, net: torch.nn.Module, **fields) -> Path:
    """Write ``net`` (its ``config.to_dict()`` and its weights) with ``fields`` as a ``kind``
    checkpoint that :func:`load_module` reads."""
    config, weights = net.config.to_dict(), net.state_dict()
    return write_checkpoint(path, kind, version, config=config, model=weights, **fields)


def load_module(
    path: str | Path, kind: str, version: int, build, upgrades: dict | None = None
) -> tuple[torch.nn.Module, dict]:
    """``(network in eval mode, checkpoint dict)`` of a ``kind`` checkpoint: ``build`` makes
    the network from the stored config dict, then the weights load into it (``upgrades``: see
    :func:`read_checkpoint`). A config or weights that do not fit raise ValueError naming
    the file."""
    ckpt = read_checkpoint(path, kind, version, upgrades)
    try:
        net = build(ckpt["config"])
        net.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: weights do not fit the stored config ({exc})") from None
    return net.eval(), ckpt
