"""Images, their annotations' changes, and the review queue's boxes."""

from __future__ import annotations

from fewclick.wire.answers.base import Annotation, Answer, Job


class Image(Answer):
    """An image with the count of its ``annotations``."""

    id: int
    project_id: int
    file_name: str
    width: int
    height: int
    status: str
    revision: int
    annotations: int


class UploadedFile(Answer):
    """One file of an upload: ``added`` (its ``image``), ``skipped`` (the same file is in the
    project already) or ``refused`` (``reason`` says why)."""

    name: str
    status: str
    reason: str | None = None
    image: Image | None = None


class Uploaded(Answer):
    """An upload of one or more files, each as :class:`UploadedFile`, in the order sent."""

    files: list[UploadedFile]


class Tiles(Answer):
    """A large image's tile pyramid: ``sizes`` [width, height] per level, finest first."""

    tile: int
    levels: int
    sizes: list[list[int]]


class OpenImage(Image):
    """An image with its annotations (the reference ones left out), its ``tiles`` when it
    is large (else None), and the ids of the project's ``previous`` and ``next`` images."""

    annotations: list[Annotation]  # type: ignore[assignment]  # here the list, not the count
    tiles: Tiles | None
    previous: int | None
    next: int | None


class MovedImage(Image):
    """An image after a status change, and the training job that started (None: none)."""

    job: Job | None


class AnnotationSaved(Answer):
    annotation: Annotation
    revision: int  # the image's new revision


class BatchSaved(Answer):
    created: list[Annotation]
    deleted: list[int]
    revision: int


class AnnotationDeleted(Answer):
    deleted: int
    revision: int


class ExemplarSet(Answer):
    """Whether the box of annotation ``id`` serves as an exemplar of its class's look-alikes."""

    id: int
    exemplar: bool


class BoxQuery(Answer):
    """A queried box: where it is, what the detector said, and its answer once given."""

    id: int
    image_id: int
    class_id: int
    box: list[float]
    score: float
    model_version: int | None
    status: str
    answer: str | None
    annotation_id: int | None
    seconds: float | None


class ImageSize(Answer):
    width: int
    height: int


class NextBox(BoxQuery):
    image: ImageSize


class Queue(Answer):
    """The queue's counts and its ``next`` box (None, with a ``message``, when none is left)."""

    open: int
    answered: int
    answers: dict[str, int]
    seconds: float
    next: NextBox | None
    message: str | None = None  # only when no box is left


class QueueAnswer(Answer):
    """An answered box, the annotation it made (None: none), the image's new revision, the
    training it started (None: none) and the next box."""

    query: BoxQuery
    annotation: Annotation | None
    revision: int
    training: Job | None
    next: NextBox | None
    message: str | None = None  # only when no box is left
