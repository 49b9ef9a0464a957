"""SIGKILL each Wyoming service mid-utterance while the launcher `kiwi` supervises the stack.

For each of stt, speaker, tts and wake: a turn is under way (the user is speaking, or Kiwi is),
the service is killed with SIGKILL, and
- an ERROR event names the service as its source,
- the hub stays up (same process, /api/health answers),
- `kiwi` starts the service again on its port, and the next turn works.
The seconds from the service answering `describe` again to the next turn's end are printed
(pytest -s) and only checked against a generous bound: speed belongs to benchmarks.

Everything is real: `python -m kiwi_voice.launcher` with the offline models, the hub and the
services it starts, a local Home Assistant and a local Claude, aiohttp WebSocket clients.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import aiohttp
import pytest

from tests.support.launcher_stack import LauncherStack, describe_or_none, start_launcher_stack
from tests.support.pipeline_client import AudioClient, EventLog
from tests.support.speech import espeak_pcm
from tests.support.waiting import until, until_async

pytestmark = [pytest.mark.timeout(300)]

BACK_LIMIT_S = 60.0  # the launcher's backoff (1 s) plus the service loading its engine
TURN_LIMIT_S = 30.0
SILENCE = b"\x00\x00" * 1600  # 100 ms


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LauncherStack]:
    stack = start_launcher_stack(tmp_path_factory.mktemp("faults-services"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def recovery_s() -> Iterator[dict[str, float]]:
    """Seconds from each service being back to the next turn's end (printed for the docs)."""
    seconds: dict[str, float] = {}
    yield seconds
    print("seconds from the service back to the next turn's end:", seconds)


@pytest.fixture
async def events(stack: LauncherStack) -> AsyncIterator[EventLog]:
    async with (
        aiohttp.ClientSession() as http,
        EventLog.connect(http, stack.url("/api/events")) as log,
    ):
        yield log


async def _error_from(events: EventLog, source: str) -> dict[str, object]:
    error = await events.wait("ERROR", wait_s=TURN_LIMIT_S, source=source)
    return error["data"]


async def _kill(stack: LauncherStack, name: str) -> None:
    os.kill(stack.child_pid(name), signal.SIGKILL)


async def _back(stack: LauncherStack, name: str, recovery_s: dict[str, float]) -> float:
    """Wait until the launcher restarted `name` and it can work; when that happened.

    kiwi-speaker listens at once and loads its encoder after (identify requests wait for it):
    for it, "back" is when `describe` says the encoder is loaded, and the seconds it listened
    before that are recorded too."""
    listening_at = None

    async def working() -> bool:
        nonlocal listening_at
        info = await asyncio.to_thread(describe_or_none, stack.ports[name])
        if info is not None and listening_at is None:
            listening_at = time.monotonic()
        return info is not None and (name != "speaker" or _encoder_loaded(info))

    await until_async(
        working,
        lambda: f"{name} back:\n{stack.output()[-4000:]}",
        timeout_s=BACK_LIMIT_S,
        every_s=0.1,
    )
    ready_at = time.monotonic()
    if name == "speaker" and listening_at is not None:
        recovery_s["speaker_listening_before_encoder_loaded"] = round(ready_at - listening_at, 2)
    return ready_at


def _encoder_loaded(info: dict[str, Any]) -> bool:
    models = info.get("speaker", [{}])[0].get("models", [{}])
    return "(loaded from" in str(models[0].get("description", ""))


async def _hub_is_the_same_process(stack: LauncherStack, hub_pid: int) -> None:
    assert stack.child_pid("hub") == hub_pid, "the hub was restarted"
    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.base_url + "/api/health") as answer,
    ):
        assert answer.status == 200


async def _push_to_talk(
    client: AudioClient, pcm: bytes, during: Awaitable[None] | None = None
) -> dict[str, object]:
    """Speak `pcm` with push-to-talk; run `during` (a coroutine) halfway; the turn's end frame."""
    ends = len(client.frames("end"))
    await client.send({"type": "start_speaking"})
    half = len(pcm) // 2 // 3200 * 3200
    await client.send_audio(pcm[:half])
    if during is not None:
        await during
    await client.send_audio(pcm[half:])
    await client.send({"type": "end_speaking"})
    await client.wait(lambda _r: len(client.frames("end")) > ends, TURN_LIMIT_S)
    return client.frames("end")[ends]


COMMAND = espeak_pcm("what is the weather like tomorrow")


@pytest.mark.parametrize("name", ["stt", "speaker"])
async def test_killing_a_service_that_hears_the_user(
    stack: LauncherStack, events: EventLog, recovery_s: dict[str, float], name: str
) -> None:
    hub_pid = stack.child_pid("hub")
    async with (
        aiohttp.ClientSession() as http,
        AudioClient.connect(
            http, stack.url("/api/audio"), hello={"mode": "push_to_talk"}
        ) as client,
    ):
        end = await _push_to_talk(client, COMMAND, during=_kill(stack, name))
        error = await _error_from(events, name)
        assert error["message"]
        assert error["turn_id"] == end["turn_id"]
        await _hub_is_the_same_process(stack, hub_pid)

        back_at = await _back(stack, name, recovery_s)
        before = len(events.events)
        end = await _push_to_talk(client, COMMAND)
        recovery_s[name] = round(time.monotonic() - back_at, 2)
    turn_events = [
        e for e in events.events[before:] if e["data"].get("turn_id") in (None, end["turn_id"])
    ]
    assert not [e for e in turn_events if e["event"] == "ERROR"], turn_events
    names = [e["event"] for e in turn_events]
    assert "SPEECH_RECOGNIZED" in names
    assert "SPEAKER_IDENTIFIED" in names
    assert not client.frames("error", turn_id=end["turn_id"])


async def test_killing_tts_while_kiwi_speaks(
    stack: LauncherStack, events: EventLog, recovery_s: dict[str, float]
) -> None:
    hub_pid = stack.child_pid("hub")
    # Claude's answer stops after its first sentence until released: Kiwi is speaking it when
    # the TTS service dies, and the next sentences find no TTS.
    stack.claude.hold_after_tokens = 5  # "Hello from the fake Claude."
    try:
        async with (
            aiohttp.ClientSession() as http,
            AudioClient.connect(http, stack.url("/api/audio"), hello={}) as client,
        ):
            await client.send({"type": "text_input", "text": "tell me about the weather"})
            await client.wait(lambda r: r.audio is not None, TURN_LIMIT_S)  # Kiwi speaks
            await _kill(stack, "tts")
            stack.claude.release()
            end = await client.wait_frame("end", TURN_LIMIT_S)
            error = await _error_from(events, "tts")
            assert error["turn_id"] == end["turn_id"]
            assert client.frames("error", turn_id=end["turn_id"])
            await _hub_is_the_same_process(stack, hub_pid)

            stack.claude.hold_after_tokens = None
            back_at = await _back(stack, "tts", recovery_s)
            audio_before = client.audio_bytes()
            ends = len(client.frames("end"))
            await client.send({"type": "text_input", "text": "and the day after?"})
            await client.wait(lambda _r: len(client.frames("end")) > ends, TURN_LIMIT_S)
            last = client.frames("end")[-1]
            recovery_s["tts"] = round(time.monotonic() - back_at, 2)
    finally:
        stack.claude.hold_after_tokens = None
        stack.claude.release()
    assert last["interrupted"] is False
    assert not client.frames("error", turn_id=last["turn_id"])
    assert client.audio_bytes() > audio_before, "the next answer was spoken"


async def test_killing_wake_while_the_microphone_streams(
    stack: LauncherStack, events: EventLog, recovery_s: dict[str, float]
) -> None:
    hub_pid = stack.child_pid("hub")
    async with (
        aiohttp.ClientSession() as http,
        AudioClient.connect(http, stack.url("/api/audio")) as client,
    ):
        # Kiwi's plain protocol: binary PCM only, continuous wake-word listening.
        chunks_sent = [0]
        streaming = asyncio.create_task(_stream_silence(client, chunks_sent))
        try:
            await until(lambda: chunks_sent[0] >= 5, "the microphone streams")
            await _kill(stack, "wake")
            error = await _error_from(events, "wake")
            assert error["message"]
            await _hub_is_the_same_process(stack, hub_pid)
            back_at = await _back(stack, "wake", recovery_s)
        finally:
            streaming.cancel()
        # The next utterance with the wake word goes through, whenever the hub reconnected.
        utterance = espeak_pcm("hey jarvis") + COMMAND
        deadline = time.monotonic() + TURN_LIMIT_S
        while not events.of("WAKE_WORD_DETECTED"):
            assert time.monotonic() < deadline, "the wake word was never heard again"
            await client.send_audio(utterance, pace_s=0.01)
            await client.send_audio(SILENCE * 10, pace_s=0.01)
        await events.wait("TURN_METRICS", wait_s=TURN_LIMIT_S)
        recovery_s["wake"] = round(time.monotonic() - back_at, 2)


async def _stream_silence(client: AudioClient, chunks_sent: list[int]) -> None:
    while True:
        await client.send_audio(SILENCE)
        chunks_sent[0] += 1
        await asyncio.sleep(0.1)  # a microphone's pace
