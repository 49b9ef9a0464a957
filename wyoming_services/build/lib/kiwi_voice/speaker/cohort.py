"""Kiwi's background cohort: embeddings of voices that are nobody in the household.

Score normalisation (`matching.py`) compares a voice with voices known to be someone else:
the other profiles, and this background set. It ships with Kiwi as a small file
(`data/background_cohort.npz`, ~70 KB: one 256-d embedding per voice, the voice names, and the
embedding of the encoder's probe signal). `scripts/build_speaker_cohort.py` makes it
reproducibly from espeak-ng variants and Debian festival voices (see that script for which, and
docs/services.md for why it is shipped rather than built at install or start: the add-on image
has neither synthesiser, and building it takes ~30 s, which a cold start cannot spend).

The embeddings are only meaningful for the encoder that made them: at start the service embeds
the probe signal and uses the cohort only when that matches the stored probe. Otherwise (other
weights) it normalises against the other profiles alone and says so in `describe`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_LOGGER = logging.getLogger(__name__)

COHORT_PATH = Path(__file__).with_name("data") / "background_cohort.npz"
PROBE_AGREEMENT = 0.999  # cosine between this encoder's probe embedding and the stored one
EMBEDDING_SIZE = 256


@dataclass(frozen=True)
class BackgroundCohort:
    embeddings: NDArray[np.float32]  # (n, 256); empty when not in use
    voices: tuple[str, ...]
    problem: str | None = None  # why it is not in use

    @classmethod
    def unused(cls, problem: str) -> BackgroundCohort:
        return cls(np.empty((0, EMBEDDING_SIZE), dtype=np.float32), (), problem)


def load_background(probe: NDArray[np.float32], path: Path = COHORT_PATH) -> BackgroundCohort:
    """The shipped cohort, if it was made with the encoder whose probe embedding is `probe`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            embeddings = np.asarray(data["embeddings"], dtype=np.float32)
            voices = tuple(str(v) for v in data["voices"])
            stored_probe = np.asarray(data["probe"], dtype=np.float32)
    except (OSError, KeyError, ValueError) as err:
        return BackgroundCohort.unused(f"background cohort {path} unreadable: {err}")
    if embeddings.ndim != 2 or embeddings.shape[1] != EMBEDDING_SIZE:
        return BackgroundCohort.unused(f"background cohort has shape {embeddings.shape}")
    agreement = float(stored_probe @ probe)
    if agreement < PROBE_AGREEMENT:
        return BackgroundCohort.unused(
            f"background cohort was made with other encoder weights (probe cosine "
            f"{agreement:.4f}); normalising against the profiles only"
        )
    _LOGGER.info("Background cohort: %d voices", len(voices))
    return BackgroundCohort(embeddings, voices)
