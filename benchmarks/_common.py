"""What every benchmark shares: the split of a dataset into train and test parts by image,
the record of when and on what machine a run was made (with the machine's load), the
``--work`` folder and its training budget, the JSON report, and the lines every report page
opens its runs with."""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from fewclick.io import read_dataset
from fewclick.io.dataset import Dataset, split_by_image
from fewclick.types import geometry_only

#: every TEST_EVERY-th image by name is test (the rule the shared datasets were split by)
TEST_EVERY = 4
#: how a dataset of fewer than ``every`` images is split (see :func:`split_parts`)
FEW = ("keep", "last", "pairs", "whole")


def split_parts(
    data: Dataset, every: int = TEST_EVERY, few: str = "keep", held: str = "test"
) -> tuple[Dataset, Dataset]:
    """(train part, test part) of ``data``: images sorted by name, every ``every``-th is test.

    ``few`` says what a dataset of fewer than ``every`` images does: "keep" splits it all
    the same (its test part is empty); "last" gives its last image to the test part (fewer
    than 2 images stop the run); "pairs" makes every 2nd image test (one image is both
    parts); "whole" makes the whole dataset both parts. ``held`` names the test part in
    what "last" prints."""
    if few not in FEW:
        raise ValueError(f"expected few in {FEW}, got {few!r}")
    n = len(data)
    if n < every and few == "last":
        if n < 2:
            raise SystemExit(f"expected at least 2 images to split off a {held} part, got {n}")
        print(f"only {n} images: the last one goes to the {held} part (not 1 in {every})")
        every = n
    elif n < every and few == "pairs":
        if n < 2:
            return data, data
        every = 2
    elif n < every and few == "whole":
        return data, data
    return split_by_image(data, every, "train"), split_by_image(data, every, "test")


def read_split(train: Path, test: Path, few: str = "keep", boxes: str = "auto") -> tuple[Dataset, Dataset]:
    """The training and test sets: read from their paths, or, when both are the same path,
    that dataset's :func:`split_parts` (``few`` as there). With ``boxes`` "aligned", their
    oriented boxes become axis-aligned."""
    if Path(train).resolve() == Path(test).resolve():
        train_set, test_set = split_parts(read_dataset(train), few=few)
    else:
        train_set, test_set = read_dataset(train), read_dataset(test)
    if boxes == "aligned":
        return _aligned(train_set), _aligned(test_set)
    return train_set, test_set


def part_names(names: list[str], part: str) -> list[str]:
    """The file names of ``part`` ("test" or "train") of the split by image, for names the
    app lists rather than a dataset read here: the same images :func:`split_parts` gives."""
    ordered = sorted(names)
    return [n for i, n in enumerate(ordered) if (i % TEST_EVERY == TEST_EVERY - 1) == (part == "test")]


def _aligned(dataset: Dataset) -> Dataset:
    for rec in dataset.images:
        rec.objects = geometry_only(rec.objects, oriented=False)
    return dataset


def load_averages() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages (as ``/proc/loadavg`` gives them, to
    two decimals), which the reports name beside timings."""
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def load_average() -> float:
    """The machine's 1-minute load average (the first of :func:`load_averages`)."""
    return load_averages()[0]


def machine(threads: int | None = None, cores: int | None = None) -> str:
    """The machine as the JSON names it: architecture and processor, then the cores and
    the threads when given."""
    text = f"{platform.machine()} {platform.processor() or 'cpu'}"
    if cores is not None:
        text += f", {cores} cores"
    if threads is not None:
        text += f", {threads} threads"
    return text


def now() -> str:
    """The UTC time to the second, as every JSON's "date"."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_record(
    load_key: str | None = None,
    threads: int | None = None,
    cores: int | None = None,
    three: bool = False,
) -> dict:
    """The JSON fragment of when and where a run is made: "date", "machine" (see
    :func:`machine`) and, under ``load_key`` when given, the load average now (the 1-minute
    one, or all three with ``three``)."""
    record = {"date": now(), "machine": machine(threads, cores)}
    if load_key is not None:
        record[load_key] = load_averages() if three else load_average()
    return record


def claim_work(work: Path, minutes: float) -> None:
    """Record ``minutes`` as the budget of the models in ``work`` (made), or stop when the
    models already there were trained with another budget (a resumed run would silently
    measure them under the new run's name)."""
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "budget.json"
    if stamp.is_file():
        stored = json.loads(stamp.read_text()).get("budget_minutes")
        if stored != minutes:
            raise SystemExit(
                f"{work} holds models trained with a {stored}-minute budget, not {minutes}: "
                "pass another --work or delete the folder"
            )
    stamp.write_text(json.dumps({"budget_minutes": minutes}))


def write_report(report: dict, out: Path) -> None:
    """``report`` as indented JSON at ``out`` (NaN as null), its folder made."""
    from fewclick.protocols import json_ready

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_ready(report), indent=1))


def add_work(parser: argparse.ArgumentParser, help: str | None = None, default: Path | None = None) -> None:
    """``--work``, the folder the run's models, caches or app go to (``help`` says which)."""
    parser.add_argument("--work", type=Path, default=default, help=help)


def work_folder(work: Path | None, bench: str, data: Path, make: bool = True) -> Path:
    """``work``, or ``out/bench_<bench>/<data's name>``; made when ``make``."""
    folder = work or Path("out") / f"bench_{bench}" / Path(data).name
    if make:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def generated_by(bench: str) -> list[str]:
    """The lines under a report page's title: ``report_<bench>.py`` made it from the JSON
    files of ``<bench>.py``, each run on one dataset's train and test paths."""
    return [
        f"Generated by `benchmarks/report_{bench}.py` from the JSON files beside this page; each",
        f"dataset's run: `python benchmarks/{bench}.py --train PATH --test PATH --out FILE.json`.",
    ]


def run_on(r: dict) -> str:
    """How a report names one run: when and on what machine."""
    return f"run {r['date']} on {r['machine']}"
