"""Reading and writing fewclick model files: one place for the errors a user sees on a bad file.

A checkpoint is a dict with the model's ``kind`` and format ``version`` beside its config
and weights; each model module (:mod:`~fewclick.models.detector`,
:mod:`~fewclick.models.masknet`, :mod:`~fewclick.models.cpr`) names its own kind and
version and builds its network from what :func:`read_checkpoint` returns.
"""

from __future__ import annotations

from pathlib import Path

import torch


def read_checkpoint(path: str | Path, kind: str, version: int) -> dict:
    """The checkpoint dict of a fewclick model file of ``kind`` and ``version``.

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
    tmp = path.with_suffix(".tmp")
    torch.save({"kind": kind, "version": version, **fields}, tmp)
    tmp.replace(path)
    return path


def load_module(
    path: str | Path, kind: str, version: int, build, config_key: str = "config", weights_key: str = "model"
) -> tuple[torch.nn.Module, dict]:
    """``(network in eval mode, checkpoint dict)`` of a ``kind`` checkpoint: ``build`` makes
    the network from the config dict stored under ``config_key``, then the weights under
    ``weights_key`` load into it. A config or weights that do not fit raise ValueError
    naming the file."""
    ckpt = read_checkpoint(path, kind, version)
    try:
        net = build(ckpt[config_key])
        net.load_state_dict(ckpt[weights_key])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: weights do not fit the stored config ({exc})") from None
    return net.eval(), ckpt
