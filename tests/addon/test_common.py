"""kiwi_voice.common: audio conversion, bounded framing, model store, engine executor."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wyoming.audio import AudioChunk
from wyoming.event import Event, async_write_event

from kiwi_voice.common.audio import (
    PcmFormat,
    StreamingConverter,
    Utterance,
    float_to_pcm16,
    pcm_to_float_mono,
    resample,
)
from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.framing import (
    FrameLimits,
    MalformedFrame,
    OversizedEvent,
    read_event_bounded,
)
from kiwi_voice.common.info import Availability
from kiwi_voice.common.model_store import DownloadError, ModelStore
from tests.support.ports import free_port
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(60)


def tone(frequency: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


# -- audio ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_utterance_converts_any_format_to_16k_mono(width: int, channels: int, rate: int) -> None:
    source = tone(440.0, rate)
    ints = np.round(source * (2 ** (8 * width - 1) - 1)).astype(np.int64)
    if width == 1:
        ints = ints + 128  # 8-bit PCM is unsigned
    interleaved = np.repeat(ints, channels)
    little_endian = interleaved.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :width]
    pcm = little_endian.tobytes()

    utterance = Utterance(PcmFormat(rate, width, channels), max_seconds=5)
    for offset in range(0, len(pcm), 4096 * width * channels):
        chunk = pcm[offset : offset + 4096 * width * channels]
        utterance.add(AudioChunk(rate=rate, width=width, channels=channels, audio=chunk))
    converted = utterance.to_float_mono()

    assert converted.dtype == np.float32
    assert abs(len(converted) - 16000) <= 1
    assert dominant_frequency(converted, 16000) == pytest.approx(440.0, abs=2.0)
    assert float(np.max(np.abs(converted))) == pytest.approx(0.5, abs=0.05)


def test_stereo_channels_are_mixed_not_dropped() -> None:
    left, right = tone(300.0, 16000), tone(700.0, 16000)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    mono = pcm_to_float_mono(float_to_pcm16(stereo), PcmFormat(16000, 2, 2))
    peaks = np.abs(np.fft.rfft(mono))
    freqs = np.fft.rfftfreq(len(mono), 1 / 16000)
    strongest = sorted(freqs[np.argsort(peaks)[-2:]])
    assert strongest == pytest.approx([300.0, 700.0], abs=2.0)


def test_streaming_converter_matches_whole_signal_conversion() -> None:
    source = tone(1000.0, 48000)
    pcm = float_to_pcm16(source)
    converter = StreamingConverter()
    fmt = PcmFormat(48000, 2, 1)
    streamed = b"".join(converter.convert(pcm[i : i + 1920], fmt) for i in range(0, len(pcm), 1920))
    samples = np.frombuffer(streamed, dtype="<i2").astype(np.float32) / 32768.0
    assert abs(len(samples) - 16000) <= 2
    assert dominant_frequency(samples, 16000) == pytest.approx(1000.0, abs=2.0)
    whole = resample(source, 48000, 16000)
    # audioop's linear interpolation and scipy's polyphase filter agree closely on a tone.
    assert float(np.max(np.abs(samples[100:15900] - whole[100:15900]))) < 0.05
    with pytest.raises(ServiceError) as changed:
        converter.convert(pcm[:100], PcmFormat(16000, 2, 1))
    assert changed.value.code == ErrorCode.BAD_AUDIO


@pytest.mark.parametrize(
    "data",
    [
        {"rate": 16000, "width": 0, "channels": 1},
        {"rate": 16000, "width": 8, "channels": 1},
        {"rate": 16000, "width": 2, "channels": 0},
        {"rate": 16000, "width": 2, "channels": 99},
        {"rate": 10, "width": 2, "channels": 1},
        {"rate": None, "width": 2, "channels": 1},
        {"width": 2, "channels": 1},
    ],
)
def test_unsupported_formats_are_bad_audio(data: dict[str, object]) -> None:
    with pytest.raises(ServiceError) as error:
        PcmFormat.from_event_data(data)
    assert error.value.code == ErrorCode.BAD_AUDIO
    assert error.value.event().type == "error"


@given(st.integers(1, 4), st.integers(1, 8), st.binary(max_size=200))
def test_payload_frames_are_checked(width: int, channels: int, payload: bytes) -> None:
    fmt = PcmFormat(16000, width, channels)
    if len(payload) % (width * channels):
        with pytest.raises(ServiceError):
            fmt.check_payload(payload)
    else:
        fmt.check_payload(payload)
        assert len(pcm_to_float_mono(payload, fmt)) == len(payload) // (width * channels)


def test_utterance_limits_and_format_changes() -> None:
    utterance = Utterance(PcmFormat(16000, 2, 1), max_seconds=1.0)
    utterance.add(AudioChunk(16000, 2, 1, bytes(16000)))
    with pytest.raises(ServiceError) as too_long:
        utterance.add(AudioChunk(16000, 2, 1, bytes(16002)))
    assert too_long.value.code == ErrorCode.PAYLOAD_TOO_LARGE
    with pytest.raises(ServiceError) as other_format:
        utterance.add(AudioChunk(8000, 2, 1, bytes(2)))
    assert other_format.value.code == ErrorCode.BAD_AUDIO
    assert utterance.seconds == pytest.approx(0.5)


# -- framing -------------------------------------------------------------------------


async def test_oversized_events_are_skipped_and_the_stream_stays_in_sync() -> None:
    received: list[object] = []
    done = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = FrameLimits(max_data_bytes=1000, max_payload_bytes=1000)
        while (result := await read_event_bounded(reader, limits)) is not None:
            received.append(result)
        writer.close()
        done.set()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    await async_write_event(Event("audio-chunk", {"rate": 1}, payload=bytes(5000)), writer)
    await async_write_event(Event("synthesize", {"text": "x" * 5000}), writer)
    await async_write_event(Event("ping", {"text": "after"}, payload=b"ok"), writer)
    writer.write(b'{"type": ["not", "a", "string"]}\n')
    await writer.drain()
    writer.close()
    await asyncio.wait_for(done.wait(), 10)
    server.close()

    assert received[0] == OversizedEvent("audio-chunk", 5000, 1000)
    assert isinstance(received[1], OversizedEvent)
    assert received[1].event_type == "synthesize"
    assert received[2] == Event("ping", {"text": "after"}, payload=b"ok")
    assert isinstance(received[3], MalformedFrame)


# -- model store ---------------------------------------------------------------------


class _QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietFileHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_lookup_is_ordered_and_offline(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "model").mkdir(parents=True)
    (second / "model").mkdir(parents=True)
    (first / "model" / "model.bin").write_bytes(b"1")
    (second / "model" / "model.bin").write_bytes(b"2")
    (second / "model" / "config.json").write_text("{}")
    (first / "voice.onnx").write_bytes(b"")  # empty files do not count
    (second / "voice.onnx").write_bytes(b"v")
    store = ModelStore([first, second], download_dir=tmp_path / "downloads")
    assert store.find_dir("model", ["model.bin", "config.json"]) == second / "model"
    assert store.find_dir("model", ["model.bin"]) == first / "model"
    assert store.find_file("voice.onnx") == second / "voice.onnx"
    assert store.find_file("missing.onnx") is None
    # ensure() never calls the downloader for what is on disk.
    assert store.ensure("voice", lambda: store.find_file("voice.onnx"), _must_not_run) == (
        second / "voice.onnx"
    )


def _must_not_run() -> Path:
    raise AssertionError("downloaded although the model is on disk")


def test_download_is_atomic_and_logged(
    file_server: tuple[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, root = file_server
    (root / "model.bin").write_bytes(bytes(range(256)) * 4000)
    store = ModelStore([tmp_path / "data"], download_dir=tmp_path / "data")
    with caplog.at_level("INFO"):
        path = store.download_file(f"{url}/model.bin", "sub/model.bin", label="test model")
    assert path.read_bytes() == (root / "model.bin").read_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["model.bin"]
    assert "Downloading test model (1.0 MB)" in caplog.text
    assert "Downloaded test model: 1.0 MB" in caplog.text


@pytest.mark.parametrize("where", ["missing_file", "closed_port"])
def test_failed_download_leaves_nothing_and_is_remembered(
    where: str, file_server: tuple[str, Path], tmp_path: Path
) -> None:
    url = (
        f"{file_server[0]}/nope.bin"
        if where == "missing_file"
        else f"http://127.0.0.1:{free_port()}/x"
    )
    models = tmp_path / "models"
    store = ModelStore([models], download_dir=models, retry_cooldown_s=60)
    attempts: list[int] = []

    def download() -> Path:
        attempts.append(1)
        return store.download_file(url, "model.bin")

    for _ in range(3):
        with pytest.raises(DownloadError) as error:
            store.ensure("model", lambda: store.find_file("model.bin"), download)
        assert error.value.code == ErrorCode.MODEL_MISSING
        assert error.value.not_found == (where == "missing_file")
    assert len(attempts) == 1  # inside the cool-down the failure is repeated, not retried
    assert list(models.iterdir()) == []
    failure = store.failure("model")
    assert failure is not None
    assert "download of model.bin failed" in failure.reason
    assert not Availability.missing(failure.reason).installed


def test_staging_dir_appears_only_when_complete(tmp_path: Path) -> None:
    store = ModelStore([tmp_path], download_dir=tmp_path)

    def interrupted_download() -> None:
        with store.staging_dir("model") as staging:
            (staging / "model.bin").write_bytes(b"half")
            raise RuntimeError("network went away")

    with pytest.raises(RuntimeError):
        interrupted_download()
    assert list(tmp_path.iterdir()) == []
    with store.staging_dir("model") as staging:
        (staging / "model.bin").write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (tmp_path / "model" / "model.bin").read_bytes() == b"whole"


# -- executor ------------------------------------------------------------------------


async def test_run_is_off_the_loop_and_bounded() -> None:
    executor = EngineExecutor("test", workers=2)
    running: list[int] = []
    peak: list[int] = []
    lock = threading.Lock()

    def work() -> str:
        with lock:
            running.append(1)
            peak.append(len(running))
        time.sleep(0.05)  # a blocking engine call: the work that must not overlap a third
        with lock:
            running.pop()
        return threading.current_thread().name

    names = await asyncio.gather(*(executor.run(work) for _ in range(6)))
    executor.shutdown()
    assert max(peak) == 2
    assert all(name.startswith("test-engine") for name in names)


async def test_iterate_streams_items_and_stops_when_the_consumer_leaves() -> None:
    executor = EngineExecutor("test", workers=1)
    made: list[int] = []

    def produce() -> Iterator[int]:
        for n in range(100):
            made.append(n)
            yield n

    received: list[int] = []
    async with aclosing(executor.iterate(produce, max_ahead=2)) as items:
        async for item in items:
            received.append(item)
            # The worker never gets more than two items ahead of what was consumed.
            assert len(made) <= len(received) + 2
            if item == 4:
                break
    await asyncio.sleep(0.2)  # time for a worker that ignored the departure to run ahead
    executor.shutdown()
    assert received == [0, 1, 2, 3, 4]
    assert len(made) <= 7


async def test_iterate_passes_errors_to_the_consumer() -> None:
    executor = EngineExecutor("test", workers=1)

    def produce() -> Iterator[int]:
        yield 1
        raise ServiceError(ErrorCode.ENGINE_FAILED, "engine broke")

    received: list[int] = []

    async def consume() -> None:
        async with aclosing(executor.iterate(produce)) as items:
            async for item in items:
                received.append(item)

    with pytest.raises(ServiceError, match="engine broke"):
        await consume()
    executor.shutdown()
    assert received == [1]


async def test_iterate_drops_queued_work_once_cancelled() -> None:
    executor = EngineExecutor("test", workers=1)
    release = threading.Event()
    busy = asyncio.ensure_future(executor.run(release.wait, 10))
    started: list[bool] = []

    def produce() -> Iterator[int]:
        started.append(True)
        yield 1

    client_gone = [False]
    asked = [0]  # how often the executor asked whether the client left
    received: list[int] = []

    def gone() -> bool:
        asked[0] += 1
        return client_gone[0]

    async def consume() -> None:
        async with aclosing(executor.iterate(produce, cancelled=gone)) as items:
            async for item in items:
                received.append(item)

    consumer = asyncio.ensure_future(consume())
    # Asked once: the work was handed to the pool and waits behind the busy worker.
    await until(lambda: asked[0], "the executor polls while the work is queued")
    client_gone[0] = True
    await asyncio.wait_for(consumer, 5)
    release.set()
    await busy
    await asyncio.sleep(0.1)  # time for the pool to start the dropped work, if it wrongly would
    executor.shutdown()
    assert received == []
    assert started == []  # the engine never started work for the departed client
