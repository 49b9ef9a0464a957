"""The speaker service's tunables, importable without the numeric stack.

`quiet_math_threads` must run before numpy or torch is first imported: it is why this module
imports neither.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Defaults from espeak-ng variants and the pocketsphinx human recordings (docs/services.md):
# a voice against its own 2-sample profile scores 0.95-0.97 on espeak, a single same-voice pair
# at least 0.83; voices espeak tells apart score 0.5-0.75 (humans cross at ~0.72).
DEFAULT_IDENTIFY_THRESHOLD = 0.75
# Kiwi's own voice must match more closely before a sound is dismissed as its echo, so that a
# user whose voice resembles the TTS voice is not ignored.
DEFAULT_SELF_THRESHOLD = 0.85

_MATH_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Thresholds:
    identify: float = DEFAULT_IDENTIFY_THRESHOLD
    self_echo: float = DEFAULT_SELF_THRESHOLD

    def __post_init__(self) -> None:
        for name, value in (("identify", self.identify), ("self", self.self_echo)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} threshold must be between 0 and 1, not {value}")


def quiet_math_threads() -> None:
    """One BLAS / OpenMP thread per caller (unless the environment says otherwise).

    Their worker pools busy-wait between calls: with them the service spent ~6x the CPU of the
    embedding itself per request (190 ms instead of 30 ms per 3 s clip). Parallelism comes from
    the service's `--workers` threads instead. Only effective before numpy/torch are imported.
    """
    for variable in _MATH_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
