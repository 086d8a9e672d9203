"""The JSON answers of fewclick's HTTP API, one pydantic model each: what every JSON route
declares as its ``response_model``, and what :mod:`fewclick.client` parses answers with.

One module per resource: ``base`` (the base model, and jobs, RLE masks and annotations,
which several resources answer with), ``accounts``, ``projects``, ``images`` (with the review
queue) and ``assist`` (the model in the loop, full-image segmentation, Label Studio).

The models describe the answers as the server builds them (``fewclick.server.views`` and
the routes): every key, its type, and None where the server may send null. Coordinates
are image pixels, (x, y); boxes XYXY; masks COCO RLE; times ISO 8601 text as the server
writes them. A key the server sends only sometimes has a default and its route answers
with ``response_model_exclude_unset``, so that it is not added where it was left out.

Keys no model names pass through (``extra="allow"``): the server's tests check that none
arrives (``tests/server/test_schemas.py``), and a client keeps working when a newer server
adds one.
"""

from __future__ import annotations

from fewclick.wire.answers.accounts import (
    LoggedOut,
    Me,
    Member,
    User,
)
from fewclick.wire.answers.assist import (
    Acknowledged,
    Detected,
    Exemplar,
    FullImage,
    Health,
    Mask,
    MaskProposals,
    ModelVersionName,
    Outline,
    Prediction,
    Predictions,
    Prepared,
    ProposalsUsed,
    Region,
    Ring,
    Segmented,
    Snapped,
    Swept,
)
from fewclick.wire.answers.base import (
    Annotation,
    Answer,
    Job,
    Rle,
    Trainer,
)
from fewclick.wire.answers.images import (
    AnnotationDeleted,
    AnnotationSaved,
    BatchSaved,
    BoxQuery,
    ExemplarSet,
    Image,
    ImageSize,
    MovedImage,
    NextBox,
    OpenImage,
    Queue,
    QueueAnswer,
    Tiles,
    Uploaded,
    UploadedFile,
)
from fewclick.wire.answers.projects import (
    Analytics,
    Backends,
    Comparison,
    Event,
    Finished,
    ImageTime,
    ImportedFile,
    Logged,
    MapAtBoxes,
    MapAtTime,
    ModelVersion,
    Project,
    ProjectClass,
    ProjectSummary,
    ProjectWithWarnings,
    UnknownClasses,
)

__all__ = [
    "Answer",
    "Job",
    "Trainer",
    "Rle",
    "Annotation",
    "Me",
    "LoggedOut",
    "User",
    "Member",
    "ProjectClass",
    "ModelVersion",
    "ProjectSummary",
    "Project",
    "ProjectWithWarnings",
    "ImportedFile",
    "UnknownClasses",
    "Finished",
    "ImageTime",
    "MapAtTime",
    "MapAtBoxes",
    "Analytics",
    "Comparison",
    "Backends",
    "Logged",
    "Event",
    "Image",
    "Tiles",
    "Uploaded",
    "UploadedFile",
    "OpenImage",
    "MovedImage",
    "AnnotationSaved",
    "BatchSaved",
    "AnnotationDeleted",
    "ExemplarSet",
    "BoxQuery",
    "ImageSize",
    "NextBox",
    "Queue",
    "QueueAnswer",
    "Detected",
    "ProposalsUsed",
    "Exemplar",
    "Swept",
    "Prepared",
    "Mask",
    "MaskProposals",
    "Segmented",
    "Snapped",
    "Region",
    "FullImage",
    "Ring",
    "Outline",
    "Health",
    "ModelVersionName",
    "Acknowledged",
    "Prediction",
    "Predictions",
]
