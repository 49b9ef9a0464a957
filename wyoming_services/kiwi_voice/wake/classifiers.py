"""Wake-word classifiers: a batch of embedding windows in, one score per window out.

Two runtimes, one interface (`score_batch`):

- `.onnx` models run on ONNX Runtime. openWakeWord exports them with a fixed batch of 1, so at
  load the graph's batch dimension is made symbolic and a top-level `If` (hey_jarvis's built-in
  verifier: "score >= 0.5 ? verifier score : score") becomes a `Where` over both branches, which
  is the same per row but works on a batch. A load-time check compares a batch with row-by-row
  runs of the original graph; a model that does not pass runs row by row instead.
- `.tflite` models run on the TensorFlow Lite runtime that pyopen-wakeword ships
  (`libtensorflowlite_c`). Their graphs reshape to a batch of 1, so they run one row at a
  time. A TFLite interpreter is not thread-safe: each engine thread gets its own interpreter
  over the one shared model.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from .features import EMBEDDING_SIZE, FloatArray, cpu_session
from .graphs import batched_classifier

_LOGGER = logging.getLogger(__name__)

_BATCH_CHECK_TOLERANCE = 1e-5


class NotAWakeWordModel(ValueError):
    """The file does not have an openWakeWord classifier's shape."""


class WakeWordClassifier(Protocol):
    name: str
    window_frames: int  # embeddings per input window (16 for the pretrained models)
    batched: bool  # one runtime call scores the whole batch

    def score_batch(self, windows: FloatArray) -> FloatArray:
        """Scores (n,) in [0, 1] of windows shaped (n, window_frames, 96). Thread-safe."""
        ...


def load_classifier(name: str, path: Path) -> WakeWordClassifier:
    if path.suffix == ".tflite":
        return TfliteClassifier(name, path)
    return OnnxClassifier(name, path)


def _best_class(scores: FloatArray) -> FloatArray:
    # Multi-class models (openWakeWord's `timer`) put "none of them" in column 0: such a model
    # scores the best of the other classes.
    rows = np.asarray(scores, dtype=np.float32).reshape(scores.shape[0], -1)
    return rows[:, 0] if rows.shape[1] == 1 else rows[:, 1:].max(axis=1)


class OnnxClassifier:
    """One wake word's ONNX session, batched over streams where the graph allows it."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        original = cpu_session(path)
        model_input = original.get_inputs()[0]
        shape = model_input.shape
        if len(shape) != 3 or shape[2] != EMBEDDING_SIZE or not isinstance(shape[1], int):
            raise NotAWakeWordModel(
                f"{path.name}: input shape {shape} is not [1, frames, {EMBEDDING_SIZE}]"
            )
        self.input_name: str = model_input.name
        self.window_frames: int = shape[1]
        self.class_labels = _class_labels(original.get_outputs()[0].name)
        self.session = original
        self.batched = False
        batched = _batched_session(path)
        if batched is not None and self._same_scores(original, batched):
            self.session, self.batched = batched, True
        else:
            _LOGGER.info("%s: graph cannot take a batch; it runs one stream at a time", path.name)

    def score_batch(self, windows: FloatArray) -> FloatArray:
        if self.batched:
            (scores,) = self.session.run(None, {self.input_name: windows})
            return _best_class(scores)
        rows = [self.session.run(None, {self.input_name: w[None]})[0] for w in windows]
        return _best_class(np.concatenate(rows))

    def _same_scores(self, original: ort.InferenceSession, batched: ort.InferenceSession) -> bool:
        # Rows that land on both sides of a verifier's gate: silence-like and random windows.
        rng = np.random.default_rng(7)
        windows = np.concatenate(
            (
                np.zeros((1, self.window_frames, EMBEDDING_SIZE), dtype=np.float32),
                rng.normal(0, 1, (5, self.window_frames, EMBEDDING_SIZE)).astype(np.float32),
            )
        )
        try:
            (together,) = batched.run(None, {self.input_name: windows})
        except Exception as err:  # any runtime refusal means "not batchable"
            _LOGGER.debug("%s: batched run failed: %s", self.name, err)
            return False
        alone = np.concatenate([original.run(None, {self.input_name: w[None]})[0] for w in windows])
        return together.shape == alone.shape and bool(
            np.allclose(together, alone, atol=_BATCH_CHECK_TOLERANCE)
        )


def _batched_session(path: Path) -> ort.InferenceSession | None:
    try:
        return cpu_session(batched_classifier(path))
    except Exception as err:  # an unusual graph: fall back to row by row
        _LOGGER.debug("%s: no batched graph: %s", path.name, err)
        return None


def _class_labels(output_name: str) -> dict[str, str]:
    try:
        labels = json.loads(output_name)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


# -- TensorFlow Lite --------------------------------------------------------------------------


def tflite_library_path() -> Path:
    """pyopen-wakeword's shipped `libtensorflowlite_c` (raises ImportError when it is missing)."""
    import pyopen_wakeword

    lib_dir = Path(pyopen_wakeword.__file__).parent / "lib"
    found = sorted(lib_dir.glob("*tensorflowlite_c.*"))
    if not found:
        raise ImportError(f"pyopen-wakeword has no libtensorflowlite_c in {lib_dir}")
    return found[0]


_tflite_lock = threading.Lock()


@cache
def tflite_library() -> Any:
    """The TFLite C API with its argument types declared (by pyopen-wakeword), loaded once."""
    from pyopen_wakeword.wakeword import TfLiteWakeWord

    return TfLiteWakeWord(tflite_library_path()).lib


class TfliteClassifier:
    """One wake word's `.tflite` model; an interpreter per engine thread."""

    batched = False

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._lib = tflite_library()
        self._model = self._lib.TfLiteModelCreateFromFile(str(path.resolve()).encode())
        if not self._model:
            raise NotAWakeWordModel(f"{path.name}: not a TensorFlow Lite model")
        self._local = threading.local()
        self._interpreters: list[Any] = []  # every thread's, freed together with the model
        interpreter = self._interpreter()
        tensor = self._lib.TfLiteInterpreterGetInputTensor(interpreter, 0)
        shape = [
            self._lib.TfLiteTensorDim(tensor, i)
            for i in range(self._lib.TfLiteTensorNumDims(tensor))
        ]
        if len(shape) != 3 or shape[0] != 1 or shape[2] != EMBEDDING_SIZE:
            raise NotAWakeWordModel(
                f"{path.name}: input shape {shape} is not [1, frames, {EMBEDDING_SIZE}]"
            )
        self.window_frames: int = shape[1]

    def _interpreter(self) -> Any:
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            interpreter = self._lib.TfLiteInterpreterCreate(self._model, None)
            if not interpreter or self._lib.TfLiteInterpreterAllocateTensors(interpreter) != 0:
                raise NotAWakeWordModel(f"{self.path.name}: TensorFlow Lite cannot run it")
            self._local.interpreter = interpreter
            with _tflite_lock:
                self._interpreters.append(interpreter)
        return interpreter

    def score_batch(self, windows: FloatArray) -> FloatArray:
        lib = self._lib
        interpreter = self._interpreter()
        input_tensor = lib.TfLiteInterpreterGetInputTensor(interpreter, 0)
        output_tensor = lib.TfLiteInterpreterGetOutputTensor(interpreter, 0)
        output_bytes = lib.TfLiteTensorByteSize(output_tensor)
        scores = np.empty((len(windows), output_bytes // 4), dtype=np.float32)
        for row, window in enumerate(windows):
            data = np.ascontiguousarray(window, dtype=np.float32)
            _check(lib.TfLiteTensorCopyFromBuffer, input_tensor, data, data.nbytes)
            if lib.TfLiteInterpreterInvoke(interpreter) != 0:
                raise RuntimeError(f"{self.path.name}: TensorFlow Lite inference failed")
            _check(lib.TfLiteTensorCopyToBuffer, output_tensor, scores[row], output_bytes)
        return _best_class(scores)

    def __del__(self) -> None:
        lib, model = getattr(self, "_lib", None), getattr(self, "_model", None)
        if lib is None or not model:
            return
        for interpreter in getattr(self, "_interpreters", []):
            lib.TfLiteInterpreterDelete(interpreter)
        lib.TfLiteModelDelete(model)


def _check(copy: Callable[..., int], tensor: Any, array: FloatArray, size: int) -> None:
    if copy(tensor, array.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(size)) != 0:
        raise RuntimeError("TensorFlow Lite tensor copy failed (wrong input size?)")
