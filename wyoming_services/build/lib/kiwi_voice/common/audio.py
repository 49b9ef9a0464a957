"""PCM audio as Wyoming carries it: format checks, conversion to mono float / 16 kHz s16.

Conversion relies on libraries, not hand-written DSP: numpy for sample layout and channel
mixing, scipy's polyphase `resample_poly` for whole utterances, and wyoming's stateful
`AudioChunkConverter` (audioop.ratecv) for chunk-by-chunk streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import Any

import numpy as np
from numpy.typing import NDArray
from wyoming.audio import AudioChunk, AudioChunkConverter

from .errors import ErrorCode, ServiceError

try:  # the standard library's until Python 3.13, then wyoming's pure-Python port
    import audioop
except ImportError:  # pragma: no cover - Python 3.13+
    from wyoming import pyaudioop as audioop  # type: ignore[no-redef,unused-ignore]

FloatAudio = NDArray[np.float32]

SUPPORTED_WIDTHS = (1, 2, 3, 4)  # bytes per sample: u8, s16, s24, s32
MIN_RATE = 1_000
MAX_RATE = 384_000
MAX_CHANNELS = 32
ENGINE_RATE = 16_000  # what whisper, openwakeword and resemblyzer expect


@dataclass(frozen=True)
class PcmFormat:
    """Sample rate (Hz), width (bytes per sample) and channel count of interleaved PCM."""

    rate: int
    width: int
    channels: int

    @classmethod
    def from_event_data(cls, data: dict[str, Any]) -> PcmFormat:
        """Read and check the format fields of an audio-start or audio-chunk event."""
        try:
            fmt = cls(
                rate=int(data["rate"]), width=int(data["width"]), channels=int(data["channels"])
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ServiceError(
                ErrorCode.BAD_AUDIO, f"audio event needs integer rate, width and channels: {err}"
            ) from err
        fmt.check()
        return fmt

    def check(self) -> None:
        """Raise `bad_audio` unless this is a format the services can convert."""
        if self.width not in SUPPORTED_WIDTHS:
            raise ServiceError(
                ErrorCode.BAD_AUDIO,
                f"unsupported sample width {self.width} bytes (supported: 1, 2, 3, 4)",
            )
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise ServiceError(
                ErrorCode.BAD_AUDIO, f"unsupported channel count {self.channels} (1-{MAX_CHANNELS})"
            )
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise ServiceError(
                ErrorCode.BAD_AUDIO,
                f"unsupported sample rate {self.rate} Hz ({MIN_RATE}-{MAX_RATE})",
            )

    @property
    def frame_bytes(self) -> int:
        """Bytes in one sample frame (one sample for every channel)."""
        return self.width * self.channels

    def check_payload(self, audio: bytes) -> None:
        """Raise `bad_audio` when a payload would tear a sample frame in half."""
        if len(audio) % self.frame_bytes:
            raise ServiceError(
                ErrorCode.BAD_AUDIO,
                f"audio payload of {len(audio)} bytes is not a whole number of "
                f"{self.frame_bytes}-byte frames ({self.width} bytes x {self.channels} channels)",
            )

    def seconds(self, byte_count: int) -> float:
        return byte_count / (self.frame_bytes * self.rate)


S16_MONO_16K = PcmFormat(rate=ENGINE_RATE, width=2, channels=1)


def pcm_to_float_mono(audio: bytes, fmt: PcmFormat) -> FloatAudio:
    """Interleaved PCM of any supported width/channels to mono float32 in [-1, 1]."""
    fmt.check_payload(audio)
    width = fmt.width
    if width == 3:
        # numpy has no 24-bit integer; audioop widens to 32-bit, keeping the value scale.
        audio = audioop.lin2lin(audio, 3, 4)
        width = 4
    if width == 1:
        # 8-bit WAV/Wyoming PCM is unsigned with 128 as silence.
        samples = (np.frombuffer(audio, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        dtype, full_scale = ("<i2", 32768.0) if width == 2 else ("<i4", 2147483648.0)
        samples = np.frombuffer(audio, dtype=dtype).astype(np.float32) / full_scale
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1, dtype=np.float32)
    return samples.astype(np.float32, copy=False)


def resample(samples: FloatAudio, from_rate: int, to_rate: int) -> FloatAudio:
    """Polyphase resampling of a whole signal (scipy), exact for integer rate ratios."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    # scipy.signal takes a second or more to import: only services that resample pay it,
    # once, in the worker that first needs it, not every service at start.
    from scipy.signal import resample_poly

    divisor = gcd(from_rate, to_rate)
    resampled = resample_poly(samples, to_rate // divisor, from_rate // divisor)
    return np.asarray(resampled, dtype=np.float32)


def float_to_pcm16(samples: FloatAudio) -> bytes:
    """Mono float in [-1, 1] to little-endian s16 bytes (clipped)."""
    clipped = np.clip(samples, -1.0, 1.0) * 32767.0
    return clipped.astype("<i2").tobytes()


@dataclass
class Utterance:
    """The audio between one audio-start and audio-stop, bounded in length.

    Chunks must keep the format announced by audio-start; the buffer converts once at
    the end, so whole-signal resampling has no chunk-boundary artefacts.
    """

    fmt: PcmFormat
    max_seconds: float
    _parts: list[bytes] = field(default_factory=list)
    _byte_count: int = 0

    def add(self, chunk: AudioChunk) -> None:
        chunk_fmt = PcmFormat(chunk.rate, chunk.width, chunk.channels)
        if chunk_fmt != self.fmt:
            raise ServiceError(
                ErrorCode.BAD_AUDIO,
                f"audio-chunk format {chunk_fmt} differs from audio-start format {self.fmt}",
            )
        self.fmt.check_payload(chunk.audio)
        if self.fmt.seconds(self._byte_count + len(chunk.audio)) > self.max_seconds:
            raise ServiceError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"utterance longer than the limit of {self.max_seconds:g} s",
            )
        self._parts.append(chunk.audio)
        self._byte_count += len(chunk.audio)

    @property
    def seconds(self) -> float:
        return self.fmt.seconds(self._byte_count)

    @property
    def is_empty(self) -> bool:
        return self._byte_count == 0

    def to_float_mono(self, rate: int = ENGINE_RATE) -> FloatAudio:
        """The whole utterance as mono float32 at `rate`."""
        samples = pcm_to_float_mono(b"".join(self._parts), self.fmt)
        return resample(samples, self.fmt.rate, rate)


class StreamingConverter:
    """Chunk-by-chunk conversion to 16 kHz mono s16 for services that work on live streams.

    Width and channels are converted with numpy per chunk (stateless); the rate with
    wyoming's `AudioChunkConverter`, whose audioop.ratecv state carries across chunks so
    chunk boundaries do not click. One instance per stream.
    """

    def __init__(self, target: PcmFormat = S16_MONO_16K) -> None:
        if target.width != 2 or target.channels != 1:
            raise ValueError("StreamingConverter produces mono s16 only")
        self.target = target
        self._rate_converter = AudioChunkConverter(rate=target.rate)
        self._source: PcmFormat | None = None

    def convert(self, audio: bytes, fmt: PcmFormat) -> bytes:
        """Convert one chunk; the format must stay the same for the whole stream."""
        if self._source is None:
            self._source = fmt
        elif fmt != self._source:
            raise ServiceError(
                ErrorCode.BAD_AUDIO, f"audio format changed mid-stream from {self._source} to {fmt}"
            )
        if fmt.width == 2 and fmt.channels == 1:
            fmt.check_payload(audio)
            mono_s16 = audio
        else:
            mono_s16 = float_to_pcm16(pcm_to_float_mono(audio, fmt))
        chunk = AudioChunk(rate=fmt.rate, width=2, channels=1, audio=mono_s16)
        return self._rate_converter.convert(chunk).audio
