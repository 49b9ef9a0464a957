"""Open-set evaluation of kiwi-speaker's decision rule, in process, for bench_speaker.py.

Every clip is embedded once with kiwi-speaker's own encoder; profiles and cohort go into the
service's own `VoiceIndex` and each trial through its own `decide`, so the operating point here
is the service's. A trial's *slack* is how far it clears the rule: the smallest of (cosine -
the profile's threshold), (normalised score - score threshold), (margin - required margin).
The service names the voice when the slack is >= 0 (and the profile is ready); moving that 0
to any offset traces the rule's DET curve: false accepts of never-enrolled voices against false
rejects of enrolled ones. Two simpler rules are traced beside it for comparison: cosine alone
(the rule before issue 14) and full AS-norm (z-normalised with the cohort's spread).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kiwi_voice.speaker.encoder import VoiceEncoder
from kiwi_voice.speaker.matching import VoiceIndex, decide
from kiwi_voice.speaker.protocol import ProfileData
from kiwi_voice.speaker.settings import Thresholds
from kiwi_voice.speaker.store import StoredVoice, StoreSnapshot
from tests.support.voices import synthetic_voice, voice_clips, wav_samples

Vector = NDArray[np.float32]
DISTINCT = 0.90  # two voices closer than this are one voice (as in the evaluation set)
SAME_VOICE = 0.95  # cohort voices this close to a test voice are left out (as the script does)
AS_NORM_TOP = 10
# What a voice turn carries after the wake word: ~1-2 s of speech.
SHORT_COMMANDS = (
    "turn on the kitchen light",
    "what time is it",
    "play some music",
    "lock the front door",
    "is it going to rain today",
    "switch off the lights",
)


@dataclass(frozen=True)
class Trial:
    voice: str
    genuine: bool  # the voice is enrolled (the trial is one of its test clips)
    correct: bool  # the closest profile is the voice's own
    slack: float  # >= 0: the service names the closest profile
    cosine: float  # best cosine (the old rule's score)
    as_norm: float  # full AS-norm of the closest profile


def _normalised(vector: NDArray[np.float64] | Vector) -> Vector:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


class VoiceBank:
    """Embeddings of voices' clips (and the seconds of speech in each), computed once."""

    def __init__(self, encoder: VoiceEncoder) -> None:
        self._encoder = encoder
        self.enrol: dict[str, Vector] = {}  # (3, 256) per voice
        self.test: dict[str, Vector] = {}
        self.enrol_seconds: dict[str, list[float]] = {}
        self.test_seconds: dict[str, list[float]] = {}
        self.short: dict[str, Vector] = {}  # short commands, synthetic voices only
        self.short_seconds: dict[str, list[float]] = {}

    def add(self, voice: str) -> None:
        if voice in self.enrol:
            return
        clips = voice_clips(voice)
        self.enrol[voice], self.enrol_seconds[voice] = self._embed_all(clips.enrol)
        self.test[voice], self.test_seconds[voice] = self._embed_all(clips.test)
        if not voice.startswith("human:"):
            commands = [synthetic_voice(voice, text) for text in SHORT_COMMANDS]
            self.short[voice], self.short_seconds[voice] = self._embed_all(commands)

    def _embed_all(self, paths: Sequence[Path]) -> tuple[Vector, list[float]]:
        embedded = [
            self._encoder.embed(np.frombuffer(wav_samples(p), "<i2").astype(np.float32) / 32768)
            for p in paths
        ]
        return np.stack([e.embedding for e in embedded]), [e.quality.seconds for e in embedded]

    def mean(self, voice: str) -> Vector:
        return _normalised(np.concatenate((self.enrol[voice], self.test[voice])).mean(axis=0))


def _stored(voice: str, samples: Vector) -> StoredVoice:
    profile = ProfileData(
        id=voice,
        name=voice,
        priority=1,
        is_blocked=False,
        auto_learned=False,
        sample_count=len(samples),
        last_seen=None,
    )
    return StoredVoice(
        profile,
        _normalised(samples.mean(axis=0)),
        samples,
        np.zeros(len(samples), dtype=bool),
        np.full(len(samples), 3.0),
    )


def _top_mean(values: NDArray[np.float32], count: int) -> tuple[float, float]:
    top = np.sort(values)[-count:]
    return float(top.mean()), float(top.std()) + 1e-6


def evaluate(
    bank: VoiceBank,
    enrolled: Sequence[str],
    never_enrolled: Sequence[str],
    background: Vector,
    thresholds: Thresholds,
    *,
    short: bool = False,
) -> list[Trial]:
    """Enrol `enrolled` (three clips each), try every test clip and every never-enrolled clip
    (with `short`: the short commands of every synthetic voice instead)."""
    snapshot = StoreSnapshot(1, tuple(_stored(v, bank.enrol[v]) for v in enrolled))
    index = VoiceIndex.build(snapshot, background, thresholds)
    profiles = index.embeddings
    profile_cohorts = []
    for row in range(len(profiles)):
        cohort = np.concatenate(
            (background @ profiles[row], np.delete(profiles @ profiles[row], row))
        )
        profile_cohorts.append(_top_mean(cohort, AS_NORM_TOP))
    trials = []
    if short:
        attempts = [
            (v, v in enrolled, bank.short[v], bank.short_seconds[v])
            for v in (*enrolled, *never_enrolled)
            if v in bank.short
        ]
    else:
        attempts = [(v, True, bank.test[v], bank.test_seconds[v]) for v in enrolled]
        attempts += [
            (
                v,
                False,
                np.concatenate((bank.enrol[v], bank.test[v])),
                bank.enrol_seconds[v] + bank.test_seconds[v],
            )
            for v in never_enrolled
        ]
    for voice, genuine, embeddings, seconds in attempts:
        for embedding, speech_seconds in zip(embeddings, seconds, strict=True):
            decision = decide(index, embedding, thresholds, speech_seconds)
            best = decision.best
            assert best is not None
            margin = decision.margin if decision.margin is not None else 1.0
            slack = min(
                best.cosine - best.threshold,
                best.score - thresholds.score,
                margin - thresholds.margin,
            )
            row = int(np.argmax(profiles @ embedding))
            cohort = np.concatenate((background @ embedding, np.delete(profiles @ embedding, row)))
            mean_e, spread_e = _top_mean(cohort, AS_NORM_TOP)
            mean_p, spread_p = profile_cohorts[row]
            as_norm = 0.5 * ((best.cosine - mean_e) / spread_e + (best.cosine - mean_p) / spread_p)
            trials.append(
                Trial(
                    voice,
                    genuine,
                    best.profile["id"] == voice,
                    slack if best.ready else -1.0,
                    best.cosine,
                    as_norm,
                )
            )
    return trials


def rates(trials: Sequence[Trial], accept: Callable[[Trial], bool]) -> tuple[float, float]:
    """(false accept %, false reject %): strangers named as anyone; enrolled not named right."""
    genuine = [t for t in trials if t.genuine]
    strangers = [t for t in trials if not t.genuine]
    false_accept = sum(accept(t) for t in strangers) / len(strangers)
    false_reject = sum(not (accept(t) and t.correct) for t in genuine) / len(genuine)
    return 100 * false_accept, 100 * false_reject


def det_curve(
    trials: Sequence[Trial], score: Callable[[Trial], float], points: Sequence[float]
) -> list[dict[str, float]]:
    curve = []
    for point in points:
        false_accept, false_reject = rates(trials, lambda t, p=point: score(t) >= p)
        curve.append(
            {
                "threshold": round(float(point), 4),
                "false_accept_pct": round(false_accept, 2),
                "false_reject_pct": round(false_reject, 2),
            }
        )
    return curve


def equal_error_rate(curve: Sequence[dict[str, float]]) -> float:
    """Where false accepts and false rejects cross (the mean of the two at the closest point)."""
    closest = min(curve, key=lambda p: abs(p["false_accept_pct"] - p["false_reject_pct"]))
    return round((closest["false_accept_pct"] + closest["false_reject_pct"]) / 2, 2)


def random_split(
    bank: VoiceBank, pool: Sequence[str], seed: int, enrolled_count: int, stranger_count: int
) -> tuple[list[str], list[str], Vector]:
    """Distinct voices drawn at random (no two within DISTINCT), the rest as the cohort."""
    order = list(pool)
    random.Random(seed).shuffle(order)
    chosen: list[str] = []
    for voice in order:
        if all(float(bank.mean(voice) @ bank.mean(other)) < DISTINCT for other in chosen):
            chosen.append(voice)
        if len(chosen) == enrolled_count + stranger_count:
            break
    enrolled, strangers = chosen[:enrolled_count], chosen[enrolled_count:]
    test_means = np.stack([bank.mean(v) for v in chosen])
    cohort = [
        bank.mean(v)
        for v in pool
        if v not in chosen and float(np.max(test_means @ bank.mean(v))) < SAME_VOICE
    ]
    return enrolled, strangers, np.stack(cohort)
