"""The mask-quality ranker M_r: estimates a mask's IoU from its annotation process alone."""

from fewclick.quality.ranker import (
    FEATURE_NAMES,
    QualityRanker,
    interaction_features,
    plot_ranking,
    ranking_report,
)

__all__ = ["FEATURE_NAMES", "QualityRanker", "interaction_features", "plot_ranking", "ranking_report"]
