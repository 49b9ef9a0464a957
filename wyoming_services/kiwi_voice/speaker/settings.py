"""The speaker service's decision rule and its tunables, importable without the numeric stack.

`quiet_math_threads` must run before numpy is first imported: it is why this module imports
neither numpy nor onnxruntime.

The defaults come from the evaluation in docs/services.md ("Speaker identification: the
decision rule"): the DET of 40 random splits of 115 voices (espeak-ng variants, festival's
recorded voices, piper joe, the pocketsphinx human readers; 13 enrolled + 9 never enrolled per
split), at the point where false accepts and false rejects are both ~0.5 %. Cosines here are
resemblyzer's: embeddings are non-negative, so two unrelated voices already score ~0.6-0.8,
one voice against its own profile ~0.85-0.97.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# A profile's own threshold is calibrated at enrolment (leave-one-out similarity of its
# samples minus CALIBRATION_SLACK), then kept within [identify floor, THRESHOLD_CEILING].
DEFAULT_IDENTIFY_THRESHOLD = 0.81
THRESHOLD_CEILING = 0.91
CALIBRATION_SLACK = 0.06
# A short utterance is a noisier sample of a voice: its cosine to the right profile is lower,
# and so is a stranger's. Below SHORT_SECONDS of speech the cosine threshold drops by
# SHORT_RELAX_PER_SECOND per missing second (at most SHORT_RELAX_MAX), which keeps a short
# stranger as unlikely to be named as a long one (~0.6 % each in the DET evaluation) while a
# 1.4 s command is named 80 % of the time instead of 40 %.
SHORT_SECONDS = 3.0
SHORT_RELAX_PER_SECOND = 0.05
SHORT_RELAX_MAX = 0.08
# The normalised score: cosine minus the mean of the closest cohort similarities on both sides
# (adaptive score normalisation, mean only; see matching.py). Below this, the voice is closer to
# voices Kiwi knows are someone else than to the profile.
DEFAULT_SCORE_THRESHOLD = 0.0
COHORT_TOP = 3  # cohort similarities averaged on each side
# The best profile must beat the second best by this much cosine.
DEFAULT_MARGIN = 0.03
# Kiwi's own voice must match more closely before a sound is dismissed as its echo, so that a
# user whose voice resembles the TTS voice is not ignored.
DEFAULT_SELF_THRESHOLD = 0.85
# Enough enrolment speech before a profile is named: this many samples (a clip with at least
# 2 x SEGMENT_SECONDS of speech is split into samples of SEGMENT_SECONDS or more, so 15 s of
# speech in one clip is three samples).
READY_SAMPLES = 3
SEGMENT_SECONDS = 5.0
# Auto-learning: a sample Kiwi adds by itself must be this close to the profile's enrolment
# (its anchor, which auto-learned samples never move), besides being identified as it. A guest
# Kiwi is learning has only its first sample as anchor; one clip against one clip of the same
# voice scores lower (~0.8-0.95) than against a mean of several, so its floor is lower.
ADAPT_THRESHOLD = 0.85
ADAPT_THRESHOLD_ONE_SAMPLE = 0.80

_MATH_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Thresholds:
    identify: float = DEFAULT_IDENTIFY_THRESHOLD  # floor of every profile's cosine threshold
    self_echo: float = DEFAULT_SELF_THRESHOLD
    score: float = DEFAULT_SCORE_THRESHOLD
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        for name, value in (("identify", self.identify), ("self", self.self_echo)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} threshold must be between 0 and 1, not {value}")
        if not -1.0 < self.score < 1.0:
            raise ValueError(f"score threshold must be between -1 and 1, not {self.score}")
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"margin must be between 0 and 1, not {self.margin}")

    def profile_threshold(self, leave_one_out_min: float | None) -> float:
        """A profile's cosine threshold from its enrolment samples' leave-one-out similarity.

        A profile whose samples agree closely (synthetic voices: ~0.93-0.97) gets a strict
        threshold, so a similar voice is not taken for it; one whose samples vary (people
        recorded on different days: ~0.83-0.95) a looser one, so its owner is still named.
        """
        ceiling = max(self.identify, THRESHOLD_CEILING)
        if leave_one_out_min is None:
            return ceiling
        return min(ceiling, max(self.identify, leave_one_out_min - CALIBRATION_SLACK))

    @staticmethod
    def for_duration(threshold: float, speech_seconds: float | None) -> float:
        """`threshold` for an utterance of `speech_seconds` of speech (None: a long one)."""
        if speech_seconds is None:
            return threshold
        missing = max(0.0, SHORT_SECONDS - speech_seconds)
        return threshold - min(SHORT_RELAX_MAX, SHORT_RELAX_PER_SECOND * missing)

    def as_dict(self) -> dict[str, float]:
        return {
            "identify": self.identify,
            "self": self.self_echo,
            "score": self.score,
            "margin": self.margin,
        }


def quiet_math_threads() -> None:
    """One BLAS / OpenMP thread per caller (unless the environment says otherwise).

    Their worker pools busy-wait between calls: with them the service spent ~6x the CPU of the
    embedding itself per request. Parallelism comes from the service's `--workers` threads
    instead. Only effective before numpy is imported.
    """
    for variable in _MATH_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
