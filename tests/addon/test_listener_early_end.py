"""End of speech that waits no longer than needed (`vad_end_on_sentence`): 0.25 s into a pause
the utterance goes to STT; when its transcript is a whole sentence and the speaker is still
silent at 0.5 s, the utterance ends there instead of after the rest of `vad_silence_seconds`.

The listener runs for real (webrtcvad on espeak-ng speech, audio counted in 30 ms frames); STT,
pipeline and sink are fakes, so what is measured is how much silence the listener needed,
not how fast anything ran.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kiwi_voice.hub.pipeline.listener import (
    EARLY_END_SILENCE_SECONDS,
    Heard,
    Listener,
    ListenMode,
    ends_a_sentence,
)
from kiwi_voice.hub.pipeline.stt import Transcript
from kiwi_voice.hub.pipeline.turn import TurnRequest
from kiwi_voice.hub.pipeline.wake import EngineChoice
from tests.support.speech import espeak_pcm

FRAME = 960  # 30 ms of 16 kHz s16
VOICED = 300  # a sample louder than this is speech (espeak's clips are padded with zeros)
SILENCE_S = 2.0  # vad_silence_seconds here: far longer than the early end needs


class FakeStt:
    """Answers with `text`; holds each answer until `release` is set (when given)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.release: asyncio.Event | None = None
        self.calls = 0

    async def transcribe(self, audio: Any, language: str | None) -> Transcript:
        self.calls += 1
        if self.release is not None:
            await self.release.wait()
        return Transcript(self.text, "en")


class FakePipeline:
    def __init__(self) -> None:
        self.submitted: list[TurnRequest] = []

    async def listen(self, sink: Any) -> str:
        return "turn-1"

    async def heard_nothing(self, turn_id: str) -> None:
        pass

    def submit(self, request: TurnRequest) -> asyncio.Task[None]:
        self.submitted.append(request)
        return asyncio.get_running_loop().create_future()  # type: ignore[return-value]


class FakeSelector:
    current = EngineChoice("text", "hey jarvis", None, "test")

    def on_change(self, listener: Any) -> Any:
        return lambda: None


class FakeSink:
    label = "test"

    async def send_frame(self, frame: dict[str, Any]) -> None:
        pass


class FakeSettings:
    def __init__(self, **values: Any) -> None:
        self.values = {
            "language": "en",
            "max_utterance_seconds": 15.0,
            "listen_timeout_seconds": 6.0,
            "vad_silence_seconds": SILENCE_S,
            "vad_end_on_sentence": True,
            **values,
        }

    def get(self, name: str) -> Any:
        return self.values[name]


class FakeBus:
    def publish(self, *args: Any) -> None:
        pass


async def _listener(
    stt: FakeStt, *, answer_only: bool = False, **settings: Any
) -> tuple[Listener, FakePipeline, asyncio.Future[Heard]]:
    pipeline = FakePipeline()
    listener = Listener(
        sink=FakeSink(),  # type: ignore[arg-type]
        pipeline=pipeline,  # type: ignore[arg-type]
        selector=FakeSelector(),  # type: ignore[arg-type]
        stt=stt,  # type: ignore[arg-type]
        settings=FakeSettings(**settings),  # type: ignore[arg-type]
        bus=FakeBus(),  # type: ignore[arg-type]
        wake_uri="tcp://127.0.0.1:1",
        mode=ListenMode.CONTINUOUS,
    )
    heard = await listener.listen_now(answer_only=answer_only)
    return listener, pipeline, heard


async def _feed(listener: Listener, pcm: bytes) -> None:
    for offset in range(0, len(pcm), FRAME):
        await listener.feed(pcm[offset : offset + FRAME])
        await asyncio.sleep(0)  # let a finished transcript be looked at, as between chunks


async def _silence_until_submitted(listener: Listener, pipeline: FakePipeline) -> float:
    """Feed silence frame by frame until the turn is submitted; the seconds it took."""
    for frame in range(int(4 * SILENCE_S * 1000 / 30)):
        if pipeline.submitted:
            return frame * 0.03
        await _feed(listener, bytes(FRAME))
        for _ in range(3):
            await asyncio.sleep(0)
    raise AssertionError("no turn after twice vad_silence_seconds of silence")


@pytest.fixture(scope="module")
def command() -> bytes:
    """The words without the clip's trailing silence: the tests count the silence."""
    pcm = espeak_pcm("Turn on the kitchen light.")
    samples = memoryview(pcm).cast("h")
    last = max(i for i in range(len(samples)) if abs(samples[i]) > VOICED)
    return pcm[: 2 * (last + 1)]


@pytest.mark.parametrize(
    ("text", "ends"),
    [
        ("Turn on the kitchen light.", True),
        ("What time is it?", True),
        ("Stop!", True),
        ("Turn on the", False),
        ("How long does it take to?", False),  # Whisper punctuates fragments too
        ("Remind me to call my.", False),
        ("Turn the light on.", True),
        ("Turn on the...", False),
        ("Turn on the…", False),
        ("", False),
    ],
)
def test_a_whole_sentence_is_recognised(text: str, ends: bool) -> None:
    assert ends_a_sentence(text) is ends


async def test_a_whole_sentence_ends_the_utterance_at_the_pause(command: bytes) -> None:
    stt = FakeStt("Turn on the kitchen light.")
    listener, pipeline, heard = await _listener(stt)
    try:
        await _feed(listener, command)
        assert not heard.done()
        waited = await _silence_until_submitted(listener, pipeline)
        # At EARLY_END_SILENCE_SECONDS into the pause, not at vad_silence_seconds.
        assert EARLY_END_SILENCE_SECONDS <= waited <= EARLY_END_SILENCE_SECONDS + 0.1
        [request] = pipeline.submitted
        # The transcript made during the pause is the turn's: nothing is transcribed twice.
        assert request.early_transcript is not None
        assert request.early_transcript.done()
        assert stt.calls == 1
        assert (await heard).speech
    finally:
        await listener.close()


async def test_an_unfinished_sentence_waits_out_the_silence(command: bytes) -> None:
    listener, pipeline, _ = await _listener(FakeStt("Turn on the"))
    try:
        await _feed(listener, command)
        assert await _silence_until_submitted(listener, pipeline) >= SILENCE_S
    finally:
        await listener.close()


async def test_the_setting_off_waits_out_the_silence(command: bytes) -> None:
    stt = FakeStt("Turn on the kitchen light.")
    listener, pipeline, _ = await _listener(stt, vad_end_on_sentence=False)
    try:
        await _feed(listener, command)
        assert await _silence_until_submitted(listener, pipeline) >= SILENCE_S
        [request] = pipeline.submitted
        assert request.early_transcript is not None  # early STT still saves the wait for STT
    finally:
        await listener.close()


@pytest.mark.parametrize("transcript_late", [False, True])
async def test_speech_after_a_short_pause_keeps_the_utterance_open(
    command: bytes, transcript_late: bool
) -> None:
    """A hesitation of 0.42 s after what reads as a sentence ends nothing, whether its
    transcript is back during the pause or only after the speaker went on; the turn gets the
    whole utterance."""
    stt = FakeStt("Turn on the kitchen light.")
    if transcript_late:
        stt.release = asyncio.Event()
    listener, pipeline, _ = await _listener(stt)
    try:
        await _feed(listener, command)
        await _feed(listener, bytes(FRAME * 14))  # 0.42 s: past the early STT's 0.25 s
        assert stt.calls == 1
        assert not pipeline.submitted
        words = command[2 * _voiced_start(command) :]  # no leading silence: no second pause
        await _feed(listener, words[: len(words) // 2])  # the speaker goes on
        if stt.release is not None:
            stt.release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert not pipeline.submitted
        await _silence_until_submitted(listener, pipeline)
        [request] = pipeline.submitted
        assert len(request.audio or b"") > len(command)
    finally:
        await listener.close()


async def test_an_answer_ends_at_the_pause_and_is_transcribed_once(command: bytes) -> None:
    """Home Assistant's ask_question: the answer is handed back, from the pause's transcript."""
    stt = FakeStt("The kitchen.")
    listener, pipeline, heard = await _listener(stt, answer_only=True)
    try:
        await _feed(listener, command)
        for _ in range(int(0.7 / 0.03)):  # well short of vad_silence_seconds
            await _feed(listener, bytes(FRAME))
        answer = await asyncio.wait_for(heard, 5)
        assert (answer.speech, answer.text) == (True, "The kitchen.")
        assert stt.calls == 1
        assert not pipeline.submitted  # an answer is no turn
    finally:
        await listener.close()


async def test_a_click_before_the_command_does_not_end_it(command: bytes) -> None:
    """A blip of sound and a pause before the command: Whisper may make a sentence of it
    ("Thank you."), but too little was said to end anything; the command is the turn's."""
    stt = FakeStt("Thank you.")
    listener, pipeline, _ = await _listener(stt)
    start = 2 * _voiced_start(command)  # past espeak's leading silence
    blip = command[start : start + 2 * int(0.15 * 16_000)]
    try:
        await _feed(listener, blip)
        await _feed(listener, bytes(FRAME * 20))  # 0.6 s: the blip's early STT comes back
        assert stt.calls == 1
        assert not pipeline.submitted
        await _feed(listener, command)
        await _silence_until_submitted(listener, pipeline)
        [request] = pipeline.submitted
        assert len(request.audio or b"") > len(command) - start  # the whole command is in it
    finally:
        await listener.close()


def _voiced_start(pcm: bytes) -> int:
    samples = memoryview(pcm).cast("h")
    return next(i for i in range(len(samples)) if abs(samples[i]) > VOICED)
