"""Running C3Det's protocol for several trained models on one dataset, with the plot.

A model is named by its checkpoint (``DIR`` holding ``last.pt``, or the file); the prefix
``passthrough:`` runs a plain detector as the Passthrough baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fewclick.io import read_dataset
from fewclick.io.images import load_image
from fewclick.predict.detect import ClickDetector, DecodeConfig
from fewclick.protocols.detect import Item, ProtocolConfig, run_protocol


def load_items(dataset) -> list[Item]:
    """(image, objects) pairs of a dataset, images decoded once."""
    return [
        (rec.extra["pixels"] if rec.extra.get("pixels") is not None else load_image(rec.path), rec.objects)
        for rec in dataset.images
    ]


def load_model(spec: str | Path) -> tuple[str, ClickDetector]:
    """``(name, predictor)`` for a model spec (see the module docstring)."""
    text = str(spec)
    passthrough = text.startswith("passthrough:")
    path = Path(text.removeprefix("passthrough:"))
    file = path / "last.pt" if path.is_dir() else path
    decode = DecodeConfig(passthrough=True, enforce_clicks=False) if passthrough else None
    predictor = ClickDetector.load(file, decode)
    if passthrough and predictor.config.method != "plain":
        raise ValueError(
            f"{file}: Passthrough runs a plain detector, this one is {predictor.config.method!r}"
        )
    name = "passthrough" if passthrough else predictor.config.method
    return name, predictor


def run_models(
    models: list,
    data: str | Path,
    out: str | Path,
    clicks: int = 20,
    sessions: int = 5,
    seed: int = 0,
    data_format: str | None = None,
    ks: tuple[int, ...] | None = None,
) -> dict[str, dict]:
    """The protocol for every model; writes ``out`` (JSON) and ``out`` with ``.png`` (plot)."""
    dataset = read_dataset(data, data_format)
    items = load_items(dataset)
    config = ProtocolConfig(max_clicks=clicks, sessions=sessions, seed=seed, ks=ks)
    results = {}
    for spec in models:
        name, predictor = load_model(spec)
        if predictor.classes != dataset.classes:
            raise ValueError(
                f"{spec}: trained on classes {predictor.classes}, the data has {dataset.classes}"
            )
        cfg = predictor.config
        result = run_protocol(
            predictor, items, len(dataset.classes), config, oriented=cfg.oriented, points_only=cfg.points_only
        )
        results[name] = result.to_dict()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"data": str(data), "sessions": sessions, "methods": results}, indent=1))
    plot_map_vs_clicks(results, out.with_suffix(".png"), title=f"{Path(data).name}: mAP@0.5 vs clicks")
    return results


STYLE = {
    "c3det": ("C3Det", "#d62728"),
    "late-fusion": ("Late Fusion", "#1f77b4"),
    "early-fusion": ("Early Fusion", "#2ca02c"),
    "passthrough": ("Passthrough", "#9467bd"),
    "plain": ("plain detector", "#7f7f7f"),
    "c3det-pretrained": ("C3Det on pretrained features", "#ff7f0e"),
}


def plot_map_vs_clicks(results: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """mAP vs clicks with std error bars for every method (C3Det's Figure 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, res in results.items():
        label, colour = STYLE.get(name, (name, None))
        k, mean, std = np.asarray(res["k"]), np.asarray(res["mAP_mean"]), np.asarray(res["mAP_std"])
        if name == "plain":
            ax.axhline(mean[0], color=colour, ls="--", lw=1, label="plain detector (no clicks)")
            continue
        ax.errorbar(k, mean, yerr=std, label=label, color=colour, marker="o", ms=3, capsize=2, lw=1.2)
    ax.set_xlabel("number of clicks per image")
    ax.set_ylabel("mAP@0.5 (VOC07)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path
