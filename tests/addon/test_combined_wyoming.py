"""The combined Wyoming endpoint: merged `info`, and every event routed to the right service.

The three backends here are real Wyoming TCP servers that record what reaches them and echo each
event back (data and payload), so the tests can see both directions of the proxy exactly. The
real STT, TTS and wake services behind the endpoint are exercised by
tests/ha/test_ha_wyoming_combined.py and tests/addon/test_launcher_stack.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    Info,
    TtsProgram,
    TtsVoice,
    WakeModel,
    WakeProgram,
)
from wyoming.ping import Ping, Pong
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop
from wyoming.wake import Detect

from kiwi_voice.combined.handler import SERVICE_UNAVAILABLE, CombinedEventHandler
from kiwi_voice.combined.info import InfoCollector
from kiwi_voice.combined.routing import Mode
from tests.support.ports import free_port
from tests.support.waiting import until, until_async

pytestmark = pytest.mark.timeout(60)

ATTRIBUTION = Attribution(name="Kiwi tests", url="https://example.invalid")


def _programs(tag: str) -> Info:
    """Info with one program in every section, so merging must pick the owner's section."""
    return Info(
        asr=[
            AsrProgram(
                name=f"{tag}-asr",
                attribution=ATTRIBUTION,
                installed=True,
                description=None,
                version="1",
                models=[
                    AsrModel(
                        name=f"{tag}-model",
                        attribution=ATTRIBUTION,
                        installed=True,
                        description=None,
                        version="1",
                        languages=["en"],
                    )
                ],
            )
        ],
        tts=[
            TtsProgram(
                name=f"{tag}-tts",
                attribution=ATTRIBUTION,
                installed=True,
                description=None,
                version="1",
                voices=[
                    TtsVoice(
                        name=f"{tag}-voice",
                        attribution=ATTRIBUTION,
                        installed=True,
                        description=None,
                        version="1",
                        languages=["en"],
                    )
                ],
            )
        ],
        wake=[
            WakeProgram(
                name=f"{tag}-wake",
                attribution=ATTRIBUTION,
                installed=True,
                description=None,
                version="1",
                models=[
                    WakeModel(
                        name=f"{tag}-word",
                        attribution=ATTRIBUTION,
                        installed=True,
                        description=None,
                        version="1",
                        languages=["en"],
                        phrase="hey test",
                    )
                ],
            )
        ],
    )


@dataclass
class RecordingBackend:
    """A Wyoming server that records each event and answers it with an `echo` event."""

    tag: str
    received: list[Event] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    def types(self) -> list[str]:
        return [event.type for event in self.received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            while (event := await async_read_event(reader)) is not None:
                if Describe.is_type(event.type):
                    await async_write_event(_programs(self.tag).event(), writer)
                    continue
                self.received.append(event)
                if event.type == "hang-up":
                    break
                echo = Event("echo", {"backend": self.tag, "of": event.type}, event.payload)
                await async_write_event(echo, writer)
        finally:
            self.writers.discard(writer)
            writer.close()


@dataclass
class Stack:
    backends: dict[Mode, RecordingBackend]
    port: int
    handlers: list[CombinedEventHandler] = field(default_factory=list)  # one per connection

    async def connect(self) -> AsyncTcpClient:
        client = AsyncTcpClient("127.0.0.1", self.port)
        await client.connect()
        return client


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    backends = {mode: RecordingBackend(tag=str(mode)) for mode in Mode}
    for backend in backends.values():
        await backend.start()
    uris = {mode: backend.uri for mode, backend in backends.items()}
    info = InfoCollector(uris)

    handlers: list[CombinedEventHandler] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = CombinedEventHandler(reader, writer, backends=uris, info=info)
        handlers.append(handler)
        await handler.run()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield Stack(backends, server.sockets[0].getsockname()[1], handlers)
    finally:
        server.close()
        await server.wait_closed()
        for backend in backends.values():
            await backend.stop()


async def _read(client: AsyncTcpClient, count: int) -> list[Event]:
    events = []
    async with asyncio.timeout(5):
        for _ in range(count):
            event = await client.read_event()
            assert event is not None, "the endpoint closed the connection"
            events.append(event)
    return events


async def _describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        (event,) = await _read(client, 1)
    assert Info.is_type(event.type)
    return Info.from_event(event)


async def test_info_merges_each_section_from_its_owner(stack: Stack) -> None:
    info = await _describe(stack.port)

    assert [p.name for p in info.asr] == ["asr-asr"]
    assert [p.name for p in info.tts] == ["tts-tts"]
    assert [p.name for p in info.wake] == ["wake-wake"]
    assert info.tts[0].voices[0].name == "tts-voice"
    assert info.satellite is None
    assert all(b.received == [] for b in stack.backends.values())


async def test_transcription_goes_to_stt_with_audio_intact(stack: Stack) -> None:
    audio = bytes(range(256)) * 8
    client = await stack.connect()
    try:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=audio).event())
        await client.write_event(AudioStop().event())
        echoes = await _read(client, 4)
    finally:
        await client.disconnect()

    stt = stack.backends[Mode.ASR]
    assert stt.types() == ["transcribe", "audio-start", "audio-chunk", "audio-stop"]
    assert stt.received[0].data["language"] == "en"
    assert stt.received[2].payload == audio
    assert [(e.data["backend"], e.data["of"]) for e in echoes] == [
        ("asr", "transcribe"),
        ("asr", "audio-start"),
        ("asr", "audio-chunk"),
        ("asr", "audio-stop"),
    ]
    assert echoes[2].payload == audio
    assert stack.backends[Mode.TTS].received == []
    assert stack.backends[Mode.WAKE].received == []


async def test_streaming_synthesis_goes_to_tts(stack: Stack) -> None:
    client = await stack.connect()
    try:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="Hello ").event())
        await client.write_event(SynthesizeChunk(text="there.").event())
        await client.write_event(Synthesize(text="Hello there.").event())
        await client.write_event(SynthesizeStop().event())
        await _read(client, 5)
    finally:
        await client.disconnect()

    tts = stack.backends[Mode.TTS]
    assert tts.types() == [
        "synthesize-start",
        "synthesize-chunk",
        "synthesize-chunk",
        "synthesize",
        "synthesize-stop",
    ]
    assert tts.connections == 1, "one backend connection for the whole streamed request"
    assert stack.backends[Mode.ASR].received == []


async def test_audio_follows_the_mode_and_a_new_request_switches_backend(stack: Stack) -> None:
    chunk = AudioChunk(rate=16000, width=2, channels=1, audio=b"\x01\x02" * 160).event()
    client = await stack.connect()
    try:
        await client.write_event(Detect(names=["hey_jarvis"]).event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await client.write_event(chunk)
        await _read(client, 3)
        await client.write_event(Synthesize(text="Yes?").event())
        (spoken,) = await _read(client, 1)
        await client.write_event(Transcribe().event())
        await client.write_event(chunk)
        await _read(client, 2)
    finally:
        await client.disconnect()

    assert stack.backends[Mode.WAKE].types() == ["detect", "audio-start", "audio-chunk"]
    assert stack.backends[Mode.TTS].types() == ["synthesize"]
    assert spoken.data == {"backend": "tts", "of": "synthesize"}
    assert stack.backends[Mode.ASR].types() == ["transcribe", "audio-chunk"]


async def test_audio_before_any_request_is_refused_once(stack: Stack) -> None:
    chunk = AudioChunk(rate=16000, width=2, channels=1, audio=b"\x00\x00" * 160).event()
    client = await stack.connect()
    try:
        for _ in range(3):
            await client.write_event(chunk)
        await client.write_event(Ping(text="after").event())
        error, pong = await _read(client, 2)
    finally:
        await client.disconnect()

    assert error.type == "error"
    assert error.data["code"] == "unexpected_event"
    assert "audio-chunk" in error.data["text"]
    assert Pong.from_event(pong).text == "after", "one error for three chunks, then the pong"
    assert all(b.received == [] for b in stack.backends.values())


async def test_select_program_is_held_for_the_backend_that_follows(stack: Stack) -> None:
    client = await stack.connect()
    try:
        await client.write_event(Event("select-program", {"name": "tts-tts"}))
        await client.write_event(Synthesize(text="hi").event())
        await _read(client, 2)
    finally:
        await client.disconnect()

    tts = stack.backends[Mode.TTS]
    assert tts.types() == ["select-program", "synthesize"]
    assert tts.received[0].data == {"name": "tts-tts"}


async def test_a_backend_that_hangs_up_is_reconnected_on_the_next_request(stack: Stack) -> None:
    client = await stack.connect()
    try:
        await client.write_event(Transcribe().event())
        await _read(client, 1)
        await client.write_event(Event("hang-up"))
        # The endpoint notices the closed backend connection and forgets it.
        await until(lambda: stack.handlers[0]._backend is None, "the backend forgotten")
        await client.write_event(Transcribe().event())
        (echo,) = await _read(client, 1)
    finally:
        await client.disconnect()

    assert echo.data == {"backend": "asr", "of": "transcribe"}
    assert stack.backends[Mode.ASR].connections == 2


async def test_a_service_that_is_down_gives_an_error_and_keeps_its_last_info(
    stack: Stack,
) -> None:
    assert [p.name for p in (await _describe(stack.port)).wake] == ["wake-wake"]
    await stack.backends[Mode.WAKE].stop()

    chunk = AudioChunk(rate=16000, width=2, channels=1, audio=b"\x00\x00" * 160).event()
    client = await stack.connect()
    try:
        await client.write_event(Detect().event())
        (error,) = await _read(client, 1)
        for _ in range(3):  # the stream that follows: dropped, no error per chunk
            await client.write_event(chunk)
        await client.write_event(Synthesize(text="still here").event())
        (echo,) = await _read(client, 1)
    finally:
        await client.disconnect()

    assert error.type == "error"
    assert error.data["code"] == SERVICE_UNAVAILABLE
    assert echo.data == {"backend": "tts", "of": "synthesize"}
    info = await _describe(stack.port)
    assert [p.name for p in info.wake] == ["wake-wake"], "last known info while it restarts"


async def test_a_service_never_seen_is_left_out_of_info() -> None:
    tts = RecordingBackend(tag="tts")
    await tts.start()
    down = f"tcp://127.0.0.1:{free_port()}"
    try:
        collector = InfoCollector({Mode.ASR: down, Mode.TTS: tts.uri, Mode.WAKE: down})
        info = await collector.merged_info()
    finally:
        await tts.stop()

    assert info.asr == []
    assert info.wake == []
    assert [p.name for p in info.tts] == ["tts-tts"]


@pytest.fixture
def combined_process(stack: Stack) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`python -m kiwi_voice.combined` in front of the recording backends."""
    port = free_port()
    uris = {mode: backend.uri for mode, backend in stack.backends.items()}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kiwi_voice.combined"),
            *("--uri", f"tcp://127.0.0.1:{port}"),
            *("--stt-uri", uris[Mode.ASR]),
            *("--tts-uri", uris[Mode.TTS]),
            *("--wake-uri", uris[Mode.WAKE]),
        ],
        start_new_session=True,
    )
    try:
        yield port, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def test_the_module_serves_the_same_endpoint_and_stops_on_sigterm(
    stack: Stack, combined_process: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, process = combined_process

    async def described() -> Info | None:
        try:
            return await _describe(port)
        except OSError:  # not listening yet
            return None

    info = await until_async(described, "the combined endpoint answers", timeout_s=20, every_s=0.1)
    assert [p.name for p in info.asr] == ["asr-asr"]

    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(Synthesize(text="from the module").event())
        (echo,) = await _read(client, 1)
    finally:
        await client.disconnect()
    assert echo.data == {"backend": "tts", "of": "synthesize"}

    process.send_signal(signal.SIGTERM)
    exit_code = await asyncio.to_thread(process.wait, 10)
    assert exit_code == 0
