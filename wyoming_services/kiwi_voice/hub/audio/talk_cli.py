"""`kiwi-hub talk FILE.wav` and `kiwi-hub say TEXT`: one turn with a running hub, from a terminal.

    kiwi-hub talk hey_jarvis_lights.wav --out reply.wav   # spoken: wake word, then the command
    kiwi-hub talk --push-to-talk question.wav             # the whole file is the utterance
    kiwi-hub say "turn on the kitchen light" --out reply.wav

Both are clients of the browser microphone's WebSocket (/api/audio): `talk` streams the WAV as
binary PCM frames, as a microphone would, followed by a little silence so the end of speech is
heard; `say` sends a text_input frame. The turn's events print as they happen (wake word,
transcript, speaker, the answer as it streams, per-stage times; from /api/audio and
/api/events) and the reply audio is written to `--out`. `--json` prints one JSON object a line
instead. Exit code 0 when a turn ran to its end without an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .feed_cli import cli_token
from .wavfile import ENGINE_RATE, InvalidWav, read_wav

DEFAULT_PORT = 7789
CHUNK_BYTES = 3200  # 100 ms of 16 kHz s16: what the dashboard's microphone sends
TRAILING_SILENCE_SECONDS = 1.5  # a microphone keeps sending after the speaker stops
# After the last frame, how long the wake word may take to be reported (the `kiwi` text engine
# transcribes first, which takes seconds on a busy CPU).
WAKE_WAIT_SECONDS = 30.0
TURN_WAIT_SECONDS = 180.0
# Events of /api/events that say what a turn did (the rest are the hub's bookkeeping).
SHOWN_EVENTS = frozenset(
    {"WAKE_WORD_DETECTED", "SPEECH_RECOGNIZED", "SPEAKER_IDENTIFIED", "SPEAKER_BLOCKED", "ERROR"}
)
Emit = Callable[[dict[str, Any]], None]


@dataclass
class TurnResult:
    """What one turn did, as the client saw it."""

    turn_id: str | None = None
    user_text: str | None = None
    reply: str = ""
    route: str | None = None
    errors: list[str] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    audio: bytearray = field(default_factory=bytearray)
    audio_rate: int = ENGINE_RATE
    ended: bool = False
    stray_error: bool = False  # an error that belongs to no turn

    @property
    def ok(self) -> bool:
        return self.ended and not self.errors


class _Turn:
    """Reads both sockets, tells `emit` what happens, and wakes the waiter on each change."""

    def __init__(self, emit: Emit) -> None:
        self.result = TurnResult()
        self._emit = emit
        self._started = time.monotonic()
        self._changed = asyncio.Event()

    def _show(self, kind: str, **data: Any) -> None:
        self._emit({"t": round(time.monotonic() - self._started, 3), "kind": kind, **data})

    def _mine(self, frame: dict[str, Any]) -> bool:
        turn_id = frame.get("turn_id")
        if turn_id is None or self.result.turn_id is None:
            return True
        return bool(turn_id == self.result.turn_id)

    def on_frame(self, frame: dict[str, Any]) -> None:
        kind, result = frame.get("type"), self.result
        if kind == "listening" and result.turn_id is None:
            result.turn_id = frame["turn_id"]
            self._show("listening", trigger=frame["trigger"], turn_id=frame["turn_id"])
        elif not self._mine(frame):
            return
        elif kind == "user_text":
            result.turn_id = result.turn_id or frame["turn_id"]
            result.user_text = frame["text"]
            self._show("transcript", text=frame["text"], language=frame["language"])
        elif kind == "bot_delta":
            self._show("token", text=frame["text"])
        elif kind == "bot_text":
            self._show("sentence", text=frame["text"])
        elif kind == "audio_start":
            result.audio_rate = int(frame["sample_rate"])
            self._show("audio_start", sample_rate=result.audio_rate)
        elif kind == "end":
            result.reply, result.route, result.ended = frame["text"], frame["route"], True
            self._show("end", route=frame["route"], text=frame["text"])
        elif kind == "metrics":
            result.metrics = dict(frame["data"])
            self._show("metrics", **result.metrics)
        elif kind == "error":
            result.errors.append(frame["code"])
            result.stray_error = result.stray_error or "turn_id" not in frame
            self._show("error", code=frame["code"], message=frame["message"])
        self._changed.set()

    def on_audio(self, pcm: bytes) -> None:
        self.result.audio += pcm

    def on_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        if name in SHOWN_EVENTS:
            self._show("event", event=name, data=event.get("data"))

    async def wait(self, done: Callable[[TurnResult], bool], timeout_s: float) -> bool:
        """Wait until `done(result)`; False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not done(self.result):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


async def _read_audio(ws: aiohttp.ClientWebSocketResponse, turn: _Turn) -> None:
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            turn.on_frame(json.loads(message.data))
        elif message.type is aiohttp.WSMsgType.BINARY:
            turn.on_audio(message.data)


async def _read_events(ws: aiohttp.ClientWebSocketResponse, turn: _Turn) -> None:
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            turn.on_event(json.loads(message.data))


async def run_turn(
    url: str,
    token: str,
    emit: Emit,
    *,
    pcm: bytes | None = None,
    text: str | None = None,
    push_to_talk: bool = False,
    realtime: bool = False,
    wake_wait_s: float = WAKE_WAIT_SECONDS,
) -> TurnResult:
    """One turn: `pcm` (16 kHz mono s16) spoken, or `text` typed; the result once it ended."""
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    turn = _Turn(emit)
    async with aiohttp.ClientSession(headers=headers) as session:
        events = await session.ws_connect(f"{base}/api/events")
        audio = await session.ws_connect(f"{base}/api/audio", max_msg_size=16 * 1024 * 1024)
        readers = [
            asyncio.create_task(_read_events(events, turn)),
            asyncio.create_task(_read_audio(audio, turn)),
        ]
        try:
            mode = "push_to_talk" if push_to_talk else "continuous"
            await audio.send_json({"type": "hello", "mode": mode, "client": "kiwi-hub talk"})
            if text is not None:
                await audio.send_json({"type": "text_input", "text": text})
            elif pcm is not None:
                await _speak(audio, pcm, push_to_talk, realtime)
                heard = await turn.wait(lambda r: r.turn_id is not None, wake_wait_s)
                if not heard:
                    turn.result.errors.append("no_wake_word")
                    emit({"kind": "error", "code": "no_wake_word", "message": _NO_WAKE})
                    return turn.result
            # A turn's errors come before its end (Kiwi may still say sorry); an error outside
            # any turn (e.g. kiwi-wake unreachable) means no turn is coming.
            await turn.wait(lambda r: r.ended or r.stray_error, TURN_WAIT_SECONDS)
            if turn.result.ended:  # the timings follow the end frame
                await turn.wait(lambda r: r.metrics is not None, 5.0)
        finally:
            for reader in readers:
                reader.cancel()
            await audio.close()
            await events.close()
    return turn.result


_NO_WAKE = "the hub heard no wake word in the file (try --push-to-talk)"


async def _speak(
    ws: aiohttp.ClientWebSocketResponse, pcm: bytes, push_to_talk: bool, realtime: bool
) -> None:
    if push_to_talk:
        await ws.send_json({"type": "start_speaking"})
    else:
        pcm += bytes(int(TRAILING_SILENCE_SECONDS * ENGINE_RATE) * 2)
    pace = CHUNK_BYTES / (2 * ENGINE_RATE) if realtime else 0.0
    for offset in range(0, len(pcm), CHUNK_BYTES):
        await ws.send_bytes(pcm[offset : offset + CHUNK_BYTES])
        if pace:
            await asyncio.sleep(pace)  # like a live microphone: one chunk per 100 ms
    if push_to_talk:
        await ws.send_json({"type": "end_speaking"})


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    """Write the reply atomically (a half-written WAV never stays behind)."""
    partial = path.with_name(f".{path.name}.partial")
    with wave.open(str(partial), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    partial.replace(path)


class Printer:
    """Readable lines; answer tokens are printed on one line as they stream."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stdout
        self._in_tokens = False

    def __call__(self, item: dict[str, Any]) -> None:
        kind = item["kind"]
        if kind == "token":
            if not self._in_tokens:
                self._write(f"{item['t']:7.2f}s answer: ", end="")
                self._in_tokens = True
            self._write(item["text"], end="")
            return
        if self._in_tokens:
            self._write("")
            self._in_tokens = False
        line = _describe(item)
        if line:
            self._write(f"{item.get('t', 0.0):7.2f}s {line}")

    def _write(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self._stream, flush=True)


def _describe(item: dict[str, Any]) -> str | None:
    kind = item["kind"]
    if kind == "event":
        data = item.get("data") or {}
        name = item["event"]
        if name == "WAKE_WORD_DETECTED":
            score = f" (score {data['score']:.2f})" if "score" in data else ""
            return f"wake word: {data.get('text')}{score}"
        if name == "SPEAKER_IDENTIFIED":
            return f"speaker: {data.get('name')} (confidence {data.get('confidence', 0):.2f})"
        if name == "SPEAKER_BLOCKED":
            return f"speaker blocked: {data}"
        if name == "ERROR":
            return f"error from {data.get('source')}: {data.get('message')}"
        return None  # SPEECH_RECOGNIZED: the transcript frame says it
    if kind == "listening":
        return f"listening ({item['trigger']})"
    if kind == "transcript":
        return f"heard: {item['text']!r} ({item['language']})"
    if kind == "sentence":
        return f"speaking: {item['text']!r}"
    if kind == "audio_start":
        return "reply audio starts"
    if kind == "end":
        return f"answered by {item['route']}: {item['text']!r}"
    if kind == "metrics":
        return "times: " + _times(item)
    if kind == "error":
        return f"error {item['code']}: {item['message']}"
    return None


_STAGES = (
    ("stt_ms", "stt"),
    ("speaker_ms", "speaker"),
    ("route_first_sentence_ms", "first sentence"),
    ("llm_first_token_ms", "first token"),
    ("tts_first_audio_ms", "tts first audio"),
    ("first_audio_ms", "end of speech to first audio"),
    ("total_ms", "total"),
)


def _times(metrics: dict[str, Any]) -> str:
    parts = [
        f"{label} {metrics[key]:.0f} ms"
        for key, label in _STAGES
        if isinstance(metrics.get(key), int | float)
    ]
    return ", ".join(parts) or "none"


def _parser(command: str) -> argparse.ArgumentParser:
    port = os.environ.get("KIWI_PORT") or DEFAULT_PORT
    data_dir = Path(os.environ.get("KIWI_DATA_DIR") or ".kiwi")
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog=f"kiwi-hub {command}", description=description)
    if command == "talk":
        parser.add_argument("wav", type=Path, help="a PCM WAV file (any rate, mono or stereo)")
        parser.add_argument(
            "--push-to-talk", action="store_true", help="no wake word: the file is the utterance"
        )
        parser.add_argument(
            "--realtime", action="store_true", help="send the audio at the pace it plays"
        )
        parser.add_argument(
            "--wake-timeout",
            type=float,
            default=WAKE_WAIT_SECONDS,
            help="seconds to wait for the wake word after the file was sent",
        )
    else:
        parser.add_argument("text", help="what to ask, as if typed into the dashboard")
    parser.add_argument("--out", type=Path, help="write the spoken reply to this WAV file")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}", help="the hub's base URL")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=data_dir / "api_token",
        help="file holding the API token (KIWI_TOKEN overrides it)",
    )
    return parser


def main(command: str, argv: Sequence[str]) -> int:
    """`command` is `talk` or `say`; the exit code."""
    args = _parser(command).parse_args(argv)
    prog = f"kiwi-hub {command}"
    token = cli_token(prog, args.token_file)
    if token is None:
        return 2
    pcm: bytes | None = None
    if command == "talk":
        try:
            pcm = read_wav(args.wav.read_bytes()).pcm
        except (OSError, InvalidWav) as err:
            print(f"{prog}: cannot use {args.wav}: {err}", file=sys.stderr)
            return 2
    emit: Emit = _json_line if args.json else Printer()
    try:
        result = asyncio.run(
            run_turn(
                args.url,
                token,
                emit,
                pcm=pcm,
                text=None if pcm is not None else args.text,
                push_to_talk=getattr(args, "push_to_talk", False),
                realtime=getattr(args, "realtime", False),
                wake_wait_s=getattr(args, "wake_timeout", WAKE_WAIT_SECONDS),
            )
        )
    except (aiohttp.ClientError, OSError) as err:
        print(f"{prog}: cannot reach the hub at {args.url}: {err}", file=sys.stderr)
        return 1
    if args.out is not None:
        write_wav(args.out, bytes(result.audio), result.audio_rate)
        seconds = len(result.audio) / (2 * result.audio_rate)
        emit({"kind": "saved", "path": str(args.out), "seconds": round(seconds, 3)})
        if not args.json:
            print(f"reply audio: {args.out} ({seconds:.1f} s)")
    return 0 if result.ok else 1


def _json_line(item: dict[str, Any]) -> None:
    print(json.dumps(item, ensure_ascii=False), flush=True)
