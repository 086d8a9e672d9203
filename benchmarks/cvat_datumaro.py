"""Our CVAT for images 1.1 files, read by datumaro (CVAT's own dataset library).

datumaro cannot live in fewclick's environment (it replaces the pinned Pillow and OpenCV),
so this runs in two environments:

    .venv/bin/python benchmarks/cvat_datumaro.py write ../shared/data/bccd ../shared/data/hit_uav \
        ../shared/data/dota_samples ../shared/data/dsb2018_nuclei ../shared/data/coco_tiny --work out/cvat_dm
    python3 -m venv /tmp/dmvenv && /tmp/dmvenv/bin/pip install datumaro
    /tmp/dmvenv/bin/python benchmarks/cvat_datumaro.py check --work out/cvat_dm

``write`` converts the first ``--images`` images (by name) of each dataset with fewclick's
CVAT writer into ``WORK/<name>/`` and keeps what each object should be in
``WORK/<name>.truth.json`` (class, corners of its oriented box, polygon vertices, mask pixel
count). ``check`` imports each folder with datumaro's ``cvat`` importer and prints, per
dataset, objects and classes found (a group of shapes is one object), the worst corner
difference of oriented boxes, the worst polygon vertex difference and masks of the same
pixel count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def write(datasets: list[Path], work: Path, images: int) -> None:
    from fewclick.io import read_dataset, write_dataset
    from fewclick.io.dataset import Dataset
    from fewclick.io.rle import segmentation_to_mask
    from fewclick.types import rboxes_to_polygons

    for path in datasets:
        data = read_dataset(path)
        data = Dataset(data.classes, sorted(data.images, key=lambda r: r.file_name)[:images], root=data.root)
        write_dataset(data, work / path.name, "cvat")
        truth = {}
        for rec in data.images:
            objs, rows = rec.objects, []
            for i in range(len(objs)):
                seg = objs.segmentations[i] if objs.segmentations else None
                polygon = np.asarray(seg[0], float).ravel().tolist() if isinstance(seg, list) else None
                rbox = None if objs.rboxes is None or np.isnan(objs.rboxes[i]).any() else objs.rboxes[i]
                rows.append(
                    {
                        "class": data.classes[objs.labels[i]],
                        "corners": None if rbox is None else rboxes_to_polygons(rbox[None])[0].tolist(),
                        "polygon": polygon,
                        "pixels": int(segmentation_to_mask(seg, rec.height, rec.width).sum())
                        if isinstance(seg, dict)
                        else None,
                    }
                )
            truth[rec.file_name.rsplit(".", 1)[0]] = rows
        (work / f"{path.name}.truth.json").write_text(json.dumps(truth))
        objects = sum(len(v) for v in truth.values())
        print(f"{path.name}: {len(data.images)} images, {objects} objects written")


def _corner_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Worst corner distance of two quadrilaterals, over the starts and directions of ``a``."""
    return min(float(np.abs(np.roll(q, k, 0) - b).max()) for q in (a, a[::-1]) for k in range(4))


def check(work: Path) -> None:
    import datumaro as dm
    from datumaro.components.annotation import AnnotationType

    for truth_file in sorted(work.glob("*.truth.json")):
        name = truth_file.name.removesuffix(".truth.json")
        truth = json.loads(truth_file.read_text())
        data = dm.Dataset.import_from(str(work / name), "cvat")
        cats = data.categories()[AnnotationType.label]
        found = same_class = masks = same_masks = 0
        corner, vertex = 0.0, 0.0
        expected = sum(len(v) for v in truth.values())
        for item in data:
            groups: dict = {}
            for k, ann in enumerate(item.annotations):
                groups.setdefault(("group", ann.group) if ann.group else ("shape", k), []).append(ann)
            objects, rows = list(groups.values()), truth[item.id]
            found += len(objects)
            if len(objects) != len(rows):
                print(f"{name}/{item.id}: {len(objects)} objects read, {len(rows)} written")
                continue
            for shapes, row in zip(objects, rows, strict=True):
                same_class += cats[shapes[0].label].name == row["class"]
                one_polygon = sum(ann.type.name == "polygon" for ann in shapes) == 1  # else: parts
                for ann in shapes:
                    kind = ann.type.name
                    if kind == "rotated_bbox" and row["corners"] is not None:
                        got = np.asarray(ann.as_polygon(), float).reshape(-1, 2)
                        corner = max(corner, _corner_difference(got, np.asarray(row["corners"])))
                    elif kind == "polygon" and row["polygon"] is not None and one_polygon:
                        vertex = max(vertex, float(np.abs(np.asarray(ann.points) - row["polygon"]).max()))
                    elif kind == "mask" and row["pixels"] is not None:
                        masks += 1
                        same_masks += int(ann.image.sum()) == row["pixels"]
        print(
            f"{name}: datumaro read {len(data)} images, {found} of {expected} objects, {same_class} of the "
            f"same class; oriented-box corners within {corner:.4f} px; polygon vertices within "
            f"{vertex:.4f} px; masks of the same pixel count {same_masks}/{masks}"
        )


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("step", choices=["write", "check"])
    parser.add_argument("datasets", nargs="*", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()
    if args.step == "write":
        write(args.datasets, args.work, args.images)
    else:
        check(args.work)


if __name__ == "__main__":
    main()
