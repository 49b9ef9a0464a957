"""A WAV file as an audio source: fed through the same listener and pipeline as a microphone,
its turns' frames collected into the answer of POST /api/audio/file."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk

from kiwi_voice.hub.pipeline.frames import TurnFrame
from kiwi_voice.hub.pipeline.runtime import PipelineRuntime

from .listener import ListenMode
from .protocol import AudioFileResponse, AudioFileTurn
from .wavfile import EngineAudio

FEED_CHUNK_BYTES = 3200  # 100 ms of 16 kHz s16, like a microphone would deliver
TURN_TIMEOUT_SECONDS = 120.0


@dataclass
class _TurnRecord:
    turn_id: str
    user_text: str | None = None
    language: str | None = None
    route: str = "none"
    reply: str = ""
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    metrics: dict[str, object] | None = None


class FileSink:
    """Collects what a turn would show a client; the audio is measured, not played."""

    def __init__(self) -> None:
        self.label = f"file:{secrets.token_hex(4)}"
        self.turns: dict[str, _TurnRecord] = {}
        self.wake_word_detected = False
        self.errors: list[str] = []  # failures outside any turn (e.g. kiwi-wake unreachable)

    def _record(self, turn_id: str) -> _TurnRecord:
        return self.turns.setdefault(turn_id, _TurnRecord(turn_id))

    async def send_frame(self, frame: TurnFrame) -> None:
        turn_id = frame.get("turn_id")
        if not isinstance(turn_id, str):
            if frame["type"] == "error":
                self.errors.append(frame["code"])
            return
        record = self._record(turn_id)
        if frame["type"] == "listening":
            self.wake_word_detected = self.wake_word_detected or frame["trigger"] == "wake_word"
        elif frame["type"] == "user_text":
            record.user_text, record.language = frame["text"], frame["language"]
        elif frame["type"] == "end":
            record.route, record.reply = frame["route"], frame["text"]
            record.interrupted = frame["interrupted"]
        elif frame["type"] == "error":
            record.errors.append(frame["code"])
        elif frame["type"] == "metrics":
            record.metrics = dict(frame["data"])

    async def play(self, turn_id: str, chunk: AudioChunk) -> None:
        self._record(turn_id).audio_seconds += chunk.seconds

    async def stop_playback(self, turn_id: str) -> None:
        return None

    async def wait_played(self, turn_id: str) -> None:
        return None

    def response(self, audio: EngineAudio) -> AudioFileResponse:
        turns: list[AudioFileTurn] = [
            {
                "turn_id": r.turn_id,
                "user_text": r.user_text,
                "language": r.language,
                "route": r.route,
                "reply": r.reply,
                "interrupted": r.interrupted,
                "errors": r.errors,
                "audio_seconds": round(r.audio_seconds, 3),
                "metrics": r.metrics,  # type: ignore[typeddict-item]
            }
            for r in self.turns.values()
        ]
        return {
            "input_seconds": round(audio.seconds, 3),
            "wake_word_detected": self.wake_word_detected,
            "turns": turns,
            "errors": self.errors,
        }


async def feed_file(
    runtime: PipelineRuntime, audio: EngineAudio, mode: ListenMode
) -> AudioFileResponse:
    """Run `audio` through a fresh listener; return once every turn it started has ended."""
    sink = FileSink()
    listener = runtime.listener(sink, mode)
    try:
        if mode is ListenMode.PUSH_TO_TALK:
            await listener.start_speaking()
        for offset in range(0, len(audio.pcm), FEED_CHUNK_BYTES):
            await listener.feed(audio.pcm[offset : offset + FEED_CHUNK_BYTES])
        if mode is ListenMode.PUSH_TO_TALK:
            await listener.end_speaking()
        turns = await listener.finish()
        if turns:
            await asyncio.wait(turns, timeout=TURN_TIMEOUT_SECONDS)
    finally:
        await listener.close()
    return sink.response(audio)
