"""kiwi-wake on the real model pack: `.tflite` wake words and batched inference.

The models are the pinned model pack's (`make setup`): openWakeWord 0.5.1's `.onnx` files and
pyopen-wakeword 1.1.0's `.tflite` files in `openwakeword/tflite/` (okay_nabu is only there).
The speech is real synthesis: piper's joe (a neural voice of one real speaker) and espeak-ng.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.wake import Detect

from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.wake.batcher import WakeBatcher
from kiwi_voice.wake.classifiers import TfliteClassifier, load_classifier
from kiwi_voice.wake.engine import DetectionSettings, Hit, WakeEngine, WakeStream
from kiwi_voice.wake.features import FRAME_SAMPLES, FeatureModels
from tests.support.real_models import openwakeword_dir
from tests.support.speech import espeak_pcm, wav_pcm
from tests.support.voices import joe_wav
from tests.support.wyoming_events import read_until as read_events
from tests.support.wyoming_events import send_audio
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(180)

read_until = partial(read_events, limit=100)
USER_TFLITE = "my_jarvis"  # a user's own .tflite file (hey_jarvis's, renamed)


@pytest.fixture(scope="module")
def user_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user-wake-words")
    shutil.copy(
        openwakeword_dir() / "tflite" / "hey_jarvis.tflite", folder / f"{USER_TFLITE}.tflite"
    )
    return folder


@pytest.fixture(scope="module")
def wake(
    user_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("wake-real") / "kiwi-wake.log"
    args = ["--data-dir", str(openwakeword_dir()), "--custom-model-dir", str(user_model_dir)]
    service = start_service("kiwi-wake", [*args, "--workers", "2", "--no-download"], log)
    yield service
    assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log(), service.log()


async def detect(port: int, pcm: bytes, names: list[str]) -> list[tuple[str, str | None]]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=names).event())
        await send_audio(client, pcm, chunk_bytes=2048)
        await client.write_event(Ping(text="end").event())
        events = await read_until(client, "pong")
    return [(e.type, e.data.get("name")) for e in events[:-1]]


async def test_tflite_models_are_listed_like_onnx_ones(wake: ServiceProcess) -> None:
    async with AsyncTcpClient("127.0.0.1", wake.port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, "info"))[-1])
    models = {m.name: m for m in info.wake[0].models}
    # pyopen-wakeword's okay_nabu is offered; hey_jarvis keeps its .onnx file (batched).
    assert {"okay_nabu", "hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy", USER_TFLITE} <= set(
        models
    )
    nabu, jarvis = models["okay_nabu"], models["hey_jarvis"]
    assert nabu.installed
    assert jarvis.installed
    assert (nabu.description, nabu.phrase, nabu.languages) == ("okay nabu", "okay nabu", ["en"])
    assert nabu.attribution.name == jarvis.attribution.name  # openWakeWord's, built in
    user = models[USER_TFLITE]
    assert user.installed
    assert (user.description, user.languages) == ("my jarvis", [])
    assert user.attribution.name == "custom model"


@pytest.mark.parametrize(
    "clip",
    [
        pytest.param(lambda: wav_pcm(joe_wav("Okay, Nabu.")), id="piper-joe"),
        pytest.param(lambda: espeak_pcm("okay nabu", "en-us+m3", 130), id="espeak-m3"),
    ],
)
async def test_okay_nabu_tflite_detects_a_spoken_okay_nabu(wake: ServiceProcess, clip) -> None:  # type: ignore[no-untyped-def]
    pcm = clip()
    assert await detect(wake.port, pcm, ["okay_nabu"]) == [("detection", "okay_nabu")]
    # ... and only the phrase it is for.
    assert await detect(wake.port, espeak_pcm("hey jarvis"), ["okay_nabu"]) == [
        ("not-detected", None)
    ]


async def test_a_users_own_tflite_file_runs(wake: ServiceProcess) -> None:
    hit = await detect(wake.port, wav_pcm(joe_wav("Hey Jarvis.")), [USER_TFLITE])
    assert hit == [("detection", USER_TFLITE)]
    sentence = espeak_pcm("the weather is nice today and I would like to go for a walk")
    assert await detect(wake.port, sentence, [USER_TFLITE]) == [("not-detected", None)]


# -- batched inference ----------------------------------------------------------------------


def _engine() -> WakeEngine:
    models = openwakeword_dir()
    features = FeatureModels(models / "melspectrogram.onnx", models / "embedding_model.onnx")
    classifiers = {
        "hey_jarvis": load_classifier("hey_jarvis", models / "hey_jarvis_v0.1.onnx"),
        "alexa": load_classifier("alexa", models / "alexa_v0.1.onnx"),
        "okay_nabu": load_classifier("okay_nabu", models / "tflite" / "okay_nabu.tflite"),
    }
    assert classifiers["hey_jarvis"].batched
    assert classifiers["alexa"].batched
    assert isinstance(classifiers["okay_nabu"], TfliteClassifier)
    return WakeEngine(features, classifiers, DetectionSettings())


def _clips() -> list[bytes]:
    return [
        wav_pcm(joe_wav("Hey Jarvis.")),
        espeak_pcm("hey jarvis", "en-us+f2"),
        wav_pcm(joe_wav("Okay, Nabu.")),
        espeak_pcm("alexa", "en-us+m7"),
        espeak_pcm("the weather is nice today and I would like to go for a walk"),
        espeak_pcm("hey jasmine", "en-us+m3"),
    ]


def _open(engine: WakeEngine, index: int) -> WakeStream:
    # Streams listen for different sets, so a tick's classifier batches differ in size.
    selections = [["hey_jarvis", "alexa", "okay_nabu"], ["hey_jarvis"], ["okay_nabu", "alexa"]]
    stream = engine.open_stream(selections[index % len(selections)])
    stream.trace = []
    return stream


def test_batched_scores_equal_unbatched() -> None:
    engine = _engine()
    clips = _clips()

    alone: list[list[tuple[str, float]]] = []
    for index, clip in enumerate(clips):
        stream = _open(engine, index)
        stream.add_audio(clip)
        while (audio := stream.take_frames(3)) is not None:
            stream.score(audio)
        alone.append(stream.trace or [])

    # All streams together, each handing over uneven pieces, some joining late.
    streams = [_open(engine, index) for index in range(len(clips))]
    offsets = [0] * len(clips)
    rng = np.random.default_rng(3)
    for step in range(10_000):
        jobs = []
        for index, (stream, clip) in enumerate(zip(streams, clips, strict=True)):
            if step < index or offsets[index] >= len(clip):
                continue
            piece = int(rng.integers(1, 6)) * 2 * 1000
            stream.add_audio(clip[offsets[index] : offsets[index] + piece])
            offsets[index] += piece
            if (audio := stream.take_frames(4)) is not None:
                jobs.append((stream, audio))
        if not jobs and all(o >= len(c) for o, c in zip(offsets, clips, strict=True)):
            break
        engine.score_batch(jobs)
    together = [stream.trace or [] for stream in streams]

    for index in range(len(clips)):
        assert [name for name, _ in together[index]] == [name for name, _ in alone[index]]
        assert [score for _, score in together[index]] == pytest.approx(
            [score for _, score in alone[index]], abs=1e-4
        )
    # The clips do exercise the detectors: real positives score high, in both runs.
    assert max(score for name, score in together[0] if name == "hey_jarvis") > 0.9
    assert max(score for name, score in together[2] if name == "okay_nabu") > 0.5
    assert len(clips[0]) // 2 // FRAME_SAMPLES > 5


async def test_connections_waiting_together_share_one_batch() -> None:
    """The batcher hands everything queued while a worker was busy to one `score_batch`."""
    engine = _engine()
    batches: list[int] = []
    score_batch = engine.score_batch

    def recording(jobs: list[tuple[WakeStream, np.ndarray]]) -> list[list[Hit]]:
        batches.append(len(jobs))
        return score_batch(jobs)

    engine.score_batch = recording  # type: ignore[method-assign]
    executor = EngineExecutor("wake-test", 1)
    batcher = WakeBatcher(executor)
    clips = _clips()
    streams = [_open(engine, index) for index in range(len(clips))]
    try:
        for stream, clip in zip(streams, clips, strict=True):
            stream.add_audio(clip)
        first = [stream.take_frames(1000) for stream in streams]
        hits = await asyncio.gather(
            *(batcher.score(s, a) for s, a in zip(streams, first, strict=True) if a is not None)
        )
    finally:
        executor.shutdown()
    assert batches == [len(clips)]  # one pass for all six streams, not six
    assert len(hits) == len(clips)
    # Each stream's hits are its own: its phrase, for the wake words it listens for.
    assert [h.model for h in hits[0]] == ["hey_jarvis"]
    assert [h.model for h in hits[2]] == ["okay_nabu"]
    assert hits[4] == []  # the sentence
