"""The recent audio of a source, addressed by sample position since the source started."""

from __future__ import annotations

DEFAULT_SECONDS = 30.0


class AudioRing:
    """Mono s16 audio; keeps the newest `seconds` and forgets the rest."""

    def __init__(self, rate: int, seconds: float = DEFAULT_SECONDS) -> None:
        self._max_bytes = int(rate * seconds) * 2
        self._data = bytearray()
        self.start = 0  # sample position of the oldest sample kept

    @property
    def end(self) -> int:
        """Sample position just after the newest sample."""
        return self.start + len(self._data) // 2

    def append(self, pcm: bytes) -> None:
        self._data += pcm
        excess = len(self._data) - self._max_bytes
        if excess > 0:
            excess += excess % 2
            del self._data[:excess]
            self.start += excess // 2

    def since(self, position: int) -> bytes:
        """The audio from `position` (or the oldest kept) to the end."""
        offset = max(0, position - self.start) * 2
        return bytes(self._data[offset:])
