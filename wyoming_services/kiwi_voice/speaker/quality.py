"""Is this audio good enough to describe a voice? Checks with a coded reason when it is not.

Identification takes any utterance with a little speech in it; enrolment asks for more,
because a profile built from a poor sample fails its owner for as long as it exists:

| problem        | identify                         | enrol (each clip)                       |
| -------------- | -------------------------------- | --------------------------------------- |
| silent         | peak below -60 dBFS: `no_audio`  | same                                    |
| too short      | < 0.5 s of speech after VAD      | < 1.5 s of speech: `audio_too_short`    |
| too quiet      | (volume is normalised)           | speech RMS below -45 dBFS: `too_quiet`  |
| clipped        | >= 1 % of samples at full scale  | >= 0.1 % of samples at full scale       |

Speech is what the front end keeps after its VAD trims silences; its level is measured before
the front end's volume normalisation, because that is what the microphone gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kiwi_voice.common.errors import ErrorCode, ServiceError

SILENCE_PEAK_DBFS = -60.0
MIN_SPEECH_SECONDS = 0.5
MIN_ENROL_SPEECH_SECONDS = 1.5
MIN_ENROL_RMS_DBFS = -45.0
FULL_SCALE = 0.99  # a sample this close to full scale counts as clipped
MAX_CLIPPED_FRACTION_IDENTIFY = 0.01
MAX_CLIPPED_FRACTION_ENROL = 0.001


@dataclass(frozen=True)
class SpeechQuality:
    """Measurements of one utterance, before and after the front end's silence trimming."""

    seconds: float  # speech kept after VAD
    rms_dbfs: float  # of the kept speech, before volume normalisation
    clipped_fraction: float  # of all samples


def dbfs(value: float) -> float:
    return 20 * float(np.log10(max(value, 1e-10)))


def speech_level_problem(samples: NDArray[np.float32]) -> str | None:
    """Why `samples` cannot hold speech at all (empty or silent), or None."""
    if samples.size == 0:
        return "the audio is empty"
    peak = dbfs(float(np.max(np.abs(samples))))
    if peak < SILENCE_PEAK_DBFS:
        return f"the audio is silent (peak {peak:.0f} dBFS)"
    return None


def clipped_fraction(samples: NDArray[np.float32]) -> float:
    return float(np.count_nonzero(np.abs(samples) >= FULL_SCALE)) / max(1, samples.size)


def check_identify(quality: SpeechQuality) -> None:
    if quality.seconds < MIN_SPEECH_SECONDS:
        raise ServiceError(
            ErrorCode.AUDIO_TOO_SHORT,
            f"{quality.seconds:.2f} s of speech; at least {MIN_SPEECH_SECONDS} s needed",
        )
    if quality.clipped_fraction >= MAX_CLIPPED_FRACTION_IDENTIFY:
        raise _clipped(quality, MAX_CLIPPED_FRACTION_IDENTIFY)


def check_enrol(quality: SpeechQuality) -> None:
    if quality.seconds < MIN_ENROL_SPEECH_SECONDS:
        raise ServiceError(
            ErrorCode.AUDIO_TOO_SHORT,
            f"{quality.seconds:.1f} s of speech in this sample; enrolment needs at least "
            f"{MIN_ENROL_SPEECH_SECONDS} s per sample (a sentence or two)",
        )
    if quality.rms_dbfs < MIN_ENROL_RMS_DBFS:
        raise ServiceError(
            ErrorCode.AUDIO_TOO_QUIET,
            f"speech level {quality.rms_dbfs:.0f} dBFS is too quiet to enrol (at least "
            f"{MIN_ENROL_RMS_DBFS:.0f} dBFS): speak closer to the microphone or raise its gain",
        )
    if quality.clipped_fraction >= MAX_CLIPPED_FRACTION_ENROL:
        raise _clipped(quality, MAX_CLIPPED_FRACTION_ENROL)


def _clipped(quality: SpeechQuality, limit: float) -> ServiceError:
    return ServiceError(
        ErrorCode.AUDIO_CLIPPED,
        f"{100 * quality.clipped_fraction:.2f} % of the samples are at full scale (limit "
        f"{100 * limit:g} %): the recording is clipped; lower the microphone's gain",
    )
