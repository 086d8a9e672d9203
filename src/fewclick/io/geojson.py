"""GeoJSON for georeferenced images: one FeatureCollection per image, in the image's map
coordinates.

Layout (what :func:`write` makes, :func:`read` takes)::

    a.geojson       {"type": "FeatureCollection", "crs": {...EPSG of the image...},
                     "properties": {"image": "a.tif", "width": W, "height": H},
                     "features": [{"type": "Feature", "geometry": {...},
                                   "properties": {"class": "car", "kind": "rbox", "score": 0.9}}]}
    images/a.tif    the georeferenced image (a GeoTIFF, or any image with a world file)

The georeference is the image's pixel -> map affine transform: a GeoTIFF's
``ModelTransformation``, or its ``ModelTiepoint`` and ``ModelPixelScale`` (read with
tifffile; ``RasterPixelIsPoint`` shifted by half a pixel as GDAL does), else a world file
beside the image (``a.tfw``, ``a.jgw``, ``a.pgw`` or ``a.wld``). Pixel ``(0, 0)`` is the
top-left corner of the top-left pixel. Coordinates are written in the image's own CRS,
named by a ``crs`` member (``urn:ogc:def:crs:EPSG::<code>``) when the GeoTIFF gives an
EPSG code, as GDAL writes GeoJSON outside WGS 84. A GeoTIFF whose CRS is unknown (no
EPSG code, or a user-defined one) is written in pixel coordinates instead, with a warning,
and its collection says so (``"properties": {"coordinates": "pixels"}``), which reading
honours. An image without a georeference is a :class:`~fewclick.io.errors.FormatError`
naming it, on writing and on reading.

Geometry: a box or an oriented box is its corner ring, a polygon object a Polygon (or a
MultiPolygon in parts), a mask the outline of its pixels (the outer contour moved half a
pixel out; holes are not kept: counted as approximated), a point a Point. ``kind`` says
which, so a box reads back as a box; ``score`` and ``iscrowd`` are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES
from fewclick.io.leftout import LeftOut, geometry_of, object_scores
from fewclick.io.parsing import find_image, header_size, link_image, load_json, objects_from_rows
from fewclick.io.rle import segmentation_outlines
from fewclick.types import Objects, polygons_to_boxes, polygons_to_rboxes, rboxes_to_polygons

__all__ = ["sniff", "read", "write", "georeference", "Georeference", "world_files"]

_SUFFIX = ".geojson"


class Georeference:
    """An image's pixel -> map transform ``X = a x + b y + c``, ``Y = d x + e y + f``, its
    EPSG code (or None) and where it came from (``"geotiff"``, ``"world file"``, or
    ``"pixels"``: the identity, for coordinates written in pixels)."""

    def __init__(self, matrix: np.ndarray, epsg: int | None = None, source: str = "world file") -> None:
        self.matrix = np.asarray(matrix, np.float64).reshape(2, 3)
        self.epsg = epsg
        self.source = source
        if abs(np.linalg.det(self.matrix[:, :2])) < 1e-300:
            raise ValueError(f"a georeference must be invertible, got {self.matrix.tolist()}")

    def to_map(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return xy @ self.matrix[:, :2].T + self.matrix[:, 2]

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return (xy - self.matrix[:, 2]) @ np.linalg.inv(self.matrix[:, :2]).T


def georeference(image: Path) -> Georeference | None:
    """The image's georeference from its GeoTIFF tags or a world file beside it; None when it has neither."""
    image = Path(image)
    if image.suffix.lower() in (".tif", ".tiff"):
        found = _geotiff(image)
        if found is not None:
            return found
    for world in world_files(image):
        if world.is_file():
            return _world_file(world)
    return None


def world_files(image: Path) -> tuple[Path, Path]:
    """Where an image's world file may be: ``a.tif`` -> ``a.tfw`` (first and last letter
    of the suffix + w), then ``a.wld``."""
    return image.with_suffix(image.suffix[:2] + image.suffix[-1:] + "w"), image.with_suffix(".wld")


def _geotiff(image: Path) -> Georeference | None:
    import tifffile

    try:
        with tifffile.TiffFile(image) as tif:
            tags = tif.pages[0].geotiff_tags or {}
    except (tifffile.TiffFileError, OSError, ValueError):
        return None
    epsg = tags.get("ProjectedCSTypeGeoKey") or tags.get("GeographicTypeGeoKey")
    epsg = int(epsg) if epsg is not None and 1024 <= int(epsg) < 32767 else None
    if "ModelTransformation" in tags:
        m = np.asarray(tags["ModelTransformation"], np.float64).reshape(4, 4)
        matrix = np.array([m[0, [0, 1, 3]], m[1, [0, 1, 3]]])
    elif "ModelTiepoint" in tags and "ModelPixelScale" in tags:
        i, j, _, x, y, _ = np.asarray(tags["ModelTiepoint"], np.float64)[:6]
        sx, sy = np.asarray(tags["ModelPixelScale"], np.float64)[:2]
        matrix = np.array([[sx, 0, x - i * sx], [0, -sy, y + j * sy]])
    else:
        return None
    if int(tags.get("GTRasterTypeGeoKey", 1)) == 2:  # RasterPixelIsPoint: the tie is a pixel centre
        matrix[:, 2] -= 0.5 * (matrix[:, 0] + matrix[:, 1])
    return Georeference(matrix, epsg, "geotiff")


#: coordinates written in pixels: the identity transform
PIXELS = Georeference(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), None, "pixels")
PIXEL_COORDINATES = "pixels"


def _world_file(path: Path) -> Georeference:
    try:
        a, d, b, e, c, f = (float(v) for v in path.read_text(encoding="utf-8").split()[:6])
    except ValueError:
        raise FormatError(f"{path}: expected a world file of six numbers, got unreadable text") from None
    # a world file places the centre of the top-left pixel; shift to its corner
    return Georeference(np.array([[a, b, c - (a + b) / 2], [d, e, f - (d + e) / 2]]))


def _required(image: Path | None, name: str) -> Georeference:
    found = georeference(image) if image is not None else None
    if found is None:
        where = image if image is not None else f"image {name!r} (file not found)"
        raise FormatError(
            f"{where}: expected a georeferenced image (GeoTIFF tags or a world file) to write or read "
            "GeoJSON map coordinates, got none"
        )
    return found


def sniff(path: Path) -> bool:
    """True for a folder of ``.geojson`` files or one such file holding a FeatureCollection."""
    path = Path(path)
    files = sorted(path.glob(f"*{_SUFFIX}"))[:1] if path.is_dir() else [path]
    if not files or files[0].suffix.lower() != _SUFFIX or not files[0].is_file():
        return False
    try:
        data = load_json(files[0])
    except (OSError, FormatError):
        return False
    return isinstance(data, dict) and data.get("type") == "FeatureCollection"


# --------------------------------------------------------------------------- reading
def read(path: Path, images_dir: Path | None = None) -> Dataset:
    """Read a folder of per-image FeatureCollections (or one file) into a :class:`Dataset`."""
    path = Path(path)
    files = sorted(path.glob(f"*{_SUFFIX}")) if path.is_dir() else [path]
    if not files:
        raise FormatError(f"{path}: expected .geojson files, got none")
    root = path if path.is_dir() else path.parent
    folders = ([Path(images_dir)] if images_dir else []) + [root / "images", root]
    classes: list[str] = []
    records = [_record(file, classes, folders, k + 1) for k, file in enumerate(files)]
    return Dataset(classes=classes, images=records, format="geojson", root=root)


def _record(file: Path, classes: list[str], folders: list[Path], index: int) -> ImageRecord:
    data = load_json(file)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise FormatError(f"{file}: expected a GeoJSON FeatureCollection, got {str(data)[:100]}")
    props = data.get("properties") or {}
    name = props.get("image") if isinstance(props.get("image"), str) else None
    image = find_image(name, folders) if name else None
    if image is None:
        image = next((p for s in IMAGE_SUFFIXES if (p := _beside(file, folders, s)) is not None), None)
        name = name or (image.name if image else file.stem)
    ref = PIXELS if props.get("coordinates") == PIXEL_COORDINATES else _required(image, name)
    said = (props.get("width"), props.get("height"))
    if image is None and all(type(v) is int and v > 0 for v in said):  # a QuPath export sends no image
        width, height = said
    else:
        width, height = header_size(image, str(file))
    features = data.get("features")
    if not isinstance(features, list):
        raise FormatError(f"{file}: expected 'features' to be a list, got {type(features).__name__}")
    rows = [_row(f, f"{file}: feature {k}", classes, ref, height, width) for k, f in enumerate(features)]
    return ImageRecord(name, width, height, objects_from_rows(rows, width, height, str(file)), image, index)


def _beside(file: Path, folders: list[Path], suffix: str) -> Path | None:
    return find_image(file.stem + suffix, folders)


def _row(feature, at: str, classes: list[str], ref: Georeference, height: int, width: int) -> dict:
    if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
        raise FormatError(f"{at}: expected a Feature with a geometry, got {str(feature)[:200]}")
    props = feature.get("properties") or {}
    name = props.get("class")
    if not isinstance(name, str) or not name:
        raise FormatError(f"{at}: expected properties.class naming the class, got {name!r}")
    if name not in classes:
        classes.append(name)
    score = props.get("score")
    ok = score is None or (
        isinstance(score, (int, float)) and not isinstance(score, bool) and np.isfinite(score)
    )
    if not ok:
        raise FormatError(f"{at}: expected a finite number as properties.score, got {score!r}")
    row = {"label": classes.index(name), "score": np.nan if score is None else float(score), "where": at}
    row.update(ignore=bool(props.get("iscrowd")), rbox=None, point=None, seg=None)
    geometry, kind = feature["geometry"], props.get("kind")
    rings = _rings(geometry, at, ref)
    if geometry.get("type") == "Point":
        row["point"] = rings[0][0][0]
        row["box"] = np.full(4, np.nan)
        return row
    outer = [polygon[0] for polygon in rings]
    row["box"] = polygons_to_boxes(np.concatenate(outer)[None])[0]
    if kind in ("box", "rbox") and len(outer) == 1 and len(outer[0]) == 4:
        if kind == "rbox":
            row["rbox"] = polygons_to_rboxes(outer[0][None])[0]
        return row
    if any(len(polygon) > 1 for polygon in rings):  # holes: the pixels, as an RLE
        row["seg"] = _holed(rings, height, width)
    else:
        row["seg"] = [p.astype(np.float32) for p in outer]
    return row


def _holed(rings: list[list[np.ndarray]], height: int, width: int) -> dict:
    """The RLE of polygons with holes, each filled over its outer ring's window only (a
    large image's mask is never made), to the pixels pycocotools fills over the image."""
    from fewclick.io.rle import merge_rles, moved_polygons, polygons_to_mask, polygons_window, window_to_rle

    rles = []
    for outer, *holes in rings:
        x0, y0, x1, y1 = polygons_window([outer], height, width)
        h, w = y1 - y0, x1 - x0
        mask = polygons_to_mask(moved_polygons([outer], x0, y0), h, w)
        mask &= ~polygons_to_mask(moved_polygons(holes, x0, y0), h, w)
        rles.append(window_to_rle(mask, (x0, y0), height, width))
    return rles[0] if len(rles) == 1 else merge_rles(rles)


def _rings(geometry: dict, at: str, ref: Georeference) -> list[list[np.ndarray]]:
    """Polygons as lists of pixel rings ``float64[K, 2]`` (the first is the outer one; a
    Point is one polygon of one one-point ring)."""
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    try:
        if kind == "Point":
            polygons = [[[coords]]]
        elif kind == "Polygon":
            polygons = [coords]
        elif kind == "MultiPolygon":
            polygons = coords
        else:
            raise FormatError(f"{at}: expected a Point, Polygon or MultiPolygon, got {kind!r}")
        out = []
        for polygon in polygons:
            rings = [ref.to_pixels(np.asarray(ring, np.float64)[:, :2]) for ring in polygon]
            out.append([r[:-1] if len(r) > 1 and np.allclose(r[0], r[-1]) else r for r in rings])
    except (TypeError, ValueError, IndexError):
        raise FormatError(
            f"{at}: expected {kind} coordinates as GeoJSON nests them, got {str(coords)[:200]}"
        ) from None
    if not all(np.isfinite(r).all() for polygon in out for r in polygon):
        raise FormatError(f"{at}: expected finite coordinates, got {str(coords)[:200]}")
    if kind != "Point" and any(len(polygon[0]) < 3 for polygon in out):
        raise FormatError(f"{at}: expected polygon rings of 3 points or more, got {str(coords)[:200]}")
    return out


# --------------------------------------------------------------------------- writing
#: QuPath's class colours (``classification.color``), by class position, in turn
QUPATH_COLORS = [
    [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128],
]  # fmt: skip


def write(dataset: Dataset, path: Path, qupath: bool = False) -> list[str]:
    """Write ``path/<image stem>.geojson`` per image (see the module doc) and symlink the
    images into ``path/images/``; an image without a georeference is refused before any
    file is written. With ``qupath``, any image is written in its level-0 pixels as QuPath
    imports objects (a slide's annotations): each feature an ``"objectType": "annotation"``
    with its ``classification`` (name and colour), and no image is linked; reading it back
    honours the pixels as for an unknown CRS."""
    path = Path(path)
    refs = [PIXELS if qupath else _required(rec.path, rec.file_name) for rec in dataset.images]
    stems = [Path(rec.file_name).stem for rec in dataset.images]
    if len(set(stems)) != len(stems):
        raise ValueError("expected unique image file stems to name the .geojson files, got repeated ones")
    path.mkdir(parents=True, exist_ok=True)
    left = LeftOut("GeoJSON")
    for rec, ref, stem in zip(dataset.images, refs, stems, strict=True):
        in_pixels = ref.source == "geotiff" and ref.epsg is None
        if in_pixels:
            left.add(
                "written in pixel coordinates: the GeoTIFF names no known CRS (EPSG code)", rec.file_name
            )
            ref = PIXELS
        objs, scores = rec.objects, object_scores(rec.objects)
        features = []
        for i in range(len(objs)):
            geometry = _geometry(objs, i, rec, ref, left)
            if geometry is None:
                continue
            props = {"class": dataset.classes[objs.labels[i]], "kind": geometry_of(objs, i)}
            if scores is not None and not np.isnan(scores[i]):
                props["score"] = round(float(scores[i]), 5)
            if objs.ignore[i]:
                props["iscrowd"] = 1
            if qupath:
                colour = QUPATH_COLORS[int(objs.labels[i]) % len(QUPATH_COLORS)]
                props["objectType"] = "annotation"
                props["classification"] = {"name": props["class"], "color": colour}
            features.append({"type": "Feature", "geometry": geometry, "properties": props})
        image_name = Path(rec.file_name).name
        collection = {
            "type": "FeatureCollection",
            "properties": {"image": image_name, "width": rec.width, "height": rec.height},
            "features": features,
        }
        if in_pixels or qupath:
            collection["properties"]["coordinates"] = PIXEL_COORDINATES
        if ref.epsg is not None:
            collection["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{ref.epsg}"}}
        with open(path / f"{stem}{_SUFFIX}", "w", encoding="utf-8") as f:
            json.dump(collection, f)
        if qupath:
            continue
        link_image(rec.path, path / "images" / image_name)
        for world in world_files(Path(rec.path)):
            link_image(world if world.is_file() else None, path / "images" / world.name)
    return left.report(path)


def _ring(ref: Georeference, xy: np.ndarray) -> list:
    mapped = ref.to_map(xy)
    return np.concatenate([mapped, mapped[:1]]).tolist()


def _geometry(objs: Objects, i: int, rec: ImageRecord, ref: Georeference, left: LeftOut) -> dict | None:
    geometry = geometry_of(objs, i)
    if geometry == "point":
        return {"type": "Point", "coordinates": ref.to_map(objs.points[i])[0].tolist()}
    if geometry == "box":
        x0, y0, x1, y1 = objs.boxes[i].astype(np.float64)
        return {
            "type": "Polygon",
            "coordinates": [_ring(ref, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))],
        }
    if geometry == "rbox":
        return {"type": "Polygon", "coordinates": [_ring(ref, rboxes_to_polygons(objs.rboxes[i : i + 1])[0])]}
    if geometry == "polygon":
        polygons = [np.asarray(p, np.float64).reshape(-1, 2) for p in objs.segmentations[i]]
    elif geometry == "mask":
        polygons = segmentation_outlines(objs.segmentations[i], rec.height, rec.width)
        left.add("approximated: masks written as the outline of their pixels (holes not kept)", rec.file_name)
    else:
        left.add("left out: objects without geometry", rec.file_name)
        return None
    polygons = [p for p in polygons if len(p) >= 3]
    if not polygons:
        left.add("left out: masks too small to outline", rec.file_name)
        return None
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": [_ring(ref, polygons[0])]}
    return {"type": "MultiPolygon", "coordinates": [[_ring(ref, p)] for p in polygons]}
