"""WAV files in (POST /api/audio/file, `kiwi-hub feed`): any PCM WAV → 16 kHz mono s16."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

from kiwi_voice.common.audio import (
    ENGINE_RATE,
    PcmFormat,
    float_to_pcm16,
    pcm_to_float_mono,
    resample,
)
from kiwi_voice.common.errors import ServiceError as AudioFormatError

MAX_SECONDS = 300.0


class InvalidWav(ValueError):
    """The body is not a PCM WAV file Kiwi can use; the message says why."""


@dataclass(frozen=True)
class EngineAudio:
    pcm: bytes  # 16 kHz mono s16
    source_format: PcmFormat

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * ENGINE_RATE)


def read_wav(data: bytes) -> EngineAudio:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            fmt = PcmFormat(wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise InvalidWav(f"not a PCM WAV file: {err}") from err
    try:
        fmt.check()
        if fmt.seconds(len(frames)) > MAX_SECONDS:
            raise InvalidWav(f"longer than {MAX_SECONDS:g} s")
        frames = frames[: len(frames) - len(frames) % fmt.frame_bytes]
        samples = resample(pcm_to_float_mono(frames, fmt), fmt.rate, ENGINE_RATE)
    except AudioFormatError as err:
        raise InvalidWav(err.text) from err
    if samples.size == 0:
        raise InvalidWav("the file holds no audio")
    return EngineAudio(float_to_pcm16(samples), fmt)
