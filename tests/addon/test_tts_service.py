"""kiwi-tts as a real process on a real port, driven by wyoming's AsyncTcpClient.

The voice is the tiny offline piper voice: it phonemizes with the real espeak-ng and runs a
real ONNX graph, but its sound means nothing, so the tests assert on the protocol, the
audio format and lengths, and the order in which audio leaves the server.
"""

from __future__ import annotations

import asyncio
import filecmp
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from kiwi_voice.common.info import KIWI_VERSION
from kiwi_voice.tts.sentences import SentenceSplitter
from tests.support.ports import free_port
from tests.support.waiting import until
from tests.support.wyoming_events import read_until as read_events
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(120)

VOICE = "en_US-kiwi_test-x_low"
MAX_TEXT_CHARS = 3000
LONG_TEXT = " ".join(f"This is sentence number {n} of a long answer." for n in range(12))
read_until = functools.partial(read_events, limit=5000)  # audio chunks come by the thousand


@pytest.fixture(scope="module")
def tts(
    offline_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("tts") / "kiwi-tts.log"
    service = start_service(
        "kiwi-tts",
        [
            "--data-dir",
            str(offline_models_dir / "piper"),
            "--voice",
            VOICE,
            "--workers",
            "2",
            "--max-text-chars",
            str(MAX_TEXT_CHARS),
            "--download-url",
            f"http://127.0.0.1:{free_port()}",  # nothing listens: downloads fail at once
            "--debug",
        ],
        log,
    )
    yield service
    assert service.stop() == 0, service.log()


async def synthesize(port: int, request: Event) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(request)
        return await read_until(client, "audio-stop")


def audio_of(events: list[Event]) -> bytes:
    return b"".join(AudioChunk.from_event(e).audio for e in events if e.type == "audio-chunk")


def assert_audio_stream(events: list[Event]) -> None:
    """audio-start, audio-chunks in one format with running timestamps, audio-stop."""
    types = [e.type for e in events]
    assert types[0] == "audio-start", types[:3]
    assert types[-1] == "audio-stop", types[-3:]
    assert set(types[1:-1]) == {"audio-chunk"}
    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (16000, 2, 1)
    position = 0
    for event in events[1:-1]:
        chunk = AudioChunk.from_event(event)
        assert (chunk.rate, chunk.width, chunk.channels) == (start.rate, 2, 1)
        assert chunk.timestamp == position * 1000 // start.rate
        position += chunk.samples
    assert AudioStop.from_event(events[-1]).timestamp == position * 1000 // start.rate
    assert position > 0


async def error_then_alive(client: AsyncTcpClient, code: str) -> Event:
    """The next event is an error with `code`, and the connection still answers a ping."""
    [error] = await read_until(client, "error")
    assert error.type == "error", error
    assert error.data["code"] == code, error
    await client.write_event(Ping(text="ok?").event())
    [pong] = await read_until(client, "pong")
    assert pong.type == "pong"
    return error


async def synthesize_fails(port: int, request: Event, code: str) -> Event:
    """A failed `synthesize` is answered with one error, then the connection closes
    (Home Assistant's client ignores errors and waits for audio-stop or the end)."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(request)
        events: list[Event] = []
        while (event := await asyncio.wait_for(client.read_event(), timeout=30)) is not None:
            events.append(event)
    assert [e.type for e in events] == ["error"], events
    assert events[0].data["code"] == code, events[0]
    return events[0]


async def describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        return Info.from_event((await read_until(client, "info"))[-1])


async def test_describe_is_accurate(tts: ServiceProcess) -> None:
    info = await describe(tts.port)
    [program] = info.tts
    assert program.name == "kiwi-tts"
    assert program.installed
    assert program.supports_synthesize_streaming
    assert program.version == KIWI_VERSION
    [voice] = program.voices
    assert voice.name == VOICE
    assert voice.installed
    assert voice.languages == ["en_US"]
    assert "kiwi_test (x_low)" in (voice.description or "")
    assert "on disk" in (voice.description or "")
    assert voice.attribution.url.startswith("https://")
    assert voice.version == "1.0.0"  # the voice config's piper_version
    assert not info.asr


async def test_synthesize_streams_sentence_by_sentence(tts: ServiceProcess) -> None:
    events = await synthesize(tts.port, Synthesize(text=LONG_TEXT).event())
    assert_audio_stream(events)
    progress = [e.data["kiwi"] for e in events if e.type == "audio-chunk"]
    sentences = [p["sentence"] for p in progress]
    assert sentences == sorted(sentences)
    assert set(sentences) == set(range(12))
    # The server stamps each chunk with how many sentences the engine had finished when it
    # went out: the first left while most of the text was still unsynthesised.
    assert progress[0]["sentences_ready"] < 12
    assert progress[0]["sentences_ready"] <= 3
    assert progress[-1]["sentences_ready"] == 12


async def test_streaming_text_gets_audio_before_it_ends(tts: ServiceProcess) -> None:
    async with AsyncTcpClient("127.0.0.1", tts.port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=VOICE)).event())
        text = "Hello there, this is the first sentence. And the second"
        for word in text.split():
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        # The first sentence is complete: its audio comes before the stream is stopped.
        first = await read_until(client, "audio-chunk")
        assert [e.type for e in first] == ["audio-start", "audio-chunk"]
        assert first[1].data["kiwi"]["sentence"] == 0

        await client.write_event(SynthesizeChunk(text="one is here").event())
        # Home Assistant repeats the whole text in a synthesize event inside the stream.
        full = "Hello there, this is the first sentence. And the second one is here"
        await client.write_event(Synthesize(text=full).event())
        await client.write_event(SynthesizeStop().event())
        rest = await read_until(client, "synthesize-stopped")
    events = first + rest
    types = [e.type for e in events]
    assert types[-1] == "synthesize-stopped"
    assert_audio_stream(events[:-1])
    assert {e.data["kiwi"]["sentence"] for e in events if e.type == "audio-chunk"} == {0, 1}


async def test_request_voice_language_speaker_and_scales(tts: ServiceProcess) -> None:
    def request(**synthesis: float) -> Event:
        event = Synthesize(text="A short test.", voice=SynthesizeVoice(name=VOICE)).event()
        event.data["synthesis"] = synthesis
        return event

    slow = audio_of(await synthesize(tts.port, request(length_scale=2.0)))
    fast = audio_of(await synthesize(tts.port, request(length_scale=0.5)))
    assert len(slow) > 2 * len(fast)

    by_language = Synthesize(text="A short test.", voice=SynthesizeVoice(language="en"))
    assert_audio_stream(await synthesize(tts.port, by_language.event()))

    await synthesize_fails(tts.port, request(length_scale=50.0), "bad_request")
    await synthesize_fails(tts.port, request(loudness=2.0), "bad_request")
    speaker = SynthesizeVoice(name=VOICE, speaker="7")
    await synthesize_fails(tts.port, Synthesize(text="Hi.", voice=speaker).event(), "unknown_voice")
    german = SynthesizeVoice(language="de")
    await synthesize_fails(
        tts.port, Synthesize(text="Hallo.", voice=german).event(), "unknown_voice"
    )


async def test_failed_synthesize_gets_an_error(tts: ServiceProcess) -> None:
    port = tts.port
    await synthesize_fails(port, Synthesize(text=" \n ").event(), "empty_text")
    no_text = Event(type="synthesize", data={"voice": {"name": VOICE}})
    await synthesize_fails(port, no_text, "bad_request")
    bogus = SynthesizeVoice(name="bogus")
    await synthesize_fails(port, Synthesize(text="Hi.", voice=bogus).event(), "unknown_voice")
    catalogue_name = SynthesizeVoice(name="de_DE-nobody-low")
    request = Synthesize(text="Hallo.", voice=catalogue_name).event()
    error = await synthesize_fails(port, request, "model_missing")
    assert "de_DE-nobody-low" in error.data["text"]
    too_long = Synthesize(text="word " * MAX_TEXT_CHARS).event()
    await synthesize_fails(port, too_long, "payload_too_large")
    huge = Event(type="synthesize", data={"text": "x" * (100 * MAX_TEXT_CHARS)})
    await synthesize_fails(port, huge, "payload_too_large")  # skipped unread
    assert_audio_stream(await synthesize(port, Synthesize(text="Still working.").event()))


async def test_bad_stream_events_get_errors_and_the_connection_lives(tts: ServiceProcess) -> None:
    async with AsyncTcpClient("127.0.0.1", tts.port) as client:
        await client.write_event(SynthesizeChunk(text="Hi.").event())
        await error_then_alive(client, "unexpected_event")
        await client.write_event(SynthesizeStop().event())
        await error_then_alive(client, "unexpected_event")

        # A stream without text: an error, and still the end of the stream.
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="  ").event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "synthesize-stopped")
        assert [e.type for e in events] == ["audio-start", "error"]
        assert events[-1].data["code"] == "empty_text"
        assert [e.type for e in await read_until(client, "synthesize-stopped")] == [
            "audio-stop",
            "synthesize-stopped",
        ]

        # A stream that fails at its start drops its chunks and still ends.
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="bogus")).event())
        await client.write_event(SynthesizeChunk(text="Hello there. ").event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "synthesize-stopped")
        assert [e.type for e in events] == ["error"]
        assert [e.type for e in await read_until(client, "synthesize-stopped")] == [
            "synthesize-stopped"
        ]

        # The same connection still synthesises.
        await client.write_event(Synthesize(text="Still working.").event())
        assert_audio_stream(await read_until(client, "audio-stop"))


async def test_client_leaving_mid_synthesis_stops_the_work(tts: ServiceProcess) -> None:
    # 60 slow sentences make ~15 MB of audio: more than the socket buffers between the two
    # processes hold, so the engine can only get ahead of the client by a bounded amount.
    text = " ".join(f"This is sentence number {n} of a long answer." for n in range(60))
    request = Synthesize(text=text).event()
    request.data["synthesis"] = {"length_scale": 5.0}
    async with AsyncTcpClient("127.0.0.1", tts.port) as client:
        await client.write_event(request)
        await read_until(client, "audio-chunk")
    # Closed with unread audio: the server's next write fails and the engine stops.
    stopped = await until(
        lambda: [line for line in tts.log().splitlines() if "tts: stopped after" in line],
        "the engine stops for a client that had left",
    )
    assert int(stopped[-1].split("stopped after ")[1].split()[0]) < 60
    assert_audio_stream(await synthesize(tts.port, Synthesize(text="Next client.").event()))


async def test_concurrent_clients(tts: ServiceProcess) -> None:
    results = await asyncio.gather(
        *(synthesize(tts.port, Synthesize(text=f"Client {n} speaks.").event()) for n in range(4))
    )
    for events in results:
        assert_audio_stream(events)


class _QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def voice_server(offline_piper_voice: Path, tmp_path: Path) -> Iterator[str]:
    """A local piper voices catalogue (piper's folder layout) that serves the test voice."""
    root = tmp_path / "catalogue"
    folder = root / "en" / "en_US" / "kiwi_test" / "x_low"
    folder.mkdir(parents=True)
    shutil.copy(offline_piper_voice, folder / offline_piper_voice.name)
    config = offline_piper_voice.with_name(f"{offline_piper_voice.name}.json")
    shutil.copy(config, folder / config.name)
    handler = functools.partial(_QuietFileHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_voice_downloads_on_first_use_atomically(
    voice_server: str, offline_piper_voice: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "piper"
    data_dir.mkdir()
    # A second voice on disk (a copy under another name) to exercise the LRU of loaded voices.
    other = "en_GB-kiwi_copy-x_low"
    shutil.copy(offline_piper_voice, data_dir / f"{other}.onnx")
    shutil.copy(
        offline_piper_voice.with_name(f"{VOICE}.onnx.json"), data_dir / f"{other}.onnx.json"
    )
    service = start_service(
        "kiwi-tts",
        [
            "--data-dir",
            str(data_dir),
            "--voice",
            VOICE,
            "--download-url",
            voice_server,
            "--max-loaded-voices",
            "1",
        ],
        tmp_path / "tts.log",
    )
    try:
        voices = {v.name: v for v in (await describe(service.port)).tts[0].voices}
        assert voices[VOICE].installed
        assert "downloaded on first use" in (voices[VOICE].description or "")
        assert voices[other].installed

        for name in (VOICE, other, VOICE):
            request = Synthesize(text="Downloaded voice.", voice=SynthesizeVoice(name=name))
            assert_audio_stream(await synthesize(service.port, request.event()))

        assert filecmp.cmp(data_dir / f"{VOICE}.onnx", offline_piper_voice, shallow=False)
        assert not list(data_dir.glob(".*part"))
        log = service.log()
        assert f"Downloading piper voice {VOICE}" in log
        assert f"Downloaded piper voice {VOICE}" in log
        assert "Unloaded voice" in log
        voices = {v.name: v for v in (await describe(service.port)).tts[0].voices}
        assert "on disk" in (voices[VOICE].description or "")
    finally:
        assert service.stop() == 0


class _FailingCatalogue(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(500, "catalogue broken for the test")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


async def test_failed_default_voice_download_keeps_service_up(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingCatalogue)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data_dir = tmp_path / "piper"
    service = start_service(
        "kiwi-tts",
        [
            "--data-dir",
            str(data_dir),
            "--voice",
            "en_US-lessac-medium",
            "--download-url",
            f"http://127.0.0.1:{server.server_address[1]}",
        ],
        tmp_path / "tts.log",
    )
    try:
        [voice] = (await describe(service.port)).tts[0].voices
        assert voice.installed
        error = await synthesize_fails(
            service.port, Synthesize(text="Hello.").event(), "model_missing"
        )
        assert "HTTP 500" in error.data["text"]
        [voice] = (await describe(service.port)).tts[0].voices
        assert not voice.installed
        assert "NOT AVAILABLE" in (voice.description or "")
        assert service.process.poll() is None
        assert not data_dir.exists() or not [p for p in data_dir.iterdir() if "onnx" in p.name]
    finally:
        assert service.stop() == 0
        server.shutdown()
        server.server_close()


def test_sentence_splitter_hands_out_complete_sentences() -> None:
    splitter = SentenceSplitter()
    assert splitter.add("Hello the") == []
    assert splitter.add("re. How are") == ["Hello there."]
    assert splitter.add(' you? "Fine!" she said. 3.5 is') == [
        "How are you?",
        '"Fine!"',
        "she said.",
    ]
    assert splitter.finish() == "3.5 is"
    assert splitter.add("x" * 450 + " tail") == ["x" * 400]


@given(st.lists(st.text(alphabet="ab .!?\n", max_size=30), max_size=20))
def test_sentence_splitter_loses_no_text(pieces: list[str]) -> None:
    splitter = SentenceSplitter(max_sentence_chars=40)
    out: list[str] = []
    for piece in pieces:
        out += splitter.add(piece)
    out.append(splitter.finish())
    assert "".join("".join(out).split()) == "".join("".join(pieces).split())
    assert all(sentence.strip() == sentence for sentence in out)
