"""kiwi-wake as a real process on a real port, driven by wyoming's AsyncTcpClient.

The models are openWakeWord's real pretrained ONNX models (from the 0.5.1 wheel) and the audio
is espeak-ng speech: "hey jarvis" fires `hey_jarvis` on clean espeak speech and ordinary
sentences stay far below the threshold (see /work/shared/TESTDATA.md).
"""

from __future__ import annotations

import asyncio
import http.server
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import resample_poly
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info, WakeProgram
from wyoming.ping import Ping
from wyoming.wake import Detect

from kiwi_voice.common.info import KIWI_VERSION
from tests.support import offline_models
from tests.support.ports import free_port
from tests.support.speech import espeak_pcm
from tests.support.waiting import until, until_async
from tests.support.wyoming_events import read_until as read_events
from tests.support.wyoming_events import send_audio
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(120)

RATE, WIDTH, CHANNELS = 16000, 2, 1
BUILTIN_WAKE_WORDS = set(offline_models.OPENWAKEWORD_WAKE_WORDS)
CUSTOM_ONNX = "kiwi_test_word"
CUSTOM_TFLITE = "only_tflite"
read_until = partial(read_events, limit=100)  # events before a test gives up
send_stream = partial(send_audio, chunk_bytes=2048)


@pytest.fixture(scope="module")
def custom_model_dir(offline_wakeword_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's folder: one ONNX model (alexa's, renamed) and one real .tflite model."""
    folder = tmp_path_factory.mktemp("custom-wake-words")
    (folder / f"{CUSTOM_ONNX}.onnx").symlink_to(offline_wakeword_dir / "alexa_v0.1.onnx")
    with zipfile.ZipFile(offline_models.openwakeword_wheel()) as wheel:
        tflite = wheel.read("openwakeword/resources/models/hey_mycroft_v0.1.tflite")
    (folder / f"{CUSTOM_TFLITE}.tflite").write_bytes(tflite)
    return folder


@pytest.fixture(scope="module")
def wake(
    offline_wakeword_dir: Path, custom_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("wake") / "kiwi-wake.log"
    args = ["--data-dir", str(offline_wakeword_dir), "--custom-model-dir", str(custom_model_dir)]
    service = start_service("kiwi-wake", [*args, "--workers", "2", "--no-download"], log)
    yield service
    assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log(), service.log()


@pytest.fixture(scope="module")
def hey_jarvis() -> bytes:
    return espeak_pcm("hey jarvis")


@pytest.fixture(scope="module")
def sentence() -> bytes:
    return espeak_pcm("the weather is nice today and I would like to go for a walk")


async def detect(
    port: int, pcm: bytes, names: list[str] | None = None, **stream: int
) -> list[Event]:
    """Every event the service sends for one stream (a ping after audio-stop marks the end)."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=names).event())
        await send_stream(client, pcm, **stream)
        await client.write_event(Ping(text="end").event())
        events = await read_until(client, "pong")
    assert events[-1].type == "pong", events
    return events[:-1]


def clip_ms(pcm: bytes) -> int:
    return len(pcm) // (RATE * WIDTH // 1000)


async def error_then_alive(client: AsyncTcpClient, code: str) -> None:
    """The next event is an error with `code`, and the connection still answers a ping."""
    [error] = await read_until(client, "error")
    assert (error.type, error.data.get("code")) == ("error", code), error
    assert error.data["text"]
    await client.write_event(Ping(text="alive?").event())
    [pong] = await read_until(client, "pong")
    assert pong.type == "pong", pong


async def test_describe_is_accurate(wake: ServiceProcess) -> None:
    async with AsyncTcpClient("127.0.0.1", wake.port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, "info"))[-1])
    [program] = info.wake
    assert program.name == "kiwi-wake"
    assert program.installed
    assert program.version == KIWI_VERSION
    assert "2 inference thread" in (program.description or "")
    assert "openWakeWord" in program.attribution.name
    models = {m.name: m for m in program.models}
    assert set(models) == BUILTIN_WAKE_WORDS | {CUSTOM_ONNX, CUSTOM_TFLITE}  # no feature models
    jarvis = models["hey_jarvis"]
    assert jarvis.installed
    assert jarvis.languages == ["en"]
    assert jarvis.version == "v0.1"
    assert jarvis.phrase == "hey jarvis" == jarvis.description
    assert jarvis.attribution.url == "https://github.com/dscripka/openWakeWord"
    custom = models[CUSTOM_ONNX]
    assert custom.installed
    assert custom.languages == []
    assert custom.attribution.name == "custom model"
    tflite = models[CUSTOM_TFLITE]  # a .tflite model runs on pyopen-wakeword's runtime
    assert tflite.installed
    assert tflite.description == "only tflite"
    assert not info.asr
    assert not info.tts


async def test_hey_jarvis_is_detected_with_name_and_stream_time(
    wake: ServiceProcess, hey_jarvis: bytes
) -> None:
    events = await detect(wake.port, hey_jarvis, ["hey_jarvis"])
    assert [e.type for e in events] == ["detection"], events  # no not-detected after a hit
    assert events[0].data["name"] == "hey_jarvis"
    # The clip has 1 s of silence before the words: the hit lies after it, inside the clip.
    assert 1000 < events[0].data["timestamp"] <= clip_ms(hey_jarvis)


async def test_a_sentence_is_not_detected(wake: ServiceProcess, sentence: bytes) -> None:
    assert [e.type for e in await detect(wake.port, sentence)] == ["not-detected"]


async def test_names_select_the_models_and_are_echoed(
    wake: ServiceProcess, hey_jarvis: bytes
) -> None:
    only_alexa = await detect(wake.port, hey_jarvis, ["alexa"])
    assert [e.type for e in only_alexa] == ["not-detected"]
    by_phrase = await detect(wake.port, hey_jarvis, ["Hey Jarvis"])
    assert [(e.type, e.data["name"]) for e in by_phrase] == [("detection", "Hey Jarvis")]
    default = await detect(wake.port, hey_jarvis)  # no names: every loaded wake word
    assert [(e.type, e.data["name"]) for e in default] == [("detection", "hey_jarvis")]


async def test_concurrent_streams_share_one_process(
    wake: ServiceProcess, hey_jarvis: bytes, sentence: bytes
) -> None:
    positive, negative, stamped = await asyncio.gather(
        detect(wake.port, hey_jarvis, ["hey_jarvis"], chunk_bytes=640),
        detect(wake.port, sentence, ["hey_jarvis"]),
        detect(wake.port, hey_jarvis, ["hey_jarvis"], chunk_bytes=4000, first_timestamp=50_000),
    )
    assert [e.type for e in positive] == ["detection"]
    assert [e.type for e in negative] == ["not-detected"]
    assert [e.type for e in stamped] == ["detection"]
    # Stream time continues from the client's own first chunk timestamp.
    assert 51_000 < stamped[0].data["timestamp"] <= 50_000 + clip_ms(hey_jarvis)
    assert wake.log().count("Wake words loaded") == 1


async def test_other_rates_and_channels_are_converted(
    wake: ServiceProcess, hey_jarvis: bytes
) -> None:
    samples = np.frombuffer(hey_jarvis, dtype="<i2").astype(np.float32)
    stereo_48k = np.repeat(resample_poly(samples, 3, 1), 2).astype("<i2").tobytes()
    events = await detect(
        wake.port, stereo_48k, ["hey_jarvis"], rate=48000, channels=2, chunk_bytes=7680
    )
    assert [e.type for e in events] == ["detection"]


async def test_refractory_time_separates_two_detections(
    wake: ServiceProcess, hey_jarvis: bytes
) -> None:
    events = await detect(wake.port, hey_jarvis * 2, ["hey_jarvis"])
    assert [e.type for e in events] == ["detection", "detection"], events
    first, second = (e.data["timestamp"] for e in events)
    assert second - first >= 2000  # the default refractory time, in stream time


async def test_unknown_wake_words_and_bad_requests_are_errors(
    wake: ServiceProcess, hey_jarvis: bytes
) -> None:
    async with AsyncTcpClient("127.0.0.1", wake.port) as client:
        await client.write_event(Detect(names=["ok_nabu"]).event())
        await error_then_alive(client, "unknown_model")
        await client.write_event(Event(type="detect", data={"names": "hey_jarvis"}))
        await error_then_alive(client, "bad_request")
        # The connection is still good for a real stream.
        await client.write_event(Detect(names=["hey_jarvis"]).event())
        await send_stream(client, hey_jarvis)
        [hit] = await read_until(client, "detection")
        assert hit.data["name"] == "hey_jarvis"


async def test_bad_input_gets_errors_and_the_server_lives(
    wake: ServiceProcess, hey_jarvis: bytes
) -> None:
    async with AsyncTcpClient("127.0.0.1", wake.port) as client:
        chunk = AudioChunk(rate=RATE, width=WIDTH, channels=CHANNELS, audio=b"\0\0" * 160)
        await client.write_event(chunk.event())
        await error_then_alive(client, "unexpected_event")
        await client.write_event(AudioStop().event())
        await error_then_alive(client, "unexpected_event")

        for bad in (
            {"rate": 16000, "width": 5, "channels": 1},
            {"rate": 16000, "width": 2, "channels": 0},
            {"rate": 0, "width": 2, "channels": 1},
            {"width": 2, "channels": 1},
        ):
            await client.write_event(Event(type="audio-start", data=bad))
            await error_then_alive(client, "bad_audio")
            await client.write_event(AudioStop().event())  # ends the refused stream quietly

        # A torn sample frame: one error, then the rest of that stream is dropped quietly.
        await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
        await client.write_event(AudioChunk(RATE, WIDTH, CHANNELS, b"\0" * 3).event())
        await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        await error_then_alive(client, "bad_audio")

        # 5 MiB in one chunk is over the 4 MiB payload limit: skipped, not read into memory.
        await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
        await client.write_event(AudioChunk(RATE, WIDTH, CHANNELS, b"\0" * (5 << 20)).event())
        await client.write_event(AudioStop().event())
        await error_then_alive(client, "payload_too_large")

    assert [e.type for e in await detect(wake.port, hey_jarvis)] == ["detection"]


async def test_a_client_leaving_mid_stream_leaves_nothing_behind(
    wake: ServiceProcess, hey_jarvis: bytes, sentence: bytes
) -> None:
    # 9 s of audio sent at once, far faster than real time, then the client hangs up.
    audio = (sentence * 3)[: 9 * RATE * WIDTH]
    client = AsyncTcpClient("127.0.0.1", wake.port)
    await client.connect()
    await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
    for offset in range(0, len(audio), 2560):
        piece = audio[offset : offset + 2560]
        await client.write_event(AudioChunk(RATE, WIDTH, CHANNELS, piece).event())
    await client.disconnect()

    pattern = re.compile(r"abandoned \(client left\); ([0-9.]+) s of its audio dropped unscored")
    # The server notices and drops what it had not scored yet.
    dropped = await until(lambda: pattern.search(wake.log()), lambda: f"a drop:\n{wake.log()}")
    assert float(dropped.group(1)) > 0
    assert [e.type for e in await detect(wake.port, hey_jarvis)] == ["detection"]
    assert "ERROR" not in wake.log()


@pytest.fixture
def model_server(offline_wakeword_dir: Path) -> Iterator[str]:
    """A local HTTP server offering the model files, as the openWakeWord release does."""

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(offline_wakeword_dir), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


async def wait_for_program(port: int, ready: Callable[[WakeProgram], bool]) -> WakeProgram:
    """Ask `describe` until `ready(program)` (background downloads take a moment)."""

    async def described() -> WakeProgram | None:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            [program] = Info.from_event((await read_until(client, "info"))[-1]).wake
        return program if ready(program) else None

    return await until_async(described, "the wake program ready", timeout_s=30, every_s=0.1)


async def test_missing_models_are_downloaded_in_the_background(
    tmp_path: Path, model_server: str, hey_jarvis: bytes
) -> None:
    data_dir = tmp_path / "openwakeword"
    args = [
        "--data-dir",
        str(data_dir),
        "--wake-word",
        "hey_jarvis",
        "--download-url",
        model_server,
    ]
    service = start_service("kiwi-wake", args, tmp_path / "kiwi-wake.log")
    try:
        program = await wait_for_program(service.port, lambda p: p.installed)
        assert [m.name for m in program.models if m.installed] == ["hey_jarvis"]
        # Only what was needed, complete, and no temporary files left behind.
        assert sorted(p.name for p in data_dir.iterdir()) == [
            "embedding_model.onnx",
            "hey_jarvis_v0.1.onnx",
            "melspectrogram.onnx",
        ]
        assert [e.type for e in await detect(service.port, hey_jarvis)] == ["detection"]
    finally:
        assert service.stop() == 0, service.log()


async def test_a_failed_download_keeps_the_service_up(tmp_path: Path, hey_jarvis: bytes) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = ["--data-dir", str(tmp_path / "empty"), "--download-url", nowhere]
    service = start_service("kiwi-wake", args, tmp_path / "kiwi-wake.log")
    try:
        program = await wait_for_program(service.port, lambda p: "failed" in (p.description or ""))
        assert not program.installed
        assert "melspectrogram.onnx" in (program.description or "")
        async with AsyncTcpClient("127.0.0.1", service.port) as client:
            await client.write_event(Detect(names=["hey_jarvis"]).event())
            await send_stream(client, hey_jarvis)
            await error_then_alive(client, "model_missing")
    finally:
        assert service.stop() == 0, service.log()


def test_scores_equal_openwakewords_own(offline_wakeword_dir: Path, hey_jarvis: bytes) -> None:
    """The shared-session engine computes exactly what openwakeword 0.6.0's Model.predict does."""
    from openwakeword.model import Model

    from kiwi_voice.wake.classifiers import load_classifier
    from kiwi_voice.wake.engine import DetectionSettings, WakeEngine
    from kiwi_voice.wake.features import FRAME_SAMPLES, FeatureModels

    models = offline_wakeword_dir
    features = FeatureModels(models / "melspectrogram.onnx", models / "embedding_model.onnx")
    jarvis = load_classifier("hey_jarvis", models / "hey_jarvis_v0.1.onnx")
    assert jarvis.batched  # its verifier `If` rewritten for a batch: same scores (below)
    reference = Model(
        wakeword_models=[str(models / "hey_jarvis_v0.1.onnx")],
        inference_framework="onnx",
        melspec_model_path=str(models / "melspectrogram.onnx"),
        embedding_model_path=str(models / "embedding_model.onnx"),
    )
    # openwakeword seeds its buffer with fresh random noise; give it the engine's fixed seed.
    reference.preprocessor.feature_buffer = features.seed_features.copy()
    samples = np.frombuffer(hey_jarvis, dtype="<i2")
    expected = [
        reference.predict(samples[i : i + FRAME_SAMPLES])["hey_jarvis_v0.1"]
        for i in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES)
    ]

    stream = WakeEngine(features, {"hey_jarvis": jarvis}, DetectionSettings()).open_stream(
        ["hey_jarvis"]
    )
    stream.trace = []
    stream.add_audio(hey_jarvis)
    while (audio := stream.take_frames(7)) is not None:  # uneven batches on purpose
        stream.score(audio)
    assert max(expected) > 0.5  # the clip does fire
    assert [score for _, score in stream.trace] == pytest.approx(
        expected[5:], abs=1e-6
    )  # both score 0 for 5 warm-up frames
