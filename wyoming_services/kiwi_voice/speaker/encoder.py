"""resemblyzer's VoiceEncoder: 16 kHz float audio in, a 256-d L2-normalised voice embedding out.

Loaded once per process. The first `preprocess_wav` / `embed_utterance` of a process
JIT-compiles librosa's numba kernels (~15 s cold, ~1-3 s from numba's on-disk cache), so
`warm_up` runs one full embedding at start and requests never pay for it. numba's cache needs a
writable `NUMBA_CACHE_DIR`, which `__main__` sets before anything imports librosa.

Audio is converted to 16 kHz mono float by the common converter before it gets here;
resemblyzer's own librosa resampling is not used.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MIN_SPEECH_SECONDS = 0.3  # after resemblyzer trims silence; less is not a voice sample
_SILENCE_RMS = 1e-4


class NoSpeech(ValueError):
    """The audio holds no (or too little) speech to describe a voice."""


def bundled_weights() -> Path | None:
    """resemblyzer's own `pretrained.pt`, shipped inside its wheel."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "pretrained.pt"
    return path if path.is_file() else None


class VoiceEncoder:
    """One loaded resemblyzer encoder, shared by all connections (inference is read-only)."""

    def __init__(self, weights: Path) -> None:
        import torch
        from resemblyzer import VoiceEncoder as ResemblyzerEncoder

        # Parallelism comes from the service's worker threads, not from torch's own pool.
        torch.set_num_threads(1)
        self.weights = weights
        self._encoder: Any = ResemblyzerEncoder(device="cpu", verbose=False, weights_fpath=weights)
        self._encoder.eval()

    def embed(self, samples: NDArray[np.float32]) -> tuple[NDArray[np.float32], float]:
        """Embedding of 16 kHz mono float audio, and the seconds of speech it was made from."""
        from resemblyzer import preprocess_wav

        if samples.size == 0 or float(np.sqrt(np.mean(samples**2))) < _SILENCE_RMS:
            raise NoSpeech("the audio is silent")
        speech = preprocess_wav(samples.astype(np.float32))
        seconds = len(speech) / SAMPLE_RATE
        if seconds < MIN_SPEECH_SECONDS:
            raise NoSpeech(f"{seconds:.2f} s of speech; at least {MIN_SPEECH_SECONDS} s needed")
        embedding = self._encoder.embed_utterance(speech)
        return np.asarray(embedding, dtype=np.float32), seconds

    def warm_up(self) -> float:
        """Run one embedding of 3 s of synthetic voiced audio; returns the seconds it took."""
        started = time.perf_counter()
        t = np.arange(3 * SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
        # A pitch-modulated harmonic tone: voiced enough for webrtcvad to keep it.
        pitch = 140 + 30 * np.sin(2 * np.pi * 3 * t)
        phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
        tone = sum(np.sin(k * phase) / k for k in range(1, 8))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
        samples = (0.2 * tone * envelope).astype(np.float32)
        try:
            self.embed(samples)
        except NoSpeech:
            # Still compiled every kernel up to the VAD; embed the raw tone to finish the rest.
            self._encoder.embed_utterance(samples)
        elapsed = time.perf_counter() - started
        _LOGGER.info("Voice encoder warm in %.1f s", elapsed)
        return elapsed
