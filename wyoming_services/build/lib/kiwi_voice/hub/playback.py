"""Where spoken audio goes: every registered output (browser sessions, the host's speaker).

The audio sessions of `/api/audio` and the host-audio player register themselves here; with no
output registered the audio is dropped (the hub still reports TTS_STARTED / TTS_FINISHED).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from wyoming.audio import AudioChunk

_LOGGER = logging.getLogger(__name__)


class AudioOutput(Protocol):
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

    async def play(self, chunk: AudioChunk) -> None:
        for output in list(self._outputs):
            try:
                await output.play(chunk)
            except Exception:
                # One broken output (a browser tab that went away) must not silence the others.
                _LOGGER.exception("Audio output %r failed", output)

    async def flush(self) -> None:
        for output in list(self._outputs):
            try:
                await output.flush()
            except Exception:
                _LOGGER.exception("Audio output %r failed to flush", output)
