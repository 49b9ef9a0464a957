"""kiwi-stt as a real process on a real port, driven by wyoming's AsyncTcpClient.

The whisper model is the tiny offline one: its words mean nothing, so the tests assert on
the protocol (events, their order, their fields) and on behaviour, never on what it says.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping

from kiwi_voice.common.info import KIWI_VERSION
from kiwi_voice.stt.__main__ import make_parser
from kiwi_voice.stt.models import may_switch
from tests.support.speech import espeak_pcm
from tests.support.wyoming_events import read_until as read_events
from tests.support.wyoming_events import send_audio
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(120)

MODEL = "tiny-random"
RATE, WIDTH, CHANNELS = 16000, 2, 1
MAX_AUDIO_SECONDS = 8
read_until = partial(read_events, limit=200)  # events before a test gives up


@pytest.fixture(scope="module")
def stt(
    offline_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("stt") / "kiwi-stt.log"
    service = start_service(
        "kiwi-stt",
        [
            "--data-dir",
            str(offline_models_dir / "whisper"),
            "--model",
            MODEL,
            "--cpu-threads",
            "1",
            "--workers",
            "2",
            "--max-audio-seconds",
            str(MAX_AUDIO_SECONDS),
        ],
        log,
    )
    yield service
    assert service.stop() == 0, service.log()  # SIGTERM is a clean, graceful exit


@pytest.fixture(scope="module")
def speech() -> bytes:
    return espeak_pcm("turn on the kitchen light")


async def transcribe(port: int, pcm: bytes, **fmt: int) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await send_audio(client, pcm, **fmt)
        return await read_until(client, "transcript-stop")


def assert_streamed_transcript(events: list[Event]) -> None:
    """transcript-start, one transcript-chunk per segment, transcript, transcript-stop."""
    types = [e.type for e in events]
    assert types[0] == "transcript-start", types
    assert types[-2:] == ["transcript", "transcript-stop"], types
    assert set(types[1:-2]) == {"transcript-chunk"}, types
    chunks = "".join(e.data["text"] for e in events[1:-2])
    final = events[-2].data
    assert final["text"] == chunks.strip()
    assert final["language"] == events[0].data["language"] == "en"


async def test_describe_is_accurate(stt: ServiceProcess) -> None:
    async with AsyncTcpClient("127.0.0.1", stt.port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, "info"))[-1])
    [program] = info.asr
    assert program.name == "kiwi-stt"
    assert program.installed
    assert program.supports_transcript_streaming
    assert program.version == KIWI_VERSION
    assert "2 worker" in (program.description or "")
    [model] = program.models
    assert model.name == MODEL
    assert model.installed
    assert "on disk" in (model.description or "")
    assert {"en", "de", "fr"} <= set(model.languages)
    assert model.attribution.url.startswith("https://")
    assert model.version == version("faster-whisper")
    assert not info.tts
    assert not info.wake


async def test_transcript_is_streamed_in_order(stt: ServiceProcess, speech: bytes) -> None:
    events = await transcribe(stt.port, speech)
    assert_streamed_transcript(events)
    assert len(events) >= 4  # at least one transcript-chunk


async def test_any_rate_width_and_channels_are_converted(
    stt: ServiceProcess, speech: bytes
) -> None:
    samples = np.frombuffer(speech, dtype="<i2").astype(np.float32) / 32768.0
    # 44.1 kHz stereo 32-bit and 8 kHz mono 8-bit (unsigned), made with numpy/scipy.
    from scipy.signal import resample_poly

    at_44k = resample_poly(samples, 441, 160)
    stereo_s32 = (np.repeat(at_44k, 2) * 2**30).astype("<i4").tobytes()
    at_8k = resample_poly(samples, 1, 2)
    mono_u8 = (np.clip(at_8k, -1, 1) * 127 + 128).astype(np.uint8).tobytes()
    for pcm, fmt in (
        (stereo_s32, {"rate": 44100, "width": 4, "channels": 2}),
        (mono_u8, {"rate": 8000, "width": 1, "channels": 1}),
    ):
        assert_streamed_transcript(await transcribe(stt.port, pcm, **fmt, chunk_bytes=4000))


async def test_concurrent_clients_share_the_model(stt: ServiceProcess, speech: bytes) -> None:
    results = await asyncio.gather(*(transcribe(stt.port, speech) for _ in range(3)))
    for events in results:
        assert_streamed_transcript(events)
    assert stt.log().count("Loaded whisper model") == 1


async def error_then_alive(client: AsyncTcpClient, code: str) -> Event:
    """The next event is an error with `code`, and the connection still answers a ping."""
    [error] = await read_until(client, "error")
    assert error.type == "error", error
    assert error.data["code"] == code, error
    assert error.data["text"]
    await client.write_event(Ping(text="still there?").event())
    [pong] = await read_until(client, "pong")
    assert pong.type == "pong"
    assert pong.data["text"] == "still there?"
    return error


async def test_bad_events_get_errors_and_the_connection_lives(
    stt: ServiceProcess, speech: bytes
) -> None:
    async with AsyncTcpClient("127.0.0.1", stt.port) as client:
        chunk = AudioChunk(rate=RATE, width=WIDTH, channels=CHANNELS, audio=b"\0\0" * 160)
        await client.write_event(chunk.event())
        await error_then_alive(client, "unexpected_event")

        bad_formats = [
            {"rate": 16000, "width": 5, "channels": 1},
            {"rate": 16000, "width": 2, "channels": 0},
            {"rate": 0, "width": 2, "channels": 1},
            {"rate": "fast", "width": 2, "channels": 1},
            {"width": 2, "channels": 1},
        ]
        for bad in bad_formats:
            await client.write_event(Event(type="audio-start", data=bad))
            await error_then_alive(client, "bad_audio")

        await client.write_event(Transcribe(language="xx").event())
        await error_then_alive(client, "bad_request")
        await client.write_event(Transcribe(name="large-v3").event())
        await error_then_alive(client, "unknown_model")

        # After all that, the same connection still transcribes.
        await client.write_event(Transcribe(language="en").event())
        await send_audio(client, speech)
        assert_streamed_transcript(await read_until(client, "transcript-stop"))


def _start() -> Event:
    return AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event()


def _chunk(audio: bytes, channels: int = CHANNELS) -> Event:
    return AudioChunk(rate=RATE, width=WIDTH, channels=channels, audio=audio).event()


FAILED_UTTERANCES = {
    "stop_before_start": ([AudioStop().event()], ["unexpected_event"]),
    "no_audio": ([_start(), AudioStop().event()], ["no_audio"]),
    # After an error mid-utterance its other chunks are dropped silently, and its
    # audio-stop, which the client waits on, gets the error again.
    "torn_frame": (
        [_start(), _chunk(b"\0" * 3), _chunk(b"\0\0" * 160), AudioStop().event()],
        ["bad_audio", "bad_audio"],
    ),
    "format_change": (
        [_start(), _chunk(b"\0" * 8, channels=2), AudioStop().event()],
        ["bad_audio", "bad_audio"],
    ),
    # Skipped unread at the framing layer.
    "huge_payload": (
        [_start(), _chunk(bytes(5 << 20)), AudioStop().event()],
        ["payload_too_large"] * 2,
    ),
    "too_long": (
        [
            _start(),
            *(_chunk(bytes(RATE * WIDTH)) for _ in range(MAX_AUDIO_SECONDS + 1)),
            AudioStop().event(),
        ],
        ["payload_too_large"] * 2,
    ),
}


@pytest.mark.parametrize("case", FAILED_UTTERANCES)
async def test_failed_utterance_is_answered_then_closed(
    case: str, stt: ServiceProcess, speech: bytes
) -> None:
    events, codes = FAILED_UTTERANCES[case]
    async with AsyncTcpClient("127.0.0.1", stt.port) as client:
        for event in events:
            await client.write_event(event)
        received = await read_until_closed(client)
    assert [e.type for e in received] == ["error"] * len(codes)
    assert [e.data["code"] for e in received] == codes
    # Closed, because HA's client ignores errors and waits for a transcript or the end.
    assert_streamed_transcript(await transcribe(stt.port, speech))


async def read_until_closed(client: AsyncTcpClient) -> list[Event]:
    events: list[Event] = []
    while (event := await asyncio.wait_for(client.read_event(), timeout=30)) is not None:
        events.append(event)
    return events


async def test_garbage_header_closes_only_that_connection(
    stt: ServiceProcess, speech: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stt.port)
    writer.write(b"this is not json\n")
    await writer.drain()
    error = await asyncio.wait_for(async_read_event(reader), timeout=10)
    assert error is not None
    assert error.type == "error"
    assert error.data["code"] == "bad_request"
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # then closed
    writer.close()
    assert_streamed_transcript(await transcribe(stt.port, speech))


async def test_client_leaving_mid_stream_costs_nothing(stt: ServiceProcess, speech: bytes) -> None:
    for _ in range(3):
        async with AsyncTcpClient("127.0.0.1", stt.port) as client:
            await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
            await client.write_event(
                AudioChunk(rate=RATE, width=WIDTH, channels=CHANNELS, audio=speech).event()
            )
            await client.write_event(AudioStop().event())
        # gone before any answer
    assert_streamed_transcript(await transcribe(stt.port, speech))
    assert stt.process.poll() is None


class _FailingHub(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(503, "model hub down for the test")

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def failing_hub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_failed_download_keeps_service_up(
    failing_hub: str, tmp_path: Path, speech: bytes
) -> None:
    """The model hub answers 503 (a closed port is covered by the TTS and common tests)."""
    data_dir = tmp_path / "whisper"
    service = start_service(
        "kiwi-stt",
        ["--data-dir", str(data_dir), "--model", "tiny", "--download-url", failing_hub],
        tmp_path / "stt.log",
        env={"HF_HUB_OFFLINE": "0"},
    )
    try:
        async with AsyncTcpClient("127.0.0.1", service.port) as client:
            await client.write_event(Describe().event())
            [model] = Info.from_event((await read_until(client, "info"))[-1]).asr[0].models
            assert model.installed
            assert "downloaded on first use" in (model.description or "")

            await send_audio(client, speech)
            [error] = await read_until_closed(client)
        assert error.data["code"] == "model_missing"
        assert "tiny" in error.data["text"]
        assert "download" in error.data["text"]

        async with AsyncTcpClient("127.0.0.1", service.port) as client:
            await client.write_event(Describe().event())
            [model] = Info.from_event((await read_until(client, "info"))[-1]).asr[0].models
            assert not model.installed
            assert "NOT AVAILABLE" in (model.description or "")
            assert model.languages == []
        assert service.process.poll() is None
        # Nothing half-downloaded is left where a later start would find it.
        assert not data_dir.exists() or not any(data_dir.iterdir())
        assert "Downloading whisper model tiny" in service.log()
    finally:
        assert service.stop() == 0


async def test_unknown_model_name_is_not_installed(tmp_path: Path) -> None:
    service = start_service(
        "kiwi-stt", ["--data-dir", str(tmp_path), "--model", "no-such-model"], tmp_path / "stt.log"
    )
    try:
        async with AsyncTcpClient("127.0.0.1", service.port) as client:
            await client.write_event(Describe().event())
            [model] = Info.from_event((await read_until(client, "info"))[-1]).asr[0].models
            assert not model.installed
            await send_audio(client, b"\0\0" * 1600)
            [error] = await read_until_closed(client)
        assert error.data["code"] == "model_missing"
    finally:
        assert service.stop() == 0


def test_help_states_concurrency() -> None:
    help_text = " ".join(make_parser().format_help().split())
    assert "--workers" in help_text
    assert "at most this many requests run at once, the rest queue (default: 1)" in help_text
    options = ["--uri", "--data-dir", "--download-dir", "--model", "--zeroconf", "--language"]
    options += ["--beam-size", "--compute-type", "--initial-prompt", "--vad-filter"]
    for option in options:
        assert option in help_text


async def test_model_switch_requests_are_checked(stt: ServiceProcess, speech: bytes) -> None:
    """kiwi-stt-load: a request without a model or with an unknown device is a bad request;
    switching to the model it runs answers at once; transcription goes on."""
    async with AsyncTcpClient("127.0.0.1", stt.port) as client:
        for data in ({}, {"model": MODEL, "device": "tpu"}):
            await client.write_event(Event("kiwi-stt-load", data))
            [error] = await read_until(client, "error")
            assert error.data["code"] == "bad_request"
        await client.write_event(Event("kiwi-stt-load", {"model": MODEL, "device": "cpu"}))
        loaded = (await read_until(client, "kiwi-stt-loaded"))[-1]
        assert loaded.data == {"model": MODEL, "device": "cpu", "seconds": 0.0}
    assert_streamed_transcript(await transcribe(stt.port, speech))


@pytest.mark.parametrize(
    ("policy", "peer", "allowed"),
    [
        ("local", "127.0.0.1", True),
        ("local", "::1", True),
        ("local", "local", True),
        ("local", "172.30.32.1", False),  # Home Assistant over the Supervisor's network
        ("local", "not an address", False),
        ("any", "192.168.1.20", True),
        ("off", "127.0.0.1", False),
    ],
)
def test_only_this_machine_may_switch_the_model(policy: str, peer: str, allowed: bool) -> None:
    assert may_switch(policy, peer) is allowed  # type: ignore[arg-type]
