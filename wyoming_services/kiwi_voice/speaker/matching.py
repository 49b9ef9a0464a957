"""Which profile a voice embedding belongs to: cosine similarity against every profile.

A voice is a profile's when its cosine similarity reaches the identify threshold (default 0.75,
see `settings.py`). Kiwi's own voice (the `self` profile) must reach the higher self threshold
(0.85) before a sound is dismissed as Kiwi's echo. When the closest profile is `self` but below
that, the voice is reported unknown rather than given to the next-closest person, so that an
echo is never taken for the owner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .protocol import SELF_PROFILE_ID, ProfileData
from .settings import Thresholds
from .store import Embedding, ProfileMatrix

__all__ = ["Match", "Thresholds", "best_match"]


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
