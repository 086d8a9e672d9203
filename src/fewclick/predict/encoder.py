"""The one pretrained image encoder every mode shares: a SAM-format ONNX encoder on
onnxruntime, its embedding computed once per image and cached in memory and on disk.

``ImageEncoder.encode(image)`` resizes the longest side to 1024 px, normalises with SAM's
mean and std, zero-pads to 1024 x 1024 and runs the encoder: :class:`Embedding` holds
``embedding float32[1, 256, 64, 64]`` and, for the default TinyViT encoder, its
intermediate maps at strides 4, 8 and 16 (64, 128 and 160 channels), exposed by adding
those tensors as graph outputs with the ``onnx`` package when the encoder is loaded (the
file on disk stays the one whose sha256 was checked).

Embeddings are keyed by a digest of the pixels (or a key the caller gives, such as a
project image's id and file time): an in-memory LRU of at most ``memory_items`` and
``memory_mb`` (the newest is always kept) and, with
``cache_dir``, one ``.npz`` (float16) per key on disk.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fewclick.io.images import to_rgb8

INPUT_SIZE = 1024
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)

#: TinyViT-5M's intermediate tensors (the default encoder): stride -> graph tensor name.
FEATURE_TENSORS = {
    4: "/patch_embed/seq/seq.2/c/Conv_output_0",
    8: "/layers.0/downsample/conv2/c/Conv_output_0",
    16: "/layers.1/downsample/conv2/c/Conv_output_0",
}


@dataclass(frozen=True)
class Embedding:
    """One image's encoding. ``embedding float32[1, C, 64, 64]`` covers the padded 1024 x
    1024 input; ``image_size`` is the original (H, W), ``input_size`` the resized (H', W')
    before padding (longest side 1024), ``scale`` = 1024 / max(H, W). ``features`` maps a
    stride (4, 8, 16) to ``float32[1, C_s, 1024 / s, 1024 / s]``, or is None."""

    embedding: np.ndarray
    image_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: float
    features: dict[int, np.ndarray] | None = None


#: the in-memory cache's budget (an embedding with its feature maps is 32 MB; without, 4 MB)
MEMORY_MB = 48
#: a cache file still being written this long after it was last touched was left by a writer that died
STALE_SECONDS = 600.0


def _nbytes(e: Embedding) -> int:
    return e.embedding.nbytes + sum(m.nbytes for m in (e.features or {}).values())


def resized_size(height: int, width: int, target: int = INPUT_SIZE) -> tuple[int, int]:
    """(H', W') with the longest side ``target``, as SAM's ResizeLongestSide rounds."""
    scale = target / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def preprocess(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``uint8[H, W, 3]`` -> (``float32[1, 3, 1024, 1024]`` normalised and zero-padded at the
    bottom and right, (H', W'))."""
    h, w = image.shape[:2]
    nh, nw = resized_size(h, w)
    interpolation = cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation) if (nh, nw) != (h, w) else image
    x = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    x[:nh, :nw] = (resized.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), (nh, nw)


def session_options(threads: int | None, arena: bool = True):
    """onnxruntime options: ``threads`` intra-op threads (None: its default) that sleep
    rather than spin between runs, so an idle session costs nothing and a busy machine's
    other work is not slowed by spinning threads. Without ``arena`` a run's buffers go back
    when it ends (the encoder's: about 230 MB an app's worker would otherwise keep)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = arena
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def pixel_key(image: np.ndarray) -> str:
    """A digest of the pixels and shape: the default cache key."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
    digest.update(str(image.shape).encode())
    return digest.hexdigest()


class ImageEncoder:
    """A SAM-format ONNX image encoder with a cache (module docstring).

    ``path`` is the encoder's ONNX file (default: the checked pair of
    :mod:`fewclick.predict.pretrained`); ``threads`` onnxruntime's intra-op threads (None:
    its default); ``cache_dir`` a folder for one ``.npz`` per image key (None: memory only),
    kept within ``disk_mb`` (None: no limit) by removing the files least recently written
    or read first (a window of a large image takes 16 MB: a slide's sweep alone writes 24 GB).
    Thread-safe: the app's worker encodes the next image while a click is served."""

    def __init__(
        self,
        path: str | Path | None = None,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        memory_items: int = 8,
        memory_mb: float = MEMORY_MB,
        disk_mb: float | None = None,
    ) -> None:

        if path is None:
            from fewclick.predict.pretrained import default_model_files

            path = default_model_files()[0]
        self.path = Path(path)
        self.session, self.feature_outputs = onnx_session(
            self.path, FEATURE_TENSORS, "encoder", threads, arena=False
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, INPUT_SIZE, INPUT_SIZE]:
            found = [(i.name, i.shape) for i in inputs]
            raise ValueError(
                f"{self.path}: expected a SAM encoder with one input [1, 3, 1024, 1024], got {found}"
            )
        self._input = inputs[0].name
        self._output = self.session.get_outputs()[0].name
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.memory_items = memory_items
        self.memory_bytes = int(memory_mb * 2**20)
        self.disk_bytes = None if disk_mb is None else int(disk_mb * 2**20)
        self._memory: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def has_features(self) -> bool:
        """Whether this encoder exposes the stride 4 / 8 / 16 maps."""
        return bool(self.feature_outputs)

    def cached(self, key: str) -> Embedding | None:
        """The embedding stored under ``key`` in memory or on disk, or None."""
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                return found
        found = self._read(key)
        if found is not None:
            self._remember(key, found)
        return found

    def encode(self, image: np.ndarray, key: str | None = None, features: bool = False) -> Embedding:
        """The :class:`Embedding` of ``image`` (``uint8[H, W, 3]``, grayscale or 16-bit),
        from the cache under ``key`` (default :func:`pixel_key`) or computed and cached.
        ``features=True`` asks for the intermediate maps too (ValueError if the encoder has
        none)."""
        if features and not self.has_features:
            raise ValueError(f"{self.path}: this encoder has no stride 4 / 8 / 16 feature maps to return")
        image = to_rgb8(np.asarray(image), name="image")
        key = pixel_key(image) if key is None else key
        found = self.cached(key)
        if found is not None and found.image_size == image.shape[:2] and (found.features or not features):
            return found
        x, input_size = preprocess(image)
        with self._run_lock:
            names = [*self.feature_outputs.values()] if features else []
            outputs = self.session.run([self._output, *names], {self._input: x})
        maps = dict(zip(self.feature_outputs, outputs[1:])) if features else None
        h, w = image.shape[:2]
        result = Embedding(outputs[0], (h, w), input_size, INPUT_SIZE / max(h, w), maps)
        self._remember(key, result)
        self._write(key, result)
        return result

    def _remember(self, key: str, embedding: Embedding) -> None:
        with self._lock:
            self._memory[key] = embedding
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items or (
                len(self._memory) > 1 and sum(map(_nbytes, self._memory.values())) > self.memory_bytes
            ):
                self._memory.popitem(last=False)

    def _file(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        return self.cache_dir / f"{safe}.npz"

    def _write(self, key: str, e: Embedding) -> None:
        path = self._file(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"embedding": e.embedding.astype(np.float16)}
        for stride, m in (e.features or {}).items():
            arrays[f"s{stride}"] = m.astype(np.float16)
        # one temporary file per writer: the app's worker and a job may encode one image at once
        tmp = path.with_name(f"{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp.npz")
        np.savez(tmp, image_size=e.image_size, input_size=e.input_size, **arrays)
        tmp.replace(path)
        if self.disk_bytes is not None:
            self._trim(keep=path)

    def _trim(self, keep: Path) -> None:
        """Remove the cache's files least recently used first (their times: written, or
        read) until it holds at most ``disk_bytes``; never ``keep``, the file just written. A
        writer's unfinished file counts, and goes once it is :data:`STALE_SECONDS` old (its
        writer died)."""
        files, stale_ns = [], time.time_ns() - int(STALE_SECONDS * 1e9)
        for f in self.cache_dir.glob("*.npz"):
            try:
                stat = f.stat()
            except FileNotFoundError:  # another writer's file, removed meanwhile
                continue
            if f.name.endswith(".tmp.npz") and stat.st_mtime_ns > stale_ns:  # still being written
                files.append((float("inf"), stat.st_size, f))
                continue
            files.append((stat.st_mtime_ns, stat.st_size, f))
        total = sum(size for _, size, _ in files)
        for used, size, f in sorted(files, key=lambda t: t[0]):
            if total <= self.disk_bytes:
                break
            if f != keep and used != float("inf"):
                f.unlink(missing_ok=True)
                total -= size

    def _read(self, key: str) -> Embedding | None:
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        if self.disk_bytes is not None:
            try:
                os.utime(path)  # used: the last to go when the cache is trimmed
            except OSError:  # another's file, or a read-only folder: read it all the same
                pass
        try:
            with np.load(path) as z:
                feats = {int(k[1:]): z[k].astype(np.float32) for k in z.files if k.startswith("s")}
                h, w = (int(v) for v in z["image_size"])
                return Embedding(
                    z["embedding"].astype(np.float32),
                    (h, w),
                    tuple(int(v) for v in z["input_size"]),
                    INPUT_SIZE / max(h, w),
                    feats or None,
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # a torn or foreign cache file: encode again
            return None


def onnx_session(path: Path, tensors: dict, what: str, threads: int | None, arena: bool = True):
    """``(onnxruntime session on the CPU, the added outputs)`` of the ONNX ``what`` at
    ``path`` with ``tensors`` added as outputs (:func:`with_outputs`; ``arena`` as in
    :func:`session_options`); a graph onnxruntime cannot load raises ValueError naming the file."""
    import onnxruntime as ort

    graph, outputs = with_outputs(path, tensors, what)
    try:
        session = ort.InferenceSession(
            graph, session_options(threads, arena), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own types for a bad graph
        raise ValueError(f"{path}: not a loadable ONNX {what} ({exc})") from None
    return session, outputs


def with_outputs(path: Path, tensors: dict, what: str) -> tuple[bytes | str, dict]:
    """The ONNX graph at ``path`` (the ``what``: encoder, decoder) with ``tensors``' values
    (intermediate tensor names) added as outputs where it has them all (serialised bytes),
    or its path unchanged and no added outputs."""
    import onnx

    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what} file") from None
    except Exception as exc:  # onnx raises DecodeError & co. for a foreign file
        raise ValueError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    produced = {out for node in model.graph.node for out in node.output}
    if not all(name in produced for name in tensors.values()):
        return str(path), {}
    for name in tensors.values():
        model.graph.output.append(onnx.ValueInfoProto(name=name))
    return model.SerializeToString(), dict(tensors)
