"""One /api/audio connection as the pipeline sees it: a `TurnSink` that sends a turn's frames
and audio to this client only, resampled to the client's rate, and never a chunk of a turn
the client stopped.

Playback is modelled with a clock (samples sent / rate): `wait_played` returns when the
client has had time to play what it was sent, so TTS_FINISHED means "finished playing", and a
barge-in flushes what the client still has queued (`stop_play`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from wyoming.audio import AudioChunk

from kiwi_voice.hub.pipeline import frames
from kiwi_voice.hub.pipeline.frames import TurnFrame

from .convert import PcmConverter
from .protocol import DEFAULT_RATE, AudioMode, OutputFormat

_LOGGER = logging.getLogger(__name__)
ANNOUNCEMENT_TURN = "announcement"
_MAX_PLAYBACK_WAIT_SECONDS = 60.0


@dataclass
class SessionOptions:
    json_frames: bool = False  # the client spoke JSON: it gets JSON frames too
    sample_rate: int = DEFAULT_RATE
    output_sample_rate: int = DEFAULT_RATE
    output_format: OutputFormat = "binary"
    mode: AudioMode = "continuous"
    language: str | None = None
    muted: bool = False
    room: str | None = None  # a named microphone: the satellite room:<room>


class AudioSession:
    def __init__(self, ws: web.WebSocketResponse, session_id: str) -> None:
        self._ws = ws
        self.session_id = session_id
        self.options = SessionOptions()
        self._send_lock = asyncio.Lock()
        self._input = PcmConverter(DEFAULT_RATE)
        self._input_rate = DEFAULT_RATE
        self._carry = b""  # an odd byte left by a binary frame, completed by the next
        self._audio_turn: str | None = None  # the turn whose audio is being sent
        self._output: PcmConverter | None = None
        self._stopped: set[str] = set()
        self._play_until = 0.0
        # True while this microphone's replies play elsewhere (a Home Assistant media player).
        self.replies_elsewhere: Callable[[], bool] = lambda: False

    @property
    def label(self) -> str:
        # A named microphone goes by its room, so the satellite keeps its id across reconnects.
        if self.options.room:
            return f"room:{self.options.room}"
        return f"browser:{self.session_id}"

    # ---- input ------------------------------------------------------------------------------

    def set_input_rate(self, rate: int) -> None:
        if rate != self._input_rate:
            self._input_rate = rate
            self._input = PcmConverter(DEFAULT_RATE)
            self._carry = b""

    def to_engine_audio(self, pcm: bytes) -> bytes:
        """Client PCM (s16le mono at sample_rate) → 16 kHz mono s16 for the listener."""
        data = self._carry + pcm
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        if not whole:
            return b""
        return self._input.convert(data[:whole], self._input_rate)

    # ---- sending ----------------------------------------------------------------------------

    async def send_json(self, frame: Any) -> None:
        if self._ws.closed:
            return
        async with self._send_lock:
            try:
                await self._ws.send_str(json.dumps(frame, ensure_ascii=False))
            except (ConnectionError, RuntimeError) as err:
                _LOGGER.debug("%s: frame not sent: %s", self.label, err)

    async def _send_bytes(self, data: bytes) -> None:
        if self._ws.closed:
            return
        async with self._send_lock:
            try:
                await self._ws.send_bytes(data)
            except (ConnectionError, RuntimeError) as err:
                _LOGGER.debug("%s: audio not sent: %s", self.label, err)

    # ---- TurnSink ---------------------------------------------------------------------------

    async def send_frame(self, frame: TurnFrame) -> None:
        if self.options.json_frames:
            await self.send_json(frame)

    async def play(self, turn_id: str, chunk: AudioChunk) -> None:
        if turn_id in self._stopped or self.options.output_format == "none":
            return
        if turn_id != ANNOUNCEMENT_TURN and self.replies_elsewhere():
            return  # Home Assistant says this reply on the media player the user chose
        if turn_id != self._audio_turn:
            self._audio_turn = turn_id
            self._output = PcmConverter(self.options.output_sample_rate)
            if self.options.json_frames:
                binary = self.options.output_format == "binary"
                await self.send_json(
                    {
                        "type": "audio_start",
                        "turn_id": turn_id,
                        "sample_rate": self.options.output_sample_rate,
                        "channels": 1,
                        "width": 2,
                        "format": "binary" if binary else "base64",
                    }
                )
        assert self._output is not None
        pcm = self._output.convert(chunk.audio, chunk.rate, chunk.width, chunk.channels)
        if not pcm or turn_id in self._stopped:  # stopped while the frame above was sent
            return
        if self.options.output_format == "base64":
            encoded = base64.b64encode(pcm).decode("ascii")
            await self.send_json({"type": "audio", "turn_id": turn_id, "data": encoded})
        else:
            await self._send_bytes(pcm)
        now = time.monotonic()
        seconds = len(pcm) / (2 * self.options.output_sample_rate)
        self._play_until = max(self._play_until, now) + seconds

    async def stop_playback(self, turn_id: str) -> None:
        self._stopped.add(turn_id)
        if self._audio_turn == turn_id:
            self._audio_turn = None
            self._play_until = 0.0
            await self.send_frame(frames.stop_play(turn_id))

    async def wait_played(self, turn_id: str) -> None:
        remaining = self._play_until - time.monotonic()
        if turn_id == self._audio_turn and remaining > 0:
            await asyncio.sleep(min(remaining, _MAX_PLAYBACK_WAIT_SECONDS))

    # ---- announcements (through the hub's PlaybackOutputs) ----------------------------------

    def as_output(self) -> SessionOutput:
        return SessionOutput(self)


class SessionOutput:
    """The session as one of the hub's `PlaybackOutputs` (announcements go to every output)."""

    def __init__(self, session: AudioSession) -> None:
        self._session = session

    @property
    def label(self) -> str:
        return self._session.label

    @property
    def can_play(self) -> bool:
        return self._session.options.output_format != "none"

    async def play(self, chunk: AudioChunk) -> None:
        self._session._stopped.discard(ANNOUNCEMENT_TURN)
        await self._session.play(ANNOUNCEMENT_TURN, chunk)

    async def flush(self) -> None:
        await self._session.stop_playback(ANNOUNCEMENT_TURN)

    def __repr__(self) -> str:
        return f"SessionOutput({self._session.label})"
