"""The papers' evaluation sessions, run against any predictor."""

from __future__ import annotations

import numpy as np


def json_ready(value):
    """JSON-ready: NaN -> None, numpy scalars -> Python numbers, tuples -> lists."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
