"""Which profile a voice embedding belongs to: cosine similarity against every profile.

Defaults come from espeak-ng variants and the pocketsphinx human recordings (see
docs/services.md): a voice against its own 2-sample profile scores 0.95-0.97 on espeak, a single
same-voice pair at least 0.83; different voices that espeak can tell apart score 0.5-0.75
(human speakers cross at ~0.72, pair EER 3.5 %). Hence `identify` 0.75.

Kiwi's own voice (the `self` profile) must match more closely, 0.85, before a sound is dismissed
as Kiwi's echo: a user whose voice resembles the TTS voice must not be ignored. And when the
closest profile is `self` but below that, the voice is reported unknown rather than given to
the next-closest person, so that an echo is never taken for the owner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .protocol import SELF_PROFILE_ID, ProfileData
from .store import Embedding, ProfileMatrix

DEFAULT_IDENTIFY_THRESHOLD = 0.75
DEFAULT_SELF_THRESHOLD = 0.85


@dataclass(frozen=True)
class Thresholds:
    identify: float = DEFAULT_IDENTIFY_THRESHOLD
    self_echo: float = DEFAULT_SELF_THRESHOLD

    def __post_init__(self) -> None:
        for name, value in (("identify", self.identify), ("self", self.self_echo)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} threshold must be between 0 and 1, not {value}")


@dataclass(frozen=True)
class Match:
    profile: ProfileData | None  # None: unknown voice
    confidence: float  # cosine similarity to the matched profile, or the best one seen
    is_self: bool = False


def best_match(embedding: Embedding, profiles: ProfileMatrix, thresholds: Thresholds) -> Match:
    if not profiles.profiles:
        return Match(None, 0.0)
    similarities = profiles.embeddings @ embedding.astype(np.float32)
    best = int(np.argmax(similarities))
    confidence = float(similarities[best])
    profile = profiles.profiles[best]
    if profile["id"] == SELF_PROFILE_ID:
        if confidence >= thresholds.self_echo:
            return Match(profile, confidence, is_self=True)
        return Match(None, confidence)
    if confidence >= thresholds.identify:
        return Match(profile, confidence)
    return Match(None, confidence)
