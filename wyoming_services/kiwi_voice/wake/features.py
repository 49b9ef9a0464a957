"""openWakeWord's audio features, with the ONNX sessions shared by every stream.

The math is openwakeword 0.6.0's `utils.AudioFeatures` streaming path, split in two:

- `FeatureModels` holds the melspectrogram and embedding `onnxruntime.InferenceSession`s,
  loaded once per process. `InferenceSession.run` is thread-safe, so any number of streams
  use them from the engine's worker threads at the same time.
- `FeatureStream` is one audio stream's state: the last 480 samples (the melspectrogram's
  window overlap), the last 76 mel frames (one embedding window) and the recent embeddings.
- `push_frames` advances many streams by one frame each with one melspectrogram and one
  embedding run (the batch dimension), which is how the engine scores every active stream of
  one audio tick; the per-row math is the same as one stream alone.

Per 80 ms frame (1280 samples at 16 kHz): melspectrogram of the frame plus 480 samples of
context (8 mel frames; 5 for the very first frame, as openwakeword does), scaled by x/10 + 2,
then one embedding of the last 76 mel frames. openwakeword seeds a stream's feature buffer with
embeddings of 4 s of random noise on every reset; that buffer is computed here once, from a
fixed seed, and copied into each new stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from .graphs import per_row_melspectrogram

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 1280  # 80 ms: the step at which openWakeWord scores
MEL_CONTEXT_SAMPLES = 480  # 3 hops of 160 samples: the STFT window overlap
MEL_BINS = 32
EMBEDDING_WINDOW = 76  # mel frames per embedding
EMBEDDING_STEP = 8  # mel frames per 80 ms frame
EMBEDDING_SIZE = 96
_SEED_AUDIO_SECONDS = 4
_SEED = 0x0DDBA11

FloatArray = NDArray[np.float32]


def cpu_session(model: Path | bytes) -> ort.InferenceSession:
    """One single-threaded CPU session: parallelism comes from the engine's worker threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # onnxruntime warns about unused initialisers in these models
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


class FeatureModels:
    """The melspectrogram and embedding models, loaded once and shared by all streams."""

    def __init__(self, melspectrogram_path: Path, embedding_path: Path) -> None:
        # Rows of a batch get each their own decibel floor, as when run alone (graphs.py).
        self._melspectrogram = cpu_session(per_row_melspectrogram(melspectrogram_path))
        self._embedding = cpu_session(embedding_path)
        self._mel_input = self._melspectrogram.get_inputs()[0].name
        self._embedding_input = self._embedding.get_inputs()[0].name
        self.seed_features = self._seed_features()

    def melspectrogram(self, samples: FloatArray) -> FloatArray:
        """Mel frames (n, 32) of int16-scaled float samples, in openwakeword's scaling."""
        return self.melspectrogram_batch(samples[None, :])[0]

    def melspectrogram_batch(self, samples: FloatArray) -> FloatArray:
        """Mel frames (rows, n, 32) of equally long rows of samples (rows, samples)."""
        (spectrogram,) = self._melspectrogram.run(None, {self._mel_input: samples})
        rows = samples.shape[0]
        return np.asarray(spectrogram / 10.0 + 2.0, dtype=np.float32).reshape(rows, -1, MEL_BINS)

    def embed(self, mel_windows: FloatArray) -> FloatArray:
        """Embeddings (n, 96) of mel windows shaped (n, 76, 32)."""
        (embeddings,) = self._embedding.run(None, {self._embedding_input: mel_windows[..., None]})
        return np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBEDDING_SIZE)

    def _seed_features(self) -> FloatArray:
        # openwakeword fills a fresh buffer from random int16 noise; a fixed seed makes every
        # stream start identically (and reproducibly) instead of differently each time.
        noise = np.random.default_rng(_SEED).integers(
            -1000, 1000, SAMPLE_RATE * _SEED_AUDIO_SECONDS
        )
        mels = self.melspectrogram(noise.astype(np.float32))
        starts = range(0, mels.shape[0] - EMBEDDING_WINDOW + 1, EMBEDDING_STEP)
        windows = np.stack([mels[i : i + EMBEDDING_WINDOW] for i in starts])
        return self.embed(windows)


class FeatureStream:
    """One stream's feature state; advance it one 80 ms frame at a time."""

    def __init__(self, models: FeatureModels, history_frames: int) -> None:
        self._models = models
        self._history_frames = max(history_frames, 1)
        self._context = np.empty(0, dtype=np.float32)
        self._mels = np.ones((EMBEDDING_WINDOW, MEL_BINS), dtype=np.float32)
        self._features = models.seed_features[-self._history_frames :].copy()

    def push_frame(self, frame: FloatArray) -> None:
        """Add one frame of 1280 int16-scaled float samples."""
        push_frames(self._models, [self], [frame])

    def _mel_input(self, frame: FloatArray) -> FloatArray:
        audio = np.concatenate((self._context, frame))
        self._context = audio[-MEL_CONTEXT_SAMPLES:]
        return audio

    def _add_mels(self, mels: FloatArray) -> FloatArray:
        """Append new mel frames; returns the embedding window (76, 32) that now ends here."""
        self._mels = np.concatenate((self._mels, mels))[-EMBEDDING_WINDOW:]
        return self._mels

    def _add_embedding(self, embedding: FloatArray) -> None:
        self._features = np.concatenate((self._features, embedding[None, :]))[
            -self._history_frames :
        ]

    def window(self, frames: int) -> FloatArray:
        """The last `frames` embeddings shaped (frames, 96), one row of a classifier's input."""
        return self._features[-frames:, :]


def push_frames(
    models: FeatureModels, streams: Sequence[FeatureStream], frames: Sequence[FloatArray]
) -> None:
    """Advance each stream by its frame: one melspectrogram run per input length, one embedding run.

    A stream's first frame has no context yet (1280 samples, not 1760), so its rows run apart
    from the others; everything else of one tick shares a single run per model.
    """
    inputs = [stream._mel_input(frame) for stream, frame in zip(streams, frames, strict=True)]
    windows: list[FloatArray] = [np.empty(0, dtype=np.float32)] * len(streams)
    for length in sorted({len(audio) for audio in inputs}):
        rows = [i for i, audio in enumerate(inputs) if len(audio) == length]
        mels = models.melspectrogram_batch(np.stack([inputs[i] for i in rows]))
        for row, i in enumerate(rows):
            windows[i] = streams[i]._add_mels(mels[row])
    embeddings = models.embed(np.stack(windows))
    for stream, embedding in zip(streams, embeddings, strict=True):
        stream._add_embedding(embedding)
