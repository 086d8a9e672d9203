"""What served each image of a campaign and how the work went block by block (issue 68):
``served_by`` per image and ``windows`` of :data:`BLOCK` images, for ``campaign.py``."""

from __future__ import annotations

BLOCK = 8  # images a window of the campaign's table holds


def serving_now(project: dict) -> dict:
    """From the project's page answer: the trained detector serving (its version) and what
    its test, then train record says (the class positions it serves, each source's seconds
    saved an image on the images it never saw); empty before any version."""
    detector = project.get("detector")
    if detector is None or detector.get("method") == "training-free":
        return {}
    metrics = detector.get("metrics") or {}
    scored = metrics.get("prequential") or {}
    return {
        "version": detector["version"],
        "serves": scored.get("serves"),
        "saved_s": scored.get("saved_s"),
        "sources": scored.get("sources"),  # class position -> what serves it on open
        "learner_fit_s": metrics.get("learner_fit_s"),  # the trainer's refits of the learner
    }


def served_by(rows: list[dict], classes: list[str], proposals: bool) -> None:
    """Per row (in the order annotated), ``served_by``: for each class, the source whose
    proposals the image opened with, as the row before left the project (``serving`` of
    :func:`serving_now`): ``trainer vN`` for a class the trained version serves, ``none`` for
    one it does not (it shows nothing of it on open), ``look-alikes`` before any version
    where SAM's proposals are on, else ``none``; with that source's seconds saved an image
    so far on the images it never saw."""
    before: dict = {}
    for row in rows:
        out = {}
        for k, name in enumerate(classes):
            if before.get("version") is not None:
                source = _source(before, k)
                saved = (before.get("saved_s") or {}).get(source.split()[0]) if source != "none" else None
            else:
                source, saved = ("look-alikes" if proposals else "none"), None
            out[name] = {"source": source, "saved_s_so_far": saved}
        row["served_by"] = out
        before = row.get("serving") or before


def _source(serving: dict, k: int) -> str:
    """What serves class position ``k`` as ``serving`` (:func:`serving_now`) says: ``trainer
    vN``, ``look-alikes``, ``learner`` or ``none`` (a version from before the record named a
    source per class: the trainer's classes, else none)."""
    named = (serving.get("sources") or {}).get(str(k))
    if named is None:
        named = "trainer" if k in (serving.get("serves") or []) else "none"
    return f"trainer v{serving['version']}" if named == "trainer" else named


def learner_fits(app: list[float], rows: list[dict]) -> dict:
    """The fast learner's refits (seconds): ``p50``, ``p95`` and ``count`` of those the app's
    answers made for the person (``app``, where it served a class), and ``trainer``: each
    version's own, as the trainer refit it on every image it scored (its metrics)."""
    import numpy as np

    out: dict = {"count": len(app)}
    if app:
        out["p50"] = round(float(np.percentile(app, 50)), 4)
        out["p95"] = round(float(np.percentile(app, 95)), 4)
    versions: dict = {}
    for row in rows:
        serving = row.get("serving") or {}
        if serving.get("learner_fit_s"):
            versions[str(serving["version"])] = serving["learner_fit_s"]
    out["trainer"] = versions
    return out


def windows(rows: list[dict]) -> list[dict]:
    """Interactions and seconds against drawing by hand per block of :data:`BLOCK` images
    (the last block may be shorter): ratios above 1 mean fewer with fewclick."""
    out = []
    for start in range(0, len(rows), BLOCK):
        block = rows[start : start + BLOCK]
        ours_i = sum(r["interactions"] for r in block)
        ours_s = sum(r["seconds"] for r in block)
        hand_i = sum(r["manual"]["interactions"] for r in block)
        hand_s = sum(r["manual"]["seconds"] for r in block)
        out.append(
            {
                "images": f"{start + 1}-{start + len(block)}",
                "interactions": round(hand_i / ours_i, 3) if ours_i else None,
                "seconds": round(hand_s / ours_s, 3) if ours_s else None,
            }
        )
    return out


def mark_served(ax, rows: list[dict]) -> None:
    """Shade each image of the campaign's plot by what it opened with (``served_by``): green,
    darker the more classes a trained version served, its version named where it changes;
    purple, darker the more classes the fast learner served; nothing where neither did (the
    look-alikes, or nothing)."""
    import matplotlib.patches as patches

    shown, marked = None, set()
    for i, row in enumerate(rows, start=1):
        sources = [v["source"] for v in (row.get("served_by") or {}).values()]
        share = {
            "tab:green": sum(s.startswith("trainer") for s in sources),
            "tab:purple": sum(s == "learner" for s in sources),
        }
        for color, n in share.items():
            if n:
                ax.axvspan(i - 0.5, i + 0.5, color=color, alpha=0.24 * n / max(len(sources), 1), lw=0)
                marked.add(color)
        trained = [s for s in sources if s.startswith("trainer")]
        if trained and trained[0].split()[-1] != shown:
            shown = trained[0].split()[-1]
            where = ("data", "axes fraction")
            ax.annotate(shown, (i, 1.0), xycoords=where, ha="center", va="bottom", fontsize=7)
    said = {
        "tab:green": "a trained version served (darker: more classes)",
        "tab:purple": "the fast learner served (darker: more classes)",
    }
    if marked:
        handles, labels = ax.get_legend_handles_labels()
        extra = [patches.Patch(color=c, alpha=0.24, label=said[c]) for c in said if c in marked]
        ax.legend([*handles, *extra], [*labels, *(e.get_label() for e in extra)], fontsize=8)
