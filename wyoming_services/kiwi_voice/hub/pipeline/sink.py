"""Where a turn's frames and audio go: the source it came from (a browser session, the host's
speaker, a WAV file request), and nowhere else.

A sink drops audio of any turn but the one it is playing: after `stop_playback(turn_id)` no
late chunk of that turn reaches the listener, whatever is still in flight.
"""

from __future__ import annotations

from typing import Protocol

from wyoming.audio import AudioChunk

from kiwi_voice.hub.playback import PlaybackOutputs

from .frames import TurnFrame


class TurnSink(Protocol):
    @property
    def label(self) -> str:
        """Names the source in events and logs, e.g. browser:ab12cd34."""

    async def send_frame(self, frame: TurnFrame) -> None:
        """A frame about the turn (sinks that cannot show text ignore it)."""

    async def play(self, turn_id: str, chunk: AudioChunk) -> None:
        """Queue `chunk` of `turn_id` for playback (dropped if that turn was stopped)."""

    async def stop_playback(self, turn_id: str) -> None:
        """Drop what is queued of `turn_id` and ignore any later audio of it."""

    async def wait_played(self, turn_id: str) -> None:
        """Return once the audio queued for `turn_id` has been heard (or dropped)."""


class SilentSink:
    """A sink for turns nobody listens to (e.g. /api/tts/test with no output connected)."""

    label = "none"

    async def send_frame(self, frame: TurnFrame) -> None:
        return None

    async def play(self, turn_id: str, chunk: AudioChunk) -> None:
        return None

    async def stop_playback(self, turn_id: str) -> None:
        return None

    async def wait_played(self, turn_id: str) -> None:
        return None


class BroadcastSink:
    """Announcements (POST /api/tts/test, the integration's speak): every registered output,
    or the one output named `target` (a satellite's announcement)."""

    def __init__(self, outputs: PlaybackOutputs, target: str | None = None) -> None:
        self._outputs = outputs
        self._target = target
        self._stopped: set[str] = set()

    @property
    def label(self) -> str:
        return self._target or "broadcast"

    async def send_frame(self, frame: TurnFrame) -> None:
        return None

    async def play(self, turn_id: str, chunk: AudioChunk) -> None:
        if turn_id not in self._stopped:
            await self._outputs.play(chunk, self._target)

    async def stop_playback(self, turn_id: str) -> None:
        self._stopped.add(turn_id)
        await self._outputs.flush(self._target)

    async def wait_played(self, turn_id: str) -> None:
        self._stopped.discard(turn_id)
