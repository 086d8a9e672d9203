"""benchmarks/screenshots_outline.py's choice of the stretch it redraws, on a square object
whose outline has one vertex dented inwards: the stretch over the dent, its two clicks on
the reference boundary, a vertex kept out of it, and no stretch when none fits."""

import importlib
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import MultiLineString, Point

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SQUARE = MultiLineString([[(0, 0), (40, 0), (40, 40), (0, 40), (0, 0)]])  # the reference boundary
# the square's outline (vertices unevenly spaced), vertex 4 dented 10 px in from the corner (40, 40)
DENTED = np.array([[0, 0], [15, 0], [40, 0], [40, 20], [30, 30], [20, 40], [0, 40], [0, 25]], float)


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("screenshots_outline")


def _inner(plan, n: int) -> set[int]:
    return {(plan[0] + 1) % n, (plan[0] + 2) % n}


def test_the_stretch_over_the_dent_is_redrawn_through_the_boundary(bench):
    start, end, clicks = bench._redraw_plan(DENTED, SQUARE, near=2.0)
    assert 4 in _inner((start, end), len(DENTED)) and end == (start + 3) % len(DENTED)
    for c in clicks:
        assert SQUARE.distance(Point(c)) == pytest.approx(0, abs=1e-9)
        assert np.hypot(*(DENTED - c).T).min() >= 2.0


def test_a_kept_vertex_is_never_inside_the_stretch(bench):
    plan = bench._redraw_plan(DENTED, SQUARE, near=2.0, keep=4)
    assert plan is not None and 4 not in _inner(plan, len(DENTED))


@pytest.mark.parametrize(
    ("points", "near"),
    [
        (DENTED[[0, 2, 4, 6]], 2.0),  # 4 vertices: 3 further is the vertex before
        (DENTED, 50.0),  # every click would land on a vertex
    ],
)
def test_no_stretch_when_none_fits(bench, points, near):
    assert bench._redraw_plan(points, SQUARE, near=near) is None
