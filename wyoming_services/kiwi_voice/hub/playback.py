"""Where spoken audio goes: every registered output (browser sessions, the host's speaker).

The audio sessions of `/api/audio` and the host-audio player register themselves here. Each
output has a label that says where it plays (`browser:ab12cd34`, `host:pulse`); an announcement
with no output to play on is refused (`NoAudioOutput`) instead of being spoken into nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from wyoming.audio import AudioChunk

_LOGGER = logging.getLogger(__name__)


class NoAudioOutput(Exception):
    """Nothing can play audio: no browser microphone connected, no host speaker
    (`no_audio_output`), or no output has the label asked for (`unknown_output`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AudioOutput(Protocol):
    @property
    def label(self) -> str:
        """Where this output plays, e.g. browser:ab12cd34 or host:pulse."""

    @property
    def can_play(self) -> bool:
        """False for an output that takes audio but plays none (a client that asked for none)."""

    async def play(self, chunk: AudioChunk) -> None: ...

    async def flush(self) -> None:
        """Drop audio queued but not yet heard (barge-in, stop)."""


class PlaybackOutputs:
    def __init__(self) -> None:
        self._outputs: list[AudioOutput] = []

    def add(self, output: AudioOutput) -> Callable[[], None]:
        self._outputs.append(output)
        return lambda: self._outputs.remove(output)

    @property
    def count(self) -> int:
        return len(self._outputs)

    def labels(self, target: str | None = None) -> list[str]:
        """Where audio for `target` (an output's label; None: every output) would play."""
        return [o.label for o in self._chosen(target) if o.can_play]

    def _chosen(self, target: str | None) -> list[AudioOutput]:
        return [o for o in self._outputs if target is None or o.label == target]

    async def play(self, chunk: AudioChunk, target: str | None = None) -> None:
        for output in self._chosen(target):
            try:
                await output.play(chunk)
            except Exception:
                # One broken output (a browser tab that went away) must not silence the others.
                _LOGGER.exception("Audio output %r failed", output)

    async def flush(self, target: str | None = None) -> None:
        for output in self._chosen(target):
            try:
                await output.flush()
            except Exception:
                _LOGGER.exception("Audio output %r failed to flush", output)
