"""Optional dependencies: ``pip install fewclick`` alone gives io, metrics and the light
simulators; the rest comes with an extra, and a missing one is named with its extra.

- ``image``: OpenCV and SciPy (mask outlines, oriented boxes from corners, MATLAB files,
  the image-based simulators: corrective clicks, scribbles, their allocation);
- ``ml``: ``image`` plus PyTorch, ONNX Runtime, scikit-learn, matplotlib (models, training,
  benchmarks);
- ``server``: ``ml`` plus FastAPI, SQLAlchemy and the rest of the app;
- ``ray``: ``ml`` plus Ray Data (batch jobs on a cluster); ``postgres``: the app on PostgreSQL.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["EXTRA_OF", "missing_extra", "require"]

# top-level module -> (the package's name, the extra that installs it)
EXTRA_OF: dict[str, tuple[str, str]] = {
    "cv2": ("OpenCV", "image"),
    "scipy": ("SciPy", "image"),
    "torch": ("PyTorch", "ml"),
    "torchvision": ("torchvision", "ml"),
    "onnxruntime": ("ONNX Runtime", "ml"),
    "onnx": ("ONNX", "ml"),
    "sklearn": ("scikit-learn", "ml"),
    "matplotlib": ("matplotlib", "ml"),
    "fastapi": ("FastAPI", "server"),
    "starlette": ("Starlette", "server"),
    "uvicorn": ("uvicorn", "server"),
    "sqlalchemy": ("SQLAlchemy", "server"),
    "alembic": ("Alembic", "server"),
    "multipart": ("python-multipart", "server"),
    "asgi_correlation_id": ("asgi-correlation-id", "server"),
    "argon2": ("argon2-cffi", "server"),
    "psycopg": ("psycopg", "postgres"),
    "ray": ("Ray", "ray"),
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose``, or raise an ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if not _not_installed(exc, top):
            raise  # installed but broken (a missing system library, a wrong version): its own error
        raise ImportError(_message(top, purpose), name=exc.name) from exc


def missing_extra(exc: ImportError, purpose: str) -> str | None:
    """The message for an ImportError of an optional package (``purpose`` needs it), naming
    its extra; None when the missing module is not one of ours to name."""
    top = (exc.name or "").split(".")[0]
    if not _not_installed(exc, top):
        return None
    if "pip install 'fewclick[" in str(exc):  # already said by require()
        return str(exc)
    return _message(top, purpose)


def _not_installed(exc: ImportError, top: str) -> bool:
    """Whether ``exc`` says that ``top``, one of ours to name, is not installed at all."""
    named = (exc.name or "").split(".")[0] == top
    if top not in EXTRA_OF or not named or not isinstance(exc, ModuleNotFoundError):
        return False
    try:
        return importlib.util.find_spec(top) is None
    except ImportError:  # its finder refuses it: not importable either
        return True


def _message(top: str, purpose: str) -> str:
    package, extra = EXTRA_OF[top]
    return (
        f"{purpose} needs {package}, which a plain `pip install fewclick` leaves out: "
        f"pip install 'fewclick[{extra}]'"
    )
