"""Box-level active learning (Desai and Balasubramanian, "Towards fine-grained sampling for
active learning in object detection").

The framework, on the click detector without clicks (``method="plain"``) on the frozen
maps of the pretrained encoder, whose cached maps make every episode's retraining, pool
prediction and box features cheap on a CPU:

1. An initial model trains on a random 5-10% of the images, fully labeled.
2. It predicts on the other images; every box scoring >= t_d joins the pool U_B
   (:mod:`fewclick.active.pool`). The pool is predicted again by each episode's model;
   a prediction that overlaps an answered box at IoU >= 0.5 is that box, and leaves it.
3. An episode picks the K most informative boxes (:mod:`fewclick.active.measures`):
   at random, by classification uncertainty 1 - P, or by core-set greedy selection on
   per-box features pooled from the pretrained encoder's maps (stride 8 and coarser,
   the same general features whatever the episode's model; not the detector's own).
4. The oracle (:func:`fewclick.simulate.oracle.oracle`, or a person in the app) snaps a
   picked box to the ground truth it overlaps most at IoU >= 0.5, with that object's
   class, or answers background and keeps its coordinates.
5. Every image with an answered box joins the training set, with its other, unqueried
   predictions as noisy labels (:class:`fewclick.active.labels.LabelState`).
6. The model is fine-tuned from the last episode's with L = L_labeled + lambda_d * L_noisy.

"Anchors assigned to a label" on our dense CenterNet head: a heatmap cell is assigned to
the object whose Gaussian is the highest there, and its focal-loss term is weighted by
that object's weight (lambda_d for a noisy label, 1 for a labeled box); the size and
offset terms at an object's centre cell take its weight too; cells no object reaches are
background with weight 1, as in every image. A box answered background is a labeled
negative: no noisy label is drawn over it.

The image-level baselines pick whole images at random, by the mean uncertainty of their
predicted boxes, or by core-set on image features (the encoder's maps averaged over the
image), and label every box in them. :mod:`fewclick.active.loop` runs the episodes against
the simulated oracle; ``benchmarks/active.py`` draws the curves.

:mod:`fewclick.active.continual` is the other way a detector learns while people work:
rounds of training on the finished images, each promoted only when it beats the serving
model on held-out ones.
"""

from fewclick.active.labels import LabelState
from fewclick.active.measures import BOX_MEASURES, IMAGE_MEASURES, k_center_greedy, pick_boxes, pick_images
from fewclick.active.pool import BoxPool

__all__ = [
    "BOX_MEASURES",
    "IMAGE_MEASURES",
    "BoxPool",
    "LabelState",
    "k_center_greedy",
    "pick_boxes",
    "pick_images",
]
