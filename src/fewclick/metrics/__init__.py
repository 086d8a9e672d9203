"""Evaluation metrics: detection AP (VOC07 / VOC12 / COCO, axis-aligned and oriented boxes),
mask IoU, boundary F and NoC, and the CPR paper's point mAP_tau and RSV.

Only numpy is imported here; shapely and scipy load inside the functions that need them.
"""

from fewclick.metrics.detection import (
    AP_METHODS,
    MATCHING_RULES,
    DetectionResult,
    ap_from_matches,
    average_precision,
    box_iou,
    evaluate_detections,
    match_detections,
    match_greedy,
    rbox_iou,
)
from fewclick.metrics.points import PointResult, evaluate_points, point_box_distance, rsv
from fewclick.metrics.segmentation import BoundaryScore, boundary_f, mask_iou, mean_noc, miou, noc

__all__ = [
    "AP_METHODS",
    "MATCHING_RULES",
    "DetectionResult",
    "PointResult",
    "BoundaryScore",
    "box_iou",
    "rbox_iou",
    "average_precision",
    "match_detections",
    "match_greedy",
    "ap_from_matches",
    "evaluate_detections",
    "mask_iou",
    "miou",
    "boundary_f",
    "noc",
    "mean_noc",
    "point_box_distance",
    "evaluate_points",
    "rsv",
]
