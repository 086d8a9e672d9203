"""A mask as an editable outline: a few vertices a person (or the simulated annotator) can
drag, insert, delete or redraw, and the mask filled back from it.

An outline is a list of rings ``(float64[K, 2] (x, y), is_hole)`` in pixel-edge
coordinates: pixel (x, y) covers [x, x + 1) x [y, y + 1), as :func:`fewclick.io.rle.mask_outlines`.
:func:`fill_outline` fills a pixel when its centre lies inside an odd number of rings
(even-odd), so holes are cut out of the part around them and parts stay apart. The page's
``static/js/outline_fill.js`` fills by the same rule, edge by edge in the same
arithmetic, so the page and the Python simulator make the same mask from one outline.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MIN_IOU", "editable_outline", "fill_outline", "outline_problem", "tolerance"]

#: the filled outline keeps at least this IoU with the mask it came from
MIN_IOU = 0.95
#: Douglas-Peucker tolerance as a share of the object's size (the square root of its
#: area, steadier than the perimeter, which a ragged mask inflates): on 400 coco_tiny
#: objects a median of 12 vertices (6-30 from the 10th to the 90th percentile), IoU >= 0.95
SHARE = 0.06
#: the smallest tolerance tried: below a pixel the outline is the mask's own staircase
FLOOR = 0.5
#: how the tolerance shrinks while the outline is not yet good enough
STEP = 0.7


def tolerance(mask: np.ndarray) -> float:
    """The first Douglas-Peucker tolerance in pixels for ``mask`` (``bool[H, W]``): it grows
    with the object, ``max(1, SHARE * sqrt(area))``."""
    return max(1.0, SHARE * float(np.sqrt(np.count_nonzero(mask))))


def editable_outline(mask: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """``bool[H, W]`` -> its outline: ``[(float64[K, 2] (x, y) pixel-edge coordinates,
    is_hole)]``, every ring with K >= 3, simplified to few vertices.

    Each part and each hole is a ring (OpenCV's two-level contours, ``RETR_CCOMP``), moved
    half a pixel out of the part so it runs along pixel edges, then simplified with
    ``cv2.approxPolyDP``. The tolerance starts at :func:`tolerance` and shrinks (by
    ``STEP``) until the filled outline keeps IoU >= ``MIN_IOU`` with the mask and no ring
    crosses itself or another; under ``FLOOR`` the rings are the mask's exact staircase.
    An empty mask gives no ring. ValueError for an array that is not 2-D.
    """
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise ValueError(f"expected a mask of shape (H, W), got {m.shape}")
    ys, xs = np.nonzero(m)
    if not len(xs):
        return []
    x0, y0 = int(xs.min()), int(ys.min())
    window = m[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1]
    exact = _edge_rings(window)
    eps = tolerance(window)
    while True:
        rings = [(_simplify(ring, eps), hole) for ring, hole in exact] if eps >= FLOOR else exact
        rings = [(r, hole) for r, hole in rings if len(r) >= 3]
        if eps < FLOOR or (
            _iou(fill_outline(rings, *window.shape), window) >= MIN_IOU and not outline_problem(rings)
        ):
            return [(r + [x0, y0], hole) for r, hole in rings]
        eps *= STEP


def fill_outline(rings: list[tuple[np.ndarray, bool]], height: int, width: int) -> np.ndarray:
    """Rings ``[(float[K, 2] (x, y) pixel-edge coordinates, is_hole)]`` -> ``bool[H, W]``.

    A pixel is on when its centre lies inside an odd number of rings, so a hole inside a
    part is cut out of it. Along each row's centre line, a ring's edge crossing at ``x``
    turns over the pixels whose centre lies right of ``x`` (a centre exactly on a left edge
    stays off, on a right edge on); an edge spans the rows whose centre line lies in
    [its low y, its high y), so a vertex is crossed once. The ``is_hole`` flags do not
    change the rule: they say what each ring was made as. Rings under 3 vertices are skipped.
    """
    edges = [_edges(np.asarray(ring, np.float64).reshape(-1, 2)) for ring, _hole in rings]
    edges = [e for e in edges if len(e)]
    parity = np.zeros((height, width + 1), np.int32)
    if edges:
        rows, cols = _crossings(np.concatenate(edges), height, width)
        np.add.at(parity, (rows, cols), 1)
    return (np.cumsum(parity[:, :width], axis=1) & 1).astype(bool)


def _edges(ring: np.ndarray) -> np.ndarray:
    """A closed ring's edges that are not level, ``float64[E, 4]`` (xa, ya, xb, yb)."""
    if len(ring) < 3:
        return np.zeros((0, 4))
    e = np.concatenate([ring, np.roll(ring, -1, axis=0)], axis=1)
    return e[e[:, 1] != e[:, 3]]


def _crossings(edges: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For each edge and each row whose centre line it crosses: the row and the first
    column whose centre lies right of the crossing (clipped to 0..width). The arithmetic,
    ``xa + (yc - ya) * (xb - xa) / (yb - ya)``, is the page's, in the same order."""
    xa, ya, xb, yb = edges.T
    first = np.clip(np.ceil(np.minimum(ya, yb) - 0.5), 0, height).astype(np.int64)
    last = np.clip(np.ceil(np.maximum(ya, yb) - 0.5), 0, height).astype(np.int64)
    n = np.maximum(last - first, 0)
    which = np.repeat(np.arange(len(edges)), n)
    rows = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + first[which]
    yc = rows + 0.5
    xs = xa[which] + (yc - ya[which]) * (xb[which] - xa[which]) / (yb[which] - ya[which])
    cols = np.clip(np.floor(xs - 0.5) + 1, 0, width).astype(np.int64)
    return rows, cols


def outline_problem(
    rings: list[tuple[np.ndarray, bool]], height: int | None = None, width: int | None = None
) -> str:
    """What is wrong with an outline, in a sentence, or "" when nothing is: a ring with
    under 3 vertices, a ring that crosses itself or another, a vertex outside the
    ``width x height`` image (when given)."""
    from shapely import STRtree
    from shapely.geometry import LinearRing, Polygon

    shapes = []
    for i, (ring, _hole) in enumerate(rings):
        p = np.asarray(ring, np.float64).reshape(-1, 2)
        if len(p) < 3:
            return f"ring {i} has {len(p)} vertices: an outline needs at least 3"
        if not np.isfinite(p).all():
            return f"ring {i} has a vertex that is not a number"
        if height is not None and width is not None:
            out = (p[:, 0] < 0) | (p[:, 0] > width) | (p[:, 1] < 0) | (p[:, 1] > height)
            if out.any():
                x, y = p[int(np.argmax(out))]
                return f"ring {i} leaves the {width} x {height} image at ({x:.1f}, {y:.1f})"
        shape = LinearRing(p)
        if not shape.is_simple:
            return f"ring {i} crosses itself"
        shapes.append(Polygon(shape))
    # rings may nest (a hole in a part, a part in a hole) or touch; two that overlap cross
    if len(shapes) < 2:
        return ""
    left, right = STRtree(shapes).query(shapes, predicate="overlaps")
    if len(left):
        i, j = sorted((int(left[0]), int(right[0])))
        return f"ring {i} crosses ring {j}"
    return ""


def _edge_rings(mask: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """The exact outline of ``mask``: each part's and each hole's ring along pixel edges.

    OpenCV traces the centres of the boundary pixels, of a part and of each hole in it;
    shapely moves them half a pixel (a mitred buffer): a part's ring out, a hole's ring
    into the hole. A pixel that tracing leaves with no area (one joined to the rest by a
    corner only, a line of pixels) is then added as its square, and a pixel taken in by a
    mitre cut out as its square, so every pixel of the mask has its centre inside and no
    other has. Nothing lies outside the mask's ``W x H``.
    """
    from shapely import box, unary_union

    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    parents = hierarchy[0][:, 3]
    holes: dict[int, list] = {}
    for k in np.flatnonzero(parents != -1):
        holes.setdefault(int(parents[k]), []).append(_traced(contours[k]).buffer(-0.5, join_style="mitre"))
    parts = []
    for i in np.flatnonzero(parents == -1):  # each part, its holes cut out
        part = _traced(contours[i]).buffer(0.5, join_style="mitre")
        parts.append(part.difference(unary_union(holes[i])) if i in holes else part)
    # a mitre's tip may reach past the mask's box (past the image when the box is at its edge)
    shape = unary_union(parts).intersection(box(0, 0, mask.shape[1], mask.shape[0]))
    filled = fill_outline(_rings(shape), *mask.shape)
    missed, extra = np.argwhere(mask & ~filled), np.argwhere(filled & ~mask)
    if len(missed):
        shape = shape.union(unary_union([box(x, y, x + 1, y + 1) for y, x in missed]))
    if len(extra):
        shape = shape.difference(unary_union([box(x, y, x + 1, y + 1) for y, x in extra]))
    return _rings(shape)


def _traced(contour: np.ndarray):
    """The area a traced contour (``int32[K, 1, 2]``, pixel indices) encloses, its vertices
    at the pixels' centres; a contour of no area (a line, a pixel) gives an empty one."""
    from shapely import make_valid
    from shapely.geometry import Polygon

    p = contour.reshape(-1, 2).astype(np.float64) + 0.5
    return make_valid(Polygon(p)) if len(p) >= 3 else Polygon()


def _rings(shape) -> list[tuple[np.ndarray, bool]]:
    """A shapely (multi)polygon's rings ``(float64[K, 2], is_hole)``, without the vertices
    that lie on a straight line between their neighbours."""
    rings: list[tuple[np.ndarray, bool]] = []
    for poly in getattr(shape, "geoms", [shape]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        poly = poly.simplify(0)
        rings.append((np.asarray(poly.exterior.coords, np.float64)[:-1], False))
        rings.extend((np.asarray(r.coords, np.float64)[:-1], True) for r in poly.interiors)
    return rings


def _simplify(ring: np.ndarray, eps: float) -> np.ndarray:
    """Douglas-Peucker on a closed ring (``float64[K, 2]``) with tolerance ``eps`` pixels."""
    out = cv2.approxPolyDP(ring.astype(np.float32).reshape(-1, 1, 2), eps, True)
    return out.reshape(-1, 2).astype(np.float64)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0
