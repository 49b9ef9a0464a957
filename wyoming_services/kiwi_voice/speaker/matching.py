"""Whose voice is this? An open-set decision: a profile is named only on strong evidence.

For an utterance's embedding `e` and each profile `p` (the normalised mean of its samples):

1. `cosine(e, p)`; the best profile is the closest one.
2. Its **normalised score**: `cosine - (mu_e + mu_p) / 2`, where `mu_e` is the mean of the 3
   highest similarities between `e` and the cohort, and `mu_p` the same for `p`. The cohort is
   every *other* profile plus Kiwi's background voices (`cohort.py`): voices known to be
   someone else. This is adaptive score normalisation (AS-norm) with the top-3 cohort mean
   and without dividing by the cohort's spread: on resemblyzer's embeddings the spread of a
   few close voices is too noisy a divisor (measured in docs/services.md). A voice closer to
   voices Kiwi knows are not `p` than to `p` scores below 0.
3. The voice is `p`'s when, all at once:
   - `p` has enough enrolment speech (`ready`: 3 samples, or 15 s in one clip);
   - `cosine >= threshold_p`, the profile's own threshold calibrated at enrolment from how
     closely its samples agree (`Thresholds.profile_threshold`), lowered for an utterance with
     less than 3 s of speech (`Thresholds.for_duration`);
   - the normalised score `>= score threshold` (default 0);
   - `cosine` beats the second-best profile by the margin (default 0.03).
   Otherwise the voice is unknown (a guest), with the reason, and the best candidate is still
   reported so that a caller can see how close it came.
4. Kiwi's own voice (the `self` profile) needs `cosine >= self threshold` (0.85); when `self`
   is the closest but below that, the voice is unknown rather than given to the next-closest
   person, so an echo is never taken for the owner.

Auto-learning (`adaptation_problem`): a sample Kiwi adds to a profile by itself must be
identified as that profile by the rule above (while a guest is still being learned: be closest
to it by the margin) *and* be within `ADAPT_THRESHOLD` of the profile's anchor: the mean of its
enrolment samples, which learned samples never move (0.80 for a guest Kiwi is learning, whose
anchor is its first sample). A chain of ever-closer impostor samples
therefore cannot walk a profile towards another voice, and the calibrated threshold comes from
the enrolment only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from .protocol import SELF_PROFILE_ID, ProfileData
from .settings import (
    ADAPT_THRESHOLD,
    ADAPT_THRESHOLD_ONE_SAMPLE,
    COHORT_TOP,
    READY_SAMPLES,
    Thresholds,
)
from .store import Embedding, StoredVoice, StoreSnapshot

__all__ = [
    "Decision",
    "Reason",
    "Thresholds",
    "VoiceIndex",
    "adaptation_problem",
    "decide",
    "enrolment_samples",
]


class Reason(StrEnum):
    MATCH = "match"  # named: every test passed
    SELF = "self"  # Kiwi's own voice (echo)
    NO_PROFILES = "no_profiles"
    INCOMPLETE_PROFILE = "incomplete_profile"  # closest profile lacks enrolment speech
    BELOW_THRESHOLD = "below_threshold"  # cosine under the profile's threshold
    CLOSE_TO_OTHERS = "close_to_others"  # normalised score too low
    AMBIGUOUS = "ambiguous"  # two profiles too close to call


@dataclass(frozen=True)
class Candidate:
    """The closest profile to a voice, whatever the decision."""

    profile: ProfileData
    cosine: float
    score: float  # normalised
    threshold: float  # the profile's cosine threshold
    ready: bool


@dataclass(frozen=True)
class Decision:
    reason: Reason
    best: Candidate | None
    margin: float | None  # cosine of the best minus the second best; None with one profile

    @property
    def profile(self) -> ProfileData | None:
        """The profile the voice is identified as; None for an unknown voice."""
        if self.reason in (Reason.MATCH, Reason.SELF) and self.best is not None:
            return self.best.profile
        return None

    @property
    def is_self(self) -> bool:
        return self.reason is Reason.SELF

    @property
    def confidence(self) -> float:
        return self.best.cosine if self.best else 0.0


def _normalised(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector


def _top_mean(similarities: NDArray[np.float32]) -> float:
    if similarities.size == 0:
        return 0.0
    count = min(COHORT_TOP, similarities.size)
    return float(np.mean(np.partition(similarities, -count)[-count:]))


def enrolment_samples(voice: StoredVoice) -> NDArray[np.float32]:
    """The samples that make a profile ready and calibrate its threshold.

    An enrolled profile's are its enrolment samples (not what Kiwi learned into it later). A
    profile Kiwi started by itself (a guest it is learning) has no other: all of its samples,
    each admitted by `adaptation_problem`, count.
    """
    explicit = voice.samples[~voice.auto_learned]
    if voice.profile["auto_learned"] or not len(explicit):
        return voice.samples
    return explicit


def _anchor_samples(voice: StoredVoice) -> NDArray[np.float32]:
    """What learned samples are held to: the enrolment samples, or a learned voice's first."""
    explicit = voice.samples[~voice.auto_learned]
    return explicit if len(explicit) else voice.samples[:1]


def _anchor(voice: StoredVoice) -> NDArray[np.float32]:
    return _normalised(_anchor_samples(voice).mean(axis=0))


def leave_one_out_min(samples: NDArray[np.float32]) -> float | None:
    """The lowest similarity of one sample to the mean of the others (None for one sample)."""
    if len(samples) < 2:
        return None
    total = samples.sum(axis=0)
    return min(float(sample @ _normalised(total - sample)) for sample in samples.astype(np.float32))


@dataclass(frozen=True)
class VoiceIndex:
    """Profiles and cohort as matrices, with every per-profile number the decision needs."""

    version: int
    voices: tuple[StoredVoice, ...]
    embeddings: NDArray[np.float32]  # (n, 256)
    anchors: NDArray[np.float32]  # (n, 256): what learned samples are held to (`_anchor`)
    anchor_sizes: NDArray[np.int64]  # (n,) samples in each anchor
    thresholds: NDArray[np.float64]  # (n,) calibrated cosine thresholds
    ready: NDArray[np.bool_]  # (n,)
    cohort_means: NDArray[np.float64]  # (n,) mu_p
    background: NDArray[np.float32] = field(repr=False)  # (m, 256)

    @classmethod
    def build(
        cls, snapshot: StoreSnapshot, background: NDArray[np.float32], thresholds: Thresholds
    ) -> VoiceIndex:
        voices = snapshot.voices
        size = len(voices)
        embeddings = (
            np.stack([v.embedding for v in voices]).astype(np.float32)
            if voices
            else np.empty((0, background.shape[1] if background.size else 256), np.float32)
        )
        anchors = np.array(embeddings)
        anchor_sizes = np.array([len(_anchor_samples(v)) for v in voices], dtype=np.int64)
        limits = np.empty(size)
        ready = np.zeros(size, dtype=bool)
        for index, voice in enumerate(voices):
            enrolment = enrolment_samples(voice)
            anchors[index] = _anchor(voice)
            limits[index] = thresholds.profile_threshold(leave_one_out_min(enrolment))
            ready[index] = voice.profile["id"] == SELF_PROFILE_ID or len(enrolment) >= READY_SAMPLES
        between = embeddings @ embeddings.T
        against_background = embeddings @ background.T
        cohort_means = np.array(
            [
                _top_mean(np.concatenate((against_background[i], np.delete(between[i], i))))
                for i in range(size)
            ]
        )
        return cls(
            snapshot.version,
            voices,
            embeddings,
            anchors,
            anchor_sizes,
            limits,
            ready,
            cohort_means,
            background,
        )

    def position(self, profile_id: str) -> int | None:
        for index, voice in enumerate(self.voices):
            if voice.profile["id"] == profile_id:
                return index
        return None


def _scores(index: VoiceIndex, embedding: Embedding) -> tuple[NDArray[np.float32], int, float]:
    """Cosines to every profile, the best one's position and its normalised score."""
    cosines = index.embeddings @ embedding
    best = int(np.argmax(cosines))
    cohort = np.concatenate((index.background @ embedding, np.delete(cosines, best)))
    score = float(cosines[best]) - 0.5 * (_top_mean(cohort) + float(index.cohort_means[best]))
    return cosines, best, score


def decide(
    index: VoiceIndex,
    embedding: Embedding,
    thresholds: Thresholds,
    speech_seconds: float | None = None,
) -> Decision:
    """The decision for one utterance (`speech_seconds` of speech; None counts as long)."""
    if not index.voices:
        return Decision(Reason.NO_PROFILES, None, None)
    cosines, best, score = _scores(index, embedding.astype(np.float32))
    cosine = float(cosines[best])
    margin = cosine - float(np.max(np.delete(cosines, best))) if len(cosines) > 1 else None
    candidate = Candidate(
        profile=index.voices[best].profile,
        cosine=cosine,
        score=score,
        threshold=(
            thresholds.self_echo
            if index.voices[best].profile["id"] == SELF_PROFILE_ID
            else thresholds.for_duration(float(index.thresholds[best]), speech_seconds)
        ),
        ready=bool(index.ready[best]),
    )
    if candidate.profile["id"] == SELF_PROFILE_ID:
        reason = Reason.SELF if cosine >= thresholds.self_echo else Reason.BELOW_THRESHOLD
    else:
        reason = _person_reason(candidate, margin, thresholds)
    return Decision(reason, candidate, margin)


def _person_reason(candidate: Candidate, margin: float | None, thresholds: Thresholds) -> Reason:
    if not candidate.ready:
        return Reason.INCOMPLETE_PROFILE
    if candidate.cosine < candidate.threshold:
        return Reason.BELOW_THRESHOLD
    if candidate.score < thresholds.score:
        return Reason.CLOSE_TO_OTHERS
    if margin is not None and margin < thresholds.margin:
        return Reason.AMBIGUOUS
    return Reason.MATCH


def adaptation_problem(
    index: VoiceIndex,
    embedding: Embedding,
    profile_id: str,
    thresholds: Thresholds,
    speech_seconds: float | None = None,
) -> str | None:
    """Why Kiwi must not add this sample to `profile_id` by itself, or None when it may."""
    position = index.position(profile_id)
    if position is None:
        return None  # no voice yet: the sample starts the profile
    if profile_id == SELF_PROFILE_ID:
        return "Kiwi's own voice is only enrolled on purpose"
    decision = decide(index, embedding, thresholds, speech_seconds)
    best = decision.best
    assert best is not None
    if best.profile["id"] != profile_id:
        return f"the voice is closer to another profile ({best.profile['id']})"
    to_anchor = float(index.anchors[position] @ embedding)
    floor = ADAPT_THRESHOLD if index.anchor_sizes[position] > 1 else ADAPT_THRESHOLD_ONE_SAMPLE
    if to_anchor < floor:
        return f"similarity {to_anchor:.3f} to the profile's enrolment is under {floor}"
    if best.ready:
        if decision.reason is not Reason.MATCH:
            return f"the voice is not clearly this profile's ({decision.reason})"
        return None
    # A guest still being learned: close to it, and clearly closer to it than to anyone else
    # in the household. (How close it sits to background voices does not matter here: they
    # are nobody's, and a guest may well sound like one of them.)
    if best.cosine < floor:
        return f"similarity {best.cosine:.3f} to the profile is under {floor}"
    if decision.margin is not None and decision.margin < thresholds.margin:
        return f"the voice is as close to another profile ({Reason.AMBIGUOUS})"
    return None
