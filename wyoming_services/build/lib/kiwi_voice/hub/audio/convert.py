"""PCM conversion on the hub's audio paths: any rate, width (1-4 bytes) and mono or stereo to
mono s16 at one rate, chunk by chunk.

Built on wyoming's `AudioChunkConverter` (audioop), whose resampler state carries across
chunks so boundaries do not click; no numpy or scipy, so the hub starts quickly.
"""

from __future__ import annotations

from wyoming.audio import AudioChunk, AudioChunkConverter

MAX_CHANNELS = 2  # audioop mixes stereo to mono; more channels are refused where they enter


class PcmConverter:
    """One stream's converter to mono s16 at `rate` (make one per stream)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._converter = AudioChunkConverter(rate=rate, width=2, channels=1)

    def convert(self, audio: bytes, rate: int, width: int = 2, channels: int = 1) -> bytes:
        """Convert a chunk; a torn trailing sample frame is dropped."""
        frame = width * channels
        audio = audio[: len(audio) - len(audio) % frame]
        if not audio:
            return b""
        chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=audio)
        return self._converter.convert(chunk).audio
