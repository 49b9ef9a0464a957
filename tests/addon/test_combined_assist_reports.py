"""The hub hears of Assist turns that run through Kiwi's combined Wyoming endpoint.

Real processes: kiwi-stt, kiwi-tts, kiwi-wake (openWakeWord's hey_jarvis), kiwi-speaker and
kiwi-hub (the shared stack), and `python -m kiwi_voice.combined` in front of them with the hub's
URL and token file, as the launcher starts it. A Wyoming client does what Home Assistant's
Wyoming entities do (detect, transcribe, synthesize, each on its own connection); the hub's
event stream shows WAKE_WORD_DETECTED naming the client, SPEECH_RECOGNIZED, SPEAKER_IDENTIFIED
(the enrolled voice, identified from the very audio STT got), TTS_STARTED/TTS_FINISHED, and
STATE_CHANGED following the turn. With the hub gone, the endpoint still transcribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize
from wyoming.wake import Detect

from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import EventLog, is_subsequence
from tests.support.pipeline_stack import PipelineStack, stack_fixture
from tests.support.ports import free_port
from tests.support.speech import espeak_pcm, espeak_wav
from tests.support.voices import ENROL_SENTENCES
from tests.support.waiting import until_async

pytestmark = pytest.mark.timeout(120)
VOICE = "en-us+m3"
CHUNK = 2048

stack = stack_fixture(services=("stt", "tts", "wake", "speaker"))


@pytest.fixture
def combined(stack: PipelineStack, hub: HubProcess) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kiwi_voice.combined"),
            *("--uri", f"tcp://127.0.0.1:{port}"),
            *("--stt-uri", stack.uri("stt")),
            *("--tts-uri", stack.uri("tts")),
            *("--wake-uri", stack.uri("wake")),
            *("--speaker-uri", stack.uri("speaker")),
            *("--hub-url", hub.base_url),
            *("--hub-token-file", str(hub.data_dir / "api_token")),
        ],
        start_new_session=True,
    )
    try:
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.asynccontextmanager
async def wyoming(port: int) -> AsyncIterator[AsyncTcpClient]:
    async def connected() -> AsyncTcpClient | None:
        client = AsyncTcpClient("127.0.0.1", port)
        try:
            await client.connect()
            await client.write_event(Describe().event())
            await client.read_event()
        except OSError:
            return None
        return client

    client = await until_async(connected, "the combined endpoint answers", timeout_s=30)
    try:
        yield client
    finally:
        await client.disconnect()


async def send_audio(client: AsyncTcpClient, pcm: bytes) -> None:
    await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
    for offset in range(0, len(pcm), CHUNK):
        chunk = AudioChunk(rate=16000, width=2, channels=1, audio=pcm[offset : offset + CHUNK])
        await client.write_event(chunk.event())
    await client.write_event(AudioStop().event())


async def answer(client: AsyncTcpClient, event_type: str) -> Event:
    async with asyncio.timeout(60):
        while (event := await client.read_event()) is not None:
            if event.type == event_type:
                return event
    raise AssertionError(f"no {event_type}")


async def enroll(session: aiohttp.ClientSession, hub: HubProcess) -> str:
    params = {"name": "Anna", "priority": "0"}
    for sentence in ENROL_SENTENCES:
        async with session.post(
            f"{hub.base_url}/api/speakers/enroll",
            params=params,
            data=espeak_wav(sentence, VOICE).read_bytes(),
            headers={"Content-Type": "audio/wav"},
        ) as reply:
            assert reply.status == 200, await reply.text()
            params = {"id": (await reply.json())["id"]}
    return params["id"]


async def test_an_assist_turn_through_the_combined_endpoint_reaches_the_hub(
    hub: HubProcess, combined: int
) -> None:
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        anna = await enroll(session, hub)
        try:
            async with EventLog.connect(session, hub.ws_url("/api/events")) as events:
                async with wyoming(combined) as client:
                    await client.write_event(Detect(names=["hey_jarvis"]).event())
                    await send_audio(client, espeak_pcm("hey jarvis", VOICE))
                    detection = await answer(client, "detection")
                async with wyoming(combined) as client:
                    await client.write_event(Transcribe(language="en").event())
                    await send_audio(client, espeak_pcm("Turn on the kitchen light.", VOICE))
                    transcript = await answer(client, "transcript")
                async with wyoming(combined) as client:
                    await client.write_event(Synthesize(text="Done.").event())
                    await answer(client, "audio-stop")
                await events.wait("TTS_FINISHED")
                await events.wait("SPEAKER_IDENTIFIED")
                await events.wait("STATE_CHANGED", new="IDLE")
        finally:
            async with session.delete(f"{hub.base_url}/api/speakers/{anna}"):
                pass

    assert detection.data["name"] == "hey_jarvis"
    [wake] = events.of("WAKE_WORD_DETECTED")
    assert wake["text"] == "hey_jarvis"
    assert wake["session"] == "wyoming:127.0.0.1"  # the Wyoming client, as far as it is known
    [recognized] = events.of("SPEECH_RECOGNIZED")
    assert recognized["text"] == transcript.data["text"]
    [identified] = events.of("SPEAKER_IDENTIFIED")
    assert (identified["id"], identified["name"]) == (anna, "Anna")
    assert [e["text"] for e in events.of("TTS_STARTED")] == ["Done."]
    states = [(e["old"], e["new"]) for e in events.of("STATE_CHANGED")]
    assert states == [
        ("IDLE", "LISTENING"),
        ("LISTENING", "PROCESSING"),
        ("PROCESSING", "SPEAKING"),
        ("SPEAKING", "IDLE"),
    ]
    assert is_subsequence(
        ["WAKE_WORD_DETECTED", "SPEECH_RECOGNIZED", "TTS_STARTED", "TTS_FINISHED"], events.names()
    )


async def test_the_services_keep_working_when_the_hub_is_down(
    hub: HubProcess, combined: int
) -> None:
    hub.stop(stop_speaker=False)
    async with wyoming(combined) as client:
        await client.write_event(Transcribe(language="en").event())
        await send_audio(client, espeak_pcm("Turn on the kitchen light.", VOICE))
        transcript = await answer(client, "transcript")
    assert isinstance(transcript.data["text"], str)
