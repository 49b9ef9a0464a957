"""Wake-word detection: shared models, per-stream state, and the rules that turn scores into hits.

`WakeEngine` is loaded once per process and holds every model (the feature sessions and one
classifier per wake word, `.onnx` or `.tflite`). `WakeStream` is what one audio stream costs: a
`FeatureStream`, a few counters per selected wake word, and the samples of a frame not yet
complete. `WakeEngine.score_batch` advances many streams together, one 80 ms tick at a time,
with one melspectrogram, one embedding and one classifier pass per tick for all of them (the
batch dimension), instead of one pass per stream. A stream is in one batch at a time (its
connection waits for its frames' scores before handing over more), so no locks are needed.

Scoring follows openwakeword 0.6.0's `Model.predict` frame by frame: every 80 ms frame gives
each selected classifier one score in [0, 1]; the first 5 frames of a stream score 0 (the
feature buffer still holds seed noise). A wake word *fires* when `trigger_level` activations
have accumulated (+1 for a frame at or above the threshold, -1 down to 0 otherwise, as in
wyoming-openwakeword), and then stays quiet for `refractory_seconds` of stream time. With a
second look (`second_look_frames` N), reaching the trigger level is only a first look: the
wake word fires when it reaches it again within the next N frames. Real wake phrases hold a
high score over several frames; look-alikes ("hey jasmine" for hey_jarvis) mostly peak in one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .classifiers import WakeWordClassifier
from .features import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    FeatureModels,
    FeatureStream,
    FloatArray,
    push_frames,
)

_LOGGER = logging.getLogger(__name__)

WARM_UP_FRAMES = 5  # openwakeword zeroes scores until its prediction buffer holds 5 frames


@dataclass(frozen=True)
class DetectionSettings:
    threshold: float = 0.5
    trigger_level: int = 1
    refractory_seconds: float = 2.0
    # 0: off. N: a wake word that reaches its trigger level fires only when it does so again
    # within the next N frames (a second look, 80 ms each), which look-alike phrases rarely do.
    second_look_frames: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {self.threshold}")
        if self.trigger_level < 1:
            raise ValueError(f"trigger level must be at least 1, not {self.trigger_level}")
        if self.refractory_seconds < 0:
            raise ValueError("refractory time cannot be negative")
        if self.second_look_frames < 0:
            raise ValueError("second look frames cannot be negative")


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
    look_until_frame: int = 0  # a first look is waiting for its second until this frame


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

    def score_batch(self, jobs: Sequence[tuple[WakeStream, FloatArray]]) -> list[list[Hit]]:
        """Score whole frames of many streams together (blocking: run in a worker thread).

        Tick by tick: every stream that still has a frame gives one, and the tick runs one
        melspectrogram, one embedding and one classifier pass per wake word for all of them.
        A stream appears at most once in `jobs`, and is in one call at a time.
        """
        hits: list[list[Hit]] = [[] for _ in jobs]
        ticks = max((len(audio) // FRAME_SAMPLES for _, audio in jobs), default=0)
        for tick in range(ticks):
            start = tick * FRAME_SAMPLES
            active = [i for i, (_, audio) in enumerate(jobs) if len(audio) >= start + FRAME_SAMPLES]
            streams = [jobs[i][0] for i in active]
            push_frames(
                self.features,
                [stream._features for stream in streams],
                [jobs[i][1][start : start + FRAME_SAMPLES] for i in active],
            )
            for stream in streams:
                stream._advance()
            for i, stream_hits in zip(active, self._classify(streams), strict=True):
                hits[i] += stream_hits
        return hits

    def _classify(self, streams: Sequence[WakeStream]) -> list[list[Hit]]:
        """One pass per wake word over every warmed-up stream that listens for it."""
        states = [s._states if s.frames_scored > WARM_UP_FRAMES else {} for s in streams]
        hits: list[list[Hit]] = [[] for _ in streams]
        for name, classifier in self.classifiers.items():
            rows = [i for i, listening in enumerate(states) if name in listening]
            if not rows:
                continue
            windows = np.stack(
                [streams[i]._features.window(classifier.window_frames) for i in rows]
            )
            for i, score in zip(rows, classifier.score_batch(windows), strict=True):
                if (hit := streams[i]._judge(states[i][name], float(score))) is not None:
                    hits[i].append(hit)
        return hits


@dataclass
class WakeStream:
    """One audio stream through the engine. Feed 16 kHz mono s16; collect hits."""

    engine: WakeEngine
    models: Sequence[str]
    samples_scored: int = 0
    frames_scored: int = 0
    fired: set[str] = field(default_factory=set)
    trace: list[tuple[str, float]] | None = None  # every score, when a list (tests, bench)
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
        """Score whole frames taken by `take_frames`, this stream alone (blocking).

        The same code path as a batch of many streams (`WakeEngine.score_batch`), with one row.
        """
        return self.engine.score_batch([(self, audio)])[0]

    def _advance(self) -> None:
        self.frames_scored += 1
        self.samples_scored += FRAME_SAMPLES

    def _judge(self, state: _WakeWordState, score: float) -> Hit | None:
        """Apply threshold, trigger level and refractory time to one frame's score."""
        if self.trace is not None:
            self.trace.append((state.classifier.name, score))
        settings = self.engine.settings
        if score < settings.threshold:
            state.activations = max(0, state.activations - 1)
            return None
        state.activations += 1
        if state.activations < settings.trigger_level:
            return None
        state.activations = 0
        if self.samples_scored < state.quiet_until_sample:
            return None
        if settings.second_look_frames:
            if state.look_until_frame < self.frames_scored:  # a first look: wait for a second
                state.look_until_frame = self.frames_scored + settings.second_look_frames
                return None
            state.look_until_frame = 0
        state.quiet_until_sample = self.samples_scored + int(
            settings.refractory_seconds * SAMPLE_RATE
        )
        name = state.classifier.name
        self.fired.add(name)
        _LOGGER.debug("%s fired with score %.3f", name, score)
        return Hit(name, score, self.samples_scored * 1000 // SAMPLE_RATE)
