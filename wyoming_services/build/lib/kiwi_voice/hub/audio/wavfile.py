"""WAV files in (POST /api/audio/file, `kiwi-hub feed`): PCM WAV → 16 kHz mono s16."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

from .convert import MAX_CHANNELS, PcmConverter

ENGINE_RATE = 16_000
MAX_SECONDS = 300.0


class InvalidWav(ValueError):
    """The body is not a PCM WAV file Kiwi can use; the message says why."""


@dataclass(frozen=True)
class EngineAudio:
    pcm: bytes  # 16 kHz mono s16
    source_rate: int
    source_width: int
    source_channels: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * ENGINE_RATE)


def read_wav(data: bytes) -> EngineAudio:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise InvalidWav(f"not a PCM WAV file: {err}") from err
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidWav(f"{channels} channels: send mono or stereo")
    if not 1 <= width <= 4 or not 1_000 <= rate <= 384_000:
        raise InvalidWav(f"unsupported format: {rate} Hz, {8 * width}-bit")
    if len(frames) / (rate * width * channels) > MAX_SECONDS:
        raise InvalidWav(f"longer than {MAX_SECONDS:g} s")
    pcm = PcmConverter(ENGINE_RATE).convert(frames, rate, width, channels)
    if not pcm:
        raise InvalidWav("the file holds no audio")
    return EngineAudio(pcm, rate, width, channels)
