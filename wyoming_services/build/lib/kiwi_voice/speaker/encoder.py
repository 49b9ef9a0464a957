"""The voice encoder: resemblyzer's trained GE2E network on onnxruntime, with a numpy front end.

16 kHz mono float audio in, a 256-d L2-normalised embedding out. The network is resemblyzer's
`VoiceEncoder`: a 3-layer LSTM (40 mel bands in, 256 hidden), a linear layer, ReLU and
L2 normalisation of the last hidden state, for each 1.6 s partial (`frontend.py`); the
utterance's embedding is the normalised mean of its partials'. The weights are read from
resemblyzer's own `pretrained.pt` by `checkpoint.py` and put into an ONNX graph by
`onnx_graph.py` at load time, so neither torch nor librosa is needed and nothing is compiled
(resemblyzer's librosa/numba path took 8-25 s to warm after a cold start).

One encoder is shared by every connection: an onnxruntime session may be run from several
threads at once, and each run uses one thread (the service's `--workers` give parallelism).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from . import frontend
from .checkpoint import load_checkpoint
from .onnx_graph import INPUT_NAME, encoder_model
from .quality import SpeechQuality, clipped_fraction, dbfs, speech_level_problem

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = frontend.SAMPLE_RATE
EMBEDDING_SIZE = 256

FloatArray = NDArray[np.float32]


class NoSpeech(ValueError):
    """The audio holds no speech to describe a voice: empty, silent, or all trimmed away."""


@dataclass(frozen=True)
class PreparedSpeech:
    speech: FloatArray  # volume-normalised, long silences cut: what the network hears
    quality: SpeechQuality


@dataclass(frozen=True)
class Embedded:
    embedding: FloatArray  # (256,), L2-normalised
    quality: SpeechQuality


def bundled_weights() -> Path | None:
    """`pretrained.pt` inside an installed resemblyzer package, if there is one.

    Found without importing resemblyzer (which would import torch and librosa).
    """
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    return None


class VoiceEncoder:
    """resemblyzer's encoder network with its trained weights, on onnxruntime."""

    def __init__(self, weights: Path) -> None:
        self.weights = weights
        checkpoint = load_checkpoint(weights)
        state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict) or "linear.weight" not in state:
            raise ValueError(f"{weights} holds no resemblyzer encoder state")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are not news
        self._session = onnxruntime.InferenceSession(
            encoder_model(state), options, providers=["CPUExecutionProvider"]
        )

    def embed_partials(self, mels: FloatArray) -> FloatArray:
        """(partials, 160, 40) mel spectrograms -> (partials, 256) L2-normalised embeddings."""
        time_major = np.ascontiguousarray(mels.transpose(1, 0, 2), dtype=np.float32)
        (embeddings,) = self._session.run(None, {INPUT_NAME: time_major})
        return np.asarray(embeddings, dtype=np.float32)

    def embed_speech(self, speech: FloatArray) -> FloatArray:
        """The embedding of already preprocessed speech (resemblyzer's embed_utterance)."""
        partials = self.embed_partials(frontend.partial_mels(speech))
        mean = partials.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm == 0:
            raise NoSpeech("the encoder found no voice in the audio")
        embedding: FloatArray = (mean / norm).astype(np.float32)
        return embedding

    def prepare(self, samples: FloatArray) -> PreparedSpeech:
        """The speech in 16 kHz mono float audio, with the measurements `quality.py` judges."""
        problem = speech_level_problem(samples)
        if problem:
            raise NoSpeech(problem)
        samples = samples.astype(np.float32, copy=False)
        speech, gain = frontend.preprocess(samples)
        if len(speech) == 0:
            raise NoSpeech("the voice activity detector found no speech")
        rms = float(np.sqrt(np.mean(np.square(speech, dtype=np.float64)))) / gain
        quality = SpeechQuality(len(speech) / SAMPLE_RATE, dbfs(rms), clipped_fraction(samples))
        return PreparedSpeech(speech, quality)

    def embed(self, samples: FloatArray) -> Embedded:
        """Embedding of 16 kHz mono float audio, with the measurements `quality.py` judges."""
        prepared = self.prepare(samples)
        return Embedded(self.embed_speech(prepared.speech), prepared.quality)

    def warm_up(self) -> FloatArray:
        """Embed the probe signal once, so no request pays for first-use costs; its embedding.

        The probe's embedding also tells whether a background cohort was made with this
        encoder (`cohort.py`).
        """
        started = time.perf_counter()
        embedding = self.embed_speech(probe_signal())
        _LOGGER.info("Voice encoder warm in %.2f s", time.perf_counter() - started)
        return embedding


def probe_signal() -> FloatArray:
    """One second of seeded Gaussian noise: the same samples on every machine."""
    return (0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE)).astype(np.float32)
