"""The annotation database: SQLAlchemy 2 models, the engine, and migrations with Alembic.

SQLite (in WAL mode, foreign keys on) is the embedded default; a PostgreSQL URL works with
the same models. The schema is created and upgraded only by the Alembic migrations in
``fewclick/server/migrations`` (``init_db`` runs them), never by ``create_all``.

Every record carries the acting user: the one the request authenticated as.
Geometry is JSON on the annotation: ``{"box": [x0, y0, x1, y1]}``, ``{"rbox": [cx, cy, w,
h, angle]}`` (with its enclosing ``box``), ``{"mask": RLE, "box": [...]}``, or ``{"point":
[x, y], "original": [x, y]}`` for points mode (the refined point and the click as made).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, create_engine, event, true
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from fewclick.server.processes import run_id

IMAGE_STATUSES = ("new", "in_progress", "done", "reviewed")
FINISHED = ("done", "reviewed")  # the statuses training learns from
REVIEW_STATES = ("pending", "accepted", "rejected")
ANNOTATION_KINDS = ("box", "rbox", "mask", "point")
JOB_STATES = (
    "queued",
    "running",
    "paused",
    "stopping",
    "done",
    "failed",
)  # paused, stopping: a person's word
JOB_TRIGGERS = ("user", "auto")
ROLES = ("admin", "annotator", "reviewer")
# how long (seconds) a statement waits for a lock another connection holds before it fails
# (and its request answers 503): SQLite's busy timeout, PostgreSQL's lock_timeout
BUSY_SECONDS = 10.0
# what a failure to get a lock in time says: SQLite's messages, PostgreSQL's SQLSTATEs
# (lock_not_available, serialization_failure, deadlock_detected)
BUSY_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")
BUSY_SQLSTATES = ("55P03", "40001", "40P01")
QUERY_STATES = ("open", "answered")
# a queried box's answer: the box as it is (accept), another box or class (fix), no object (background)
QUERY_ANSWERS = ("accept", "fix", "background")
AUTO_TRAIN_EVERY = 2  # a new project's Project.auto_train_every
QUEUE_TRAIN_EVERY = 20  # a new project's Project.queue_train_every


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # naive UTC: SQLite keeps no zone


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="annotator", server_default="annotator")  # ROLES
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2; None: cannot log in
    created_at: Mapped[datetime] = mapped_column(default=now)
    # when the user was removed: they log in no more, the row stays for their past work
    removed_at: Mapped[datetime | None]


class Membership(Base):
    """A user's role on one project, where it differs from the user's own role."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))  # ROLES


class ApiToken(Base):
    """A bearer token for scripts; only its SHA-256 digest is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # None: never


class WebSession(Base):
    """A browser login: the session cookie's digest and the CSRF token that goes with it."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]


class LoginFailure(Base):
    """A failed log-in: the account name as typed (case-folded) and the client's address;
    kept for the throttling window (:mod:`fewclick.server.throttle`)."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(index=True)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    oriented: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str | None] = mapped_column(String(2000))  # the folder or dataset it came from
    mask_backend: Mapped[str | None] = mapped_column(String(20))  # the user's pick; None: the measured one
    # a training job starts by itself after every this many newly finished images; 0: never
    auto_train_every: Mapped[int] = mapped_column(
        default=AUTO_TRAIN_EVERY, server_default=str(AUTO_TRAIN_EVERY)
    )
    # the review queue starts a training job by itself after every this many answers; 0: never
    queue_train_every: Mapped[int] = mapped_column(
        default=QUEUE_TRAIN_EVERY, server_default=str(QUEUE_TRAIN_EVERY)
    )
    # the detector version its users pinned to serve click-to-detect; 0: the training-free
    # start; None: the newest version serves (the trainer's and the training job's pick)
    pinned_detector: Mapped[int | None] = mapped_column(default=None)
    # whether the page asks before an image is finished with no objects (off: a project
    # whose images may really be empty); the API asks for ``empty`` either way
    ask_empty: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    classes: Mapped[list[ProjectClass]] = relationship(
        back_populates="project", order_by="ProjectClass.position", cascade="all, delete-orphan"
    )
    images: Mapped[list[Image]] = relationship(
        back_populates="project", order_by="Image.file_name", cascade="all, delete-orphan"
    )


class ProjectClass(Base):
    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(7))  # "#rrggbb"
    key: Mapped[int | None]  # the number key 1-9 that picks it
    position: Mapped[int]  # class id in exports: the order of the project's classes
    # a thing (countable: several regions per image) or stuff (sky, road: at most one region
    # per image in COCO panoptic)
    isthing: Mapped[bool] = mapped_column(default=True, server_default=true())
    project: Mapped[Project] = relationship(back_populates="classes")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("project_id", "file_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(2000))  # relative name, as exported
    path: Mapped[str] = mapped_column(String(4000))  # where the file stays on disk
    width: Mapped[int]
    height: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="new")
    revision: Mapped[int] = mapped_column(default=0)  # bumped by every change to its annotations
    updated_at: Mapped[datetime] = mapped_column(default=now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    project: Mapped[Project] = relationship(back_populates="images")
    annotations: Mapped[list[Annotation]] = relationship(
        back_populates="image", cascade="all, delete-orphan", order_by="Annotation.id"
    )


class Annotation(Base):
    __tablename__ = "annotations"
    # an id is never given twice: without AUTOINCREMENT SQLite gives a new row the largest
    # id plus one, so a box drawn right after the newest one was deleted took its id, and a
    # page still holding the deleted box (an undo, a late save) reached the new one
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"))
    kind: Mapped[str] = mapped_column(String(10))
    geometry: Mapped[dict]
    score: Mapped[float | None]  # the model's score where a model proposed it
    quality: Mapped[float | None]  # estimated mask IoU (the quality ranker), masks only
    source: Mapped[str] = mapped_column(String(20), default="manual")
    backend: Mapped[str | None] = mapped_column(String(20))  # the mask backend that made it (sam, model, ...)
    review: Mapped[str] = mapped_column(String(10), default="pending")
    reference: Mapped[bool] = mapped_column(default=False)  # imported ground truth, not the user's work
    # whether SAM's proposal of this box serves as an exemplar its class's look-alikes are
    # matched to (issue 52); the person removes one from the detect panel's thumbnails
    exemplar: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=now)
    updated_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    image: Mapped[Image] = relationship(back_populates="annotations")


class Event(Base):
    """The interaction log: one row per user action."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(default=now, index=True)
    duration_ms: Mapped[float | None]
    detail: Mapped[dict | None]


class BoxQuery(Base):
    """A box the detector proposed that the review queue asks about (box-level active
    learning): ``box`` [x0, y0, x1, y1] in image pixels, the predicted class and its
    probability ``score``; answered once, by one user, with its seconds, and the annotation
    the answer made (accept and fix; background makes none)."""

    __tablename__ = "box_queries"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    box: Mapped[list]
    score: Mapped[float]
    model_version: Mapped[int | None]  # the detector version that proposed it
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)  # QUERY_STATES
    answer: Mapped[str | None] = mapped_column(String(12))  # QUERY_ANSWERS
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"))
    seconds: Mapped[float | None]  # how long the user took to answer
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "task", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(20))  # detect | segment | points
    version: Mapped[int]
    path: Mapped[str] = mapped_column(String(4000))
    images: Mapped[int]  # finished images it was trained on
    method: Mapped[str | None] = mapped_column(String(20))  # how it was made, e.g. pretrained | scratch
    metrics: Mapped[dict | None]  # what training measured, e.g. {"held_out_mAP": {"pretrained": 0.61}}
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class BackendComparison(Base):
    """The mask backends scored on a project's finished masks (``table``: per backend its
    mIoU per round, final mIoU and instances), the one that scored best, and the folder of
    the quality rankers trained on each backend's sessions (``ranker_<backend>.pkl``)."""

    __tablename__ = "backend_comparisons"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    table: Mapped[dict]
    chosen: Mapped[str] = mapped_column(String(20))
    masks: Mapped[int]  # finished masks it was measured on
    path: Mapped[str] = mapped_column(String(4000))
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(String(2000), default="")
    trigger: Mapped[str] = mapped_column(String(10), default="user", server_default="user")  # JOB_TRIGGERS
    created_at: Mapped[datetime] = mapped_column(default=now)
    started_at: Mapped[datetime | None]  # when it began running
    heartbeat_at: Mapped[datetime | None]  # last sign of life from the job's process
    # its training's steps and their measured seconds (fewclick.server.jobs.pause.Pace)
    pace: Mapped[dict | None]
    # the server run that started it (processes.RUN): the next run fails it if it never ended
    server_run: Mapped[str | None] = mapped_column(String(120), default=run_id)
    updated_at: Mapped[datetime] = mapped_column(default=now)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout, and on either
    database a statement waits at most :data:`BUSY_SECONDS` for another's lock."""
    sqlite = url.startswith("sqlite")
    if sqlite:
        connect_args = {"check_same_thread": False, "timeout": BUSY_SECONDS}
    elif url.startswith("postgresql"):
        connect_args = {"options": f"-c lock_timeout={round(BUSY_SECONDS * 1000)}"}
    else:
        connect_args = {}
    engine = create_engine(url, connect_args=connect_args)
    if sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def is_busy(exc: DBAPIError) -> bool:
    """Whether ``exc`` is a lock not got in time (another connection held it), a failure
    that trying again later can mend, rather than a fault."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state in BUSY_SQLSTATES or any(m in str(orig) for m in BUSY_MESSAGES)


def init_db(url: str) -> Engine:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = make_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def local_user(session) -> User:
    """The user acting in ``session``: the one the request authenticated as (set by
    :func:`fewclick.server.auth.authorize`), else (jobs, the demo's set-up, scripts on the
    database) the local user, created on first use."""
    if "user" in session.info:
        return session.info["user"]
    user = session.query(User).filter_by(name="local").one_or_none()
    if user is None:
        user = User(name="local")
        session.add(user)
        session.flush()
    return user
