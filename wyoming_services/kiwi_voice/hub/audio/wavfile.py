"""WAV files in (POST /api/audio/file, `kiwi-hub feed`/`talk`): PCM WAV → 16 kHz mono s16.

A refused file raises `InvalidWav` with a code a program can branch on and the HTTP status
that fits: `invalid_wav` (not a WAV at all), `wav_not_pcm` (a WAV of float, A-law, ADPCM...),
`wav_empty` (no samples) and `wav_too_long` (longer than MAX_SECONDS). The length is judged on
the samples actually present before anything is converted, so a long file costs no work.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

from .convert import MAX_CHANNELS, PcmConverter

ENGINE_RATE = 16_000
MAX_SECONDS = 300.0
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0003: "32-bit float",
    0x0006: "A-law",
    0x0007: "µ-law",
    0x0011: "IMA ADPCM",
    0x0055: "MP3",
}


class InvalidWav(ValueError):
    """The body is not a PCM WAV file Kiwi can use; the message says why."""

    def __init__(self, message: str, code: str = "invalid_wav", status: int = 415) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class EngineAudio:
    pcm: bytes  # 16 kHz mono s16
    source_rate: int
    source_width: int
    source_channels: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * ENGINE_RATE)


def _format_tag(data: bytes) -> int | None:
    """The `fmt ` chunk's format tag (the sub-format's for WAVE_FORMAT_EXTENSIBLE); None when
    the RIFF chunks do not say."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt " and len(body) >= 2:
            tag = int(struct.unpack_from("<H", body)[0])
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                return int(struct.unpack_from("<H", body, 24)[0])  # the GUID's first two bytes
            return tag
        offset += 8 + size + (size & 1)  # chunks are word-aligned
    return None


def read_wav(data: bytes) -> EngineAudio:
    tag = _format_tag(data)
    if tag is not None and tag != WAVE_FORMAT_PCM:
        kind = _FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
        raise InvalidWav(
            f"the WAV holds {kind} audio: send integer PCM (e.g. `sox in.wav -e signed-integer "
            "-b 16 out.wav`)",
            "wav_not_pcm",
        )
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
    seconds = len(frames) / (rate * width * channels)
    if seconds > MAX_SECONDS:
        raise InvalidWav(
            f"the WAV is {seconds:.0f} s long; at most {MAX_SECONDS:g} s is accepted",
            "wav_too_long",
            413,
        )
    pcm = PcmConverter(ENGINE_RATE).convert(frames, rate, width, channels)
    if not pcm:
        raise InvalidWav("the WAV holds no audio samples", "wav_empty", 422)
    return EngineAudio(pcm, rate, width, channels)
