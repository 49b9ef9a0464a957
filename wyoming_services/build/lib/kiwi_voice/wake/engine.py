"""Wake-word detection: shared models, per-stream state, and the rules that turn scores into hits.

`WakeEngine` is loaded once per process and holds every ONNX session (features and one
classifier per wake word). `WakeStream` is what one audio stream costs: a `FeatureStream`,
a few counters per selected wake word, and the samples of a frame not yet complete. Streams
never touch each other, and each stream is advanced by one worker thread at a time (its
connection hands it one batch of frames at a time), so no locks are needed.

Scoring follows openwakeword 0.6.0's `Model.predict` frame by frame: every 80 ms frame gives
each selected classifier one score in [0, 1]; the first 5 frames of a stream score 0 (the
feature buffer still holds seed noise). A wake word *fires* when `trigger_level` activations
have accumulated (+1 for a frame at or above the threshold, -1 down to 0 otherwise, as in
wyoming-openwakeword), and then stays quiet for `refractory_seconds` of stream time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .features import (
    EMBEDDING_SIZE,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    FeatureModels,
    FeatureStream,
    FloatArray,
    cpu_session,
)

_LOGGER = logging.getLogger(__name__)

WARM_UP_FRAMES = 5  # openwakeword zeroes scores until its prediction buffer holds 5 frames


class NotAWakeWordModel(ValueError):
    """The ONNX file does not have an openWakeWord classifier's shape."""


@dataclass(frozen=True)
class DetectionSettings:
    threshold: float = 0.5
    trigger_level: int = 1
    refractory_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {self.threshold}")
        if self.trigger_level < 1:
            raise ValueError(f"trigger level must be at least 1, not {self.trigger_level}")
        if self.refractory_seconds < 0:
            raise ValueError("refractory time cannot be negative")


class WakeWordClassifier:
    """One wake word's ONNX session: a window of embeddings in, a score out."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.session: ort.InferenceSession = cpu_session(path)
        model_input = self.session.get_inputs()[0]
        shape = model_input.shape
        if len(shape) != 3 or shape[2] != EMBEDDING_SIZE or not isinstance(shape[1], int):
            raise NotAWakeWordModel(
                f"{path.name}: input shape {shape} is not [1, frames, {EMBEDDING_SIZE}]"
            )
        self.input_name: str = model_input.name
        self.window_frames: int = shape[1]
        # Multi-class models (openWakeWord's `timer`) name their classes in the output's name;
        # class 0 is "none of them", so such a model scores the best of the other classes.
        output = self.session.get_outputs()[0]
        self.class_labels = _class_labels(output.name)
        self.output_columns = output.shape[1] if isinstance(output.shape[1], int) else 1

    def score(self, window: FloatArray) -> float:
        (scores,) = self.session.run(None, {self.input_name: window})
        row = np.asarray(scores, dtype=np.float32).reshape(-1)
        if row.size == 1:
            return float(row[0])
        return float(row[1:].max())


def _class_labels(output_name: str) -> dict[str, str]:
    try:
        labels = json.loads(output_name)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


@dataclass(frozen=True)
class Hit:
    """A wake word fired: its model, its score and where in the stream (ms from the start)."""

    model: str
    score: float
    stream_ms: int


@dataclass
class _WakeWordState:
    classifier: WakeWordClassifier
    activations: int = 0
    quiet_until_sample: int = 0


class WakeEngine:
    """Every model of the wake service, loaded once and shared by all streams."""

    def __init__(
        self,
        features: FeatureModels,
        classifiers: Mapping[str, WakeWordClassifier],
        settings: DetectionSettings,
    ) -> None:
        self.features = features
        self.classifiers = dict(classifiers)
        self.settings = settings
        self.history_frames = max((c.window_frames for c in self.classifiers.values()), default=16)

    def open_stream(self, models: Sequence[str]) -> WakeStream:
        unknown = [m for m in models if m not in self.classifiers]
        if unknown:
            raise KeyError(f"no loaded wake word named {', '.join(unknown)}")
        return WakeStream(self, models)


@dataclass
class WakeStream:
    """One audio stream through the engine. Feed 16 kHz mono s16; collect hits."""

    engine: WakeEngine
    models: Sequence[str]
    samples_scored: int = 0
    frames_scored: int = 0
    fired: set[str] = field(default_factory=set)
    _features: FeatureStream = field(init=False)
    _pending: list[FloatArray] = field(init=False, default_factory=list)
    _pending_samples: int = field(init=False, default=0)
    _states: dict[str, _WakeWordState] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._features = FeatureStream(self.engine.features, self.engine.history_frames)
        self.select(self.models)

    def select(self, models: Sequence[str]) -> None:
        """Listen for these models from now on (a `detect` in the middle of a stream).

        The state dict is replaced, never changed in place, so a `score` running in a worker
        keeps a consistent view of the selection it started with.
        """
        self.models = list(models)
        kept = {m: s for m, s in self._states.items() if m in self.models}
        self._states = {
            m: kept.get(m) or _WakeWordState(self.engine.classifiers[m]) for m in self.models
        }

    def add_audio(self, pcm16: bytes) -> None:
        """Queue audio (cheap; on the event loop). `take_frames` + `score` do the work."""
        if pcm16:
            self._pending.append(np.frombuffer(pcm16, dtype="<i2").astype(np.float32))
            self._pending_samples += len(pcm16) // 2

    @property
    def pending_seconds(self) -> float:
        return self._pending_samples / SAMPLE_RATE

    def take_frames(self, max_frames: int) -> FloatArray | None:
        """Up to `max_frames` complete 80 ms frames of queued audio, or None (on the loop)."""
        frames = min(self._pending_samples // FRAME_SAMPLES, max_frames)
        if frames == 0:
            return None
        audio = np.concatenate(self._pending)
        taken = frames * FRAME_SAMPLES
        rest = audio[taken:]
        self._pending = [rest] if rest.size else []
        self._pending_samples = int(rest.size)
        return audio[:taken]

    def score(self, audio: FloatArray) -> list[Hit]:
        """Score whole frames taken by `take_frames` (blocking: run in a worker thread).

        Only this method touches the feature and detector state, and a stream's frames are
        scored one batch at a time, in order.
        """
        hits: list[Hit] = []
        for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            hits += self._score_frame(audio[start : start + FRAME_SAMPLES])
        return hits

    def _score_frame(self, frame: FloatArray) -> list[Hit]:
        self._features.push_frame(frame)
        self.frames_scored += 1
        self.samples_scored += FRAME_SAMPLES
        if self.frames_scored <= WARM_UP_FRAMES:
            return []
        settings = self.engine.settings
        hits: list[Hit] = []
        for name, state in self._states.items():
            classifier = state.classifier
            score = classifier.score(self._features.window(classifier.window_frames))
            if score < settings.threshold:
                state.activations = max(0, state.activations - 1)
                continue
            state.activations += 1
            if state.activations < settings.trigger_level:
                continue
            state.activations = 0
            if self.samples_scored < state.quiet_until_sample:
                continue
            state.quiet_until_sample = self.samples_scored + int(
                settings.refractory_seconds * SAMPLE_RATE
            )
            self.fired.add(name)
            hits.append(Hit(name, score, self.samples_scored * 1000 // SAMPLE_RATE))
            _LOGGER.debug("%s fired with score %.3f", name, score)
        return hits
