"""WebSocket /api/audio (the browser microphone) and POST /api/audio/file (a WAV file)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import secrets
from typing import Any, Literal

import voluptuous as vol
from aiohttp import WSMsgType, web

from kiwi_voice.hub.audio.file_source import feed_file
from kiwi_voice.hub.audio.protocol import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    AudioFileResponse,
    HelloAck,
)
from kiwi_voice.hub.audio.session import AudioSession
from kiwi_voice.hub.audio.wavfile import MAX_SECONDS, InvalidWav, read_wav
from kiwi_voice.hub.endpoint import Call, Endpoint, QueryParam, WebSocketFrames
from kiwi_voice.hub.errors import ApiError, bad_request, from_invalid
from kiwi_voice.hub.pipeline.engine import new_turn_id
from kiwi_voice.hub.pipeline.frames import turn_error
from kiwi_voice.hub.pipeline.listener import Listener, ListenMode
from kiwi_voice.hub.pipeline.policy import Speaker
from kiwi_voice.hub.pipeline.turn import TurnRequest
from kiwi_voice.hub.shapes import validator

from .runtime import PIPELINE_KEY, PipelineRuntime
from .satellites import Satellite, room_satellite

_LOGGER = logging.getLogger(__name__)
TAG = "audio"
HEARTBEAT_SECONDS = 30.0
MAX_FRAME_BYTES = 4 * 1024 * 1024
_CHECKS = {name: validator(shape) for name, shape in CLIENT_FRAMES.items()}


class FrameError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parse(text: str) -> dict[str, Any]:
    try:
        frame = json.loads(text)
    except ValueError as err:
        raise FrameError("invalid_json", f"frame is not valid JSON: {err}") from err
    if not isinstance(frame, dict):
        raise FrameError("invalid_frame", 'a frame must be a JSON object like {"type": "ping"}')
    if "type" not in frame and isinstance(frame.get("t"), str):  # AstrBot's envelope
        frame["type"] = frame.pop("t")
    if frame.get("type") == "stop":  # DESIGN.md's name for barge-in: the Interrupt shape's alias
        frame["type"] = "interrupt"
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise FrameError("missing_field", "type: every frame needs a string field 'type'")
    check = _CHECKS.get(kind)
    if check is None:
        known = ", ".join(sorted(CLIENT_FRAMES))
        raise FrameError("unknown_type", f"type: unknown frame type {kind!r} (known: {known})")
    try:
        return dict(check(frame))
    except vol.Invalid as err:
        invalid = from_invalid(err)
        raise FrameError(invalid.code, invalid.message) from err


class AudioConnection:
    """Serves one /api/audio client: frames in, the listener and pipeline behind it."""

    def __init__(self, runtime: PipelineRuntime, session: AudioSession) -> None:
        self._runtime = runtime
        self._session = session
        self._listener: Listener = runtime.listener(session)

    async def on_audio(self, pcm: bytes) -> None:
        if self._session.options.muted:
            return
        await self._listener.feed(self._session.to_engine_audio(pcm))

    async def on_text(self, text: str) -> None:
        session = self._session
        session.options.json_frames = True
        try:
            frame = _parse(text)
        except FrameError as err:
            await session.send_json(turn_error(err.code, err.message))
            return
        kind = frame["type"]
        if kind == "hello":
            await self._hello(frame)
        elif kind == "audio":
            try:
                pcm = base64.b64decode(frame["data"], validate=True)
            except (binascii.Error, ValueError):
                await session.send_json(turn_error("invalid_value", "data: not valid base64"))
                return
            await self.on_audio(pcm)
        elif kind == "start_speaking":
            await self._listener.start_speaking()
        elif kind == "end_speaking":
            await self._listener.end_speaking()
        elif kind == "text_input":
            await self._text_input(frame)
        elif kind in ("interrupt", "stop"):
            await self._listener.cancel_capture()
            await self._runtime.pipeline.interrupt(session)
        elif kind in ("mute", "unmute"):
            session.options.muted = kind == "mute"
        elif kind == "ping":
            await session.send_json({"type": "pong"})

    async def _hello(self, frame: dict[str, Any]) -> None:
        options = self._session.options
        if "sample_rate" in frame:
            options.sample_rate = frame["sample_rate"]
            self._session.set_input_rate(options.sample_rate)
        options.output_sample_rate = frame.get("output_sample_rate", options.output_sample_rate)
        options.output_format = frame.get("output_format", options.output_format)
        options.language = frame.get("language", options.language)
        if frame.get("room") and frame["room"] != options.room:
            self._leave_room()
            options.room = frame["room"]
            satellite = Satellite(
                room_satellite(frame["room"]), frame["room"], "browser", self._listener
            )
            self._runtime.satellites.add(satellite)
        if "mode" in frame and frame["mode"] != options.mode:
            options.mode = frame["mode"]
            await self._listener.cancel_capture()
            self._listener.mode = ListenMode(options.mode)
        choice = self._runtime.selector.current
        ack: HelloAck = {
            "type": "hello_ack",
            "session_id": self._session.session_id,
            "protocol": 1,
            "sample_rate": options.sample_rate,
            "output_sample_rate": options.output_sample_rate,
            "output_format": options.output_format,
            "mode": options.mode,
            "wake_word": choice.wake_word,
            "wake_word_engine": choice.engine,
        }
        await self._session.send_json(ack)

    async def _text_input(self, frame: dict[str, Any]) -> None:
        session = self._session
        # A new question replaces this client's unfinished answer (another client's waits).
        await self._runtime.pipeline.interrupt(session)
        request = TurnRequest(
            turn_id=new_turn_id(),
            sink=session,
            trigger="text",
            text=frame["text"],
            language=frame.get("language") or session.options.language,
            speaker=Speaker.client(session.label),
            context_key=f"client:{session.label}",
        )
        self._runtime.pipeline.submit(request)

    def _leave_room(self) -> None:
        room = self._session.options.room
        if room:
            self._runtime.satellites.remove(room_satellite(room), self._listener)

    async def close(self) -> None:
        self._leave_room()
        await self._listener.close()
        await self._runtime.pipeline.interrupt(self._session)


async def audio_socket(call: Call) -> web.WebSocketResponse:
    request, ctx = call.request, call.ctx
    runtime = request.app[PIPELINE_KEY]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    session = AudioSession(ws, secrets.token_hex(4))
    connection = AudioConnection(runtime, session)
    ctx.websockets[ws] = request
    runtime.sessions.add(session)
    session.replies_elsewhere = lambda: runtime.satellites.replies_elsewhere(session.label)
    remove_output = ctx.outputs.add(session.as_output())
    _LOGGER.info("%s connected", session.label)
    try:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await connection.on_audio(message.data)
            elif message.type == WSMsgType.TEXT:
                await connection.on_text(message.data)
    except (ConnectionError, OSError):
        pass
    finally:
        remove_output()
        runtime.sessions.discard(session)
        ctx.websockets.pop(ws, None)
        with contextlib.suppress(Exception):
            await connection.close()
        _LOGGER.info("%s disconnected", session.label)
    return ws


_MODE = QueryParam(
    name="mode",
    annotation=Literal["continuous", "push_to_talk"],
    description="continuous (default): the file must contain the wake word; push_to_talk: "
    "the whole file is the utterance",
)


async def post_audio_file(call: Call) -> AudioFileResponse:
    runtime = call.request.app[PIPELINE_KEY]
    mode = ListenMode(call.query.get("mode", ListenMode.CONTINUOUS.value))
    request = call.request
    # Refused before reading: a body this size is longer than MAX_SECONDS in any format Kiwi
    # reads; aiohttp would refuse it anyway, with a code that does not say why.
    if (request.content_length or 0) > request.client_max_size:
        raise _too_long(request.content_length or 0)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as err:  # chunked upload, no Content-Length
        raise _too_long(request.client_max_size + 1) from err
    if not body:
        raise bad_request("missing_body", "send the WAV file as the request body (audio/wav)")
    try:
        audio = read_wav(body)
    except InvalidWav as err:
        raise ApiError(err.status, err.code, str(err)) from err
    return await feed_file(runtime.listener, audio, mode)


def _too_long(size: int) -> ApiError:
    return ApiError(
        413,
        "wav_too_long",
        f"a {size}-byte body is more than this endpoint takes: send at most "
        f"{MAX_SECONDS:g} s of audio",
    )


ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/audio",
        handler=audio_socket,
        summary="WebSocket: the browser microphone (binary PCM16 in, TTS audio out)",
        tag=TAG,
        websocket=True,
        frames=WebSocketFrames(
            name="Audio",
            server=SERVER_FRAMES,
            client=tuple(dict.fromkeys(CLIENT_FRAMES.values())),
            binary="Raw PCM s16le mono: in at sample_rate (16 kHz default), out at "
            "output_sample_rate (16 kHz default)",
        ),
        description=(
            "Send raw PCM16 mono 16 kHz as binary frames; Kiwi listens for the wake word and "
            "answers with binary PCM16 16 kHz frames, to this client only. JSON frames (a "
            "`type` field) add a hello/hello_ack handshake, push-to-talk, text input, "
            "interrupt and live turn frames (user_text, bot_delta, bot_text, audio_start, "
            "stop_play, end, metrics, error). See docs/web-microphone.md."
        ),
    ),
    Endpoint(
        method="POST",
        path="/api/audio/file",
        handler=post_audio_file,
        summary="Feed a WAV file through the voice pipeline (tests, demos)",
        tag=TAG,
        raw_body="audio/wav",
        query=(_MODE,),
        response=AudioFileResponse,
        errors=(413, 415, 422),
        description=(
            "Answers once every turn the file started has ended. Refused files: 400 "
            "`missing_body` (no body), 415 `invalid_wav` (not a WAV file), 415 `wav_not_pcm` "
            "(float, A-law, µ-law, ADPCM... audio: send integer PCM), 422 `wav_empty` (no "
            f"samples), 413 `wav_too_long` (more than {MAX_SECONDS:g} s of audio)."
        ),
    ),
)
