"""Turns that do not go to plan: barge-in, stop, two clients at once, services that fail.

Real processes: kiwi-hub, kiwi-tts (restarted on its port after being killed), the local Home
Assistant and Anthropic servers. No STT or speaker service runs here, which is itself the
"service down" case for push-to-talk.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import AudioClient, EventLog
from tests.support.pipeline_stack import PipelineStack, restart_service, stack_fixture
from tests.support.speech import espeak_pcm

pytestmark = pytest.mark.timeout(60)
FIRST_SENTENCE_TOKENS = 5  # "Hello from the fake Claude. " of the fake's echo reply


stack = stack_fixture(services=("tts",))


@pytest.fixture
def claude_holds(stack: PipelineStack) -> Iterator[None]:
    """Claude's reply stops after its first sentence until `release()`."""
    assert stack.claude is not None
    stack.claude.hold_after_tokens = FIRST_SENTENCE_TOKENS
    yield
    stack.claude.hold_after_tokens = None
    stack.claude.release()


def _audio_after(client: AudioClient, index: int) -> int:
    return sum(1 for r in client.received if r.audio is not None and r.index > index)


async def _speaking_turn(client: AudioClient, events: EventLog) -> str:
    """Ask Claude something; return the turn id once its first sentence is being heard."""
    await client.send({"type": "text_input", "text": "tell me a long story"})
    start = await client.wait_frame("audio_start")
    await events.wait("TTS_STARTED")
    return str(start["turn_id"])


@pytest.mark.usefixtures("claude_holds")
async def test_interrupt_stops_the_answer_and_no_stale_audio_follows(
    stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.claude is not None
    abandoned = stack.claude.abandoned_streams
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
    ):
        turn_id = await _speaking_turn(client, events)
        await client.send({"type": "interrupt"})
        end = await client.wait_frame("end", turn_id=turn_id)
        metrics = await events.wait("TURN_METRICS", turn_id=turn_id)
        stop_index = client.index_of("stop_play", turn_id=turn_id)
        # Let the held reply go on: the hub must have dropped it (the stream is abandoned).
        stack.claude.release()
        assert await asyncio.to_thread(stack.claude.wait_abandoned, abandoned + 1)
        await client.send({"type": "ping"})
        await client.wait_frame("pong")

    assert end["interrupted"] is True
    assert end["text"] == "Hello from the fake Claude."  # the sentence heard, not the rest
    assert _audio_after(client, stop_index) == 0
    assert client.index_of("end", turn_id=turn_id) > stop_index
    assert events.of("TTS_FINISHED")[-1]["interrupted"] is True
    assert events.of("LLM_COMPLETE") == []
    session = f"browser:{client.frames('hello_ack')[0]['session_id']}"
    assert events.of("STATE_CHANGED")[-1] == {"old": "SPEAKING", "new": "IDLE", "session": session}
    assert metrics["data"]["interrupted"] is True


@pytest.mark.usefixtures("claude_holds")
async def test_api_stop_stops_the_answer(stack: PipelineStack, hub: HubProcess) -> None:
    async with (
        aiohttp.ClientSession(headers=hub.auth_headers) as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
    ):
        turn_id = await _speaking_turn(client, events)
        async with session.post(f"{hub.base_url}/api/stop") as answer:
            stopped = await answer.json()
        end = await client.wait_frame("end", turn_id=turn_id)
        stop_index = client.index_of("stop_play", turn_id=turn_id)
        async with session.get(f"{hub.base_url}/api/status") as answer:
            status = await answer.json()

    assert stopped == {"status": "stopped"}
    assert end["interrupted"] is True
    assert _audio_after(client, stop_index) == 0
    assert status["state"] == "IDLE"
    assert status["is_speaking"] is False


async def test_two_clients_each_hear_only_their_own_turn(hub: HubProcess) -> None:
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as first,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as second,
        AudioClient.connect(session, hub.ws_url("/api/audio")) as bystander,
    ):
        await first.send({"type": "text_input", "text": "turn on the kitchen light"})
        await second.send({"type": "text_input", "text": "turn off the hall light"})
        first_end = await first.wait_frame("end")
        second_end = await second.wait_frame("end")
        await bystander.send_audio(b"\x00\x00" * 1600)  # a live but silent microphone

    assert first_end["text"] == "Turned on the kitchen light"
    assert second_end["text"] == "Turned off the hall light"
    assert {f["turn_id"] for f in first.frames() if "turn_id" in f} == {first_end["turn_id"]}
    assert {f["turn_id"] for f in second.frames() if "turn_id" in f} == {second_end["turn_id"]}
    assert first.audio_bytes() > 0
    assert second.audio_bytes() > 0
    assert bystander.received == []  # no JSON spoken, no turn of its own: nothing at all


async def test_a_service_killed_mid_turn_is_an_error_and_kiwi_recovers(
    stack: PipelineStack, hub: HubProcess, claude_holds: None
) -> None:
    assert stack.claude is not None
    tts = stack.services["tts"]
    async with (
        aiohttp.ClientSession(headers=hub.auth_headers) as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
    ):
        turn_id = await _speaking_turn(client, events)
        os.killpg(tts.process.pid, signal.SIGKILL)
        tts.process.wait(10)
        stack.claude.release()  # the next sentence needs kiwi-tts, which is gone
        end = await client.wait_frame("end", turn_id=turn_id)
        error = await events.wait("ERROR", turn_id=turn_id)
        await events.wait("TURN_METRICS", turn_id=turn_id)
        async with session.get(f"{hub.base_url}/api/status") as answer:
            state_after_failure = (await answer.json())["state"]

        # kiwi-tts still down: the turn ends as soon as the first sentence cannot be spoken,
        # while Claude is still holding the rest of the reply back.
        await client.send({"type": "text_input", "text": "tell me another story"})
        second = await client.wait(
            lambda r: bool(r.frame and r.frame["type"] == "end" and r.frame["turn_id"] != turn_id)
        )
        assert second.frame is not None
        second_end = second.frame
        stack.claude.release()

        stack.services["tts"] = restart_service(tts)
        stack.claude.hold_after_tokens = None
        await client.send({"type": "text_input", "text": "turn on the porch light"})
        recovered = await client.wait_frame("end", text="Turned on the porch light")
        recovered_audio = client.index_of("audio_start", turn_id=recovered["turn_id"])

    assert error["data"]["source"] == "tts"
    assert error["data"]["code"] == "tts_unavailable"
    assert client.frames("error", turn_id=turn_id)[0]["code"] == "tts_unavailable"
    assert end["route"] == "claude"
    assert end["text"] == "Hello from the fake Claude."  # what was heard before the failure
    assert second_end["text"] == ""  # nothing could be said
    assert state_after_failure == "IDLE"
    assert events.of("TTS_FINISHED")[0]["interrupted"] is True
    assert client.frames("error", turn_id=second_end["turn_id"])[0]["code"] == "tts_unavailable"
    assert recovered["route"] == "homeassistant"
    assert recovered_audio < client.index_of("end", turn_id=recovered["turn_id"])


async def test_claude_failing_gets_a_spoken_apology(stack: PipelineStack, hub: HubProcess) -> None:
    assert stack.claude is not None
    stack.claude.fail_with_status = 529
    try:
        async with (
            aiohttp.ClientSession() as session,
            EventLog.connect(session, hub.ws_url("/api/events")) as events,
            AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
        ):
            await client.send({"type": "text_input", "text": "write me a poem"})
            end = await client.wait_frame("end")
            await events.wait("TURN_METRICS", turn_id=end["turn_id"])
    finally:
        stack.claude.fail_with_status = None

    assert events.of("ERROR")[0]["source"] == "llm"
    assert events.of("ERROR")[0]["code"] == "llm_overloaded"
    assert end["route"] == "apology"
    assert end["text"] == "Sorry, I cannot reach my language model right now."
    assert client.audio_bytes() > 0  # said out loud
    assert events.of("STATE_CHANGED")[-1]["new"] == "IDLE"


async def test_push_to_talk_with_stt_down_ends_in_an_apology(hub: HubProcess) -> None:
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(
            session, hub.ws_url("/api/audio"), hello={"mode": "push_to_talk"}
        ) as client,
    ):
        await client.send({"type": "start_speaking", "stamp": "seg_001"})
        listening = await client.wait_frame("listening")
        await client.send_audio(espeak_pcm("turn on the lights"))
        await client.send({"type": "end_speaking", "stamp": "seg_001"})
        end = await client.wait_frame("end", turn_id=listening["turn_id"])
        await events.wait("TURN_METRICS", turn_id=end["turn_id"])

    assert listening["trigger"] == "push_to_talk"
    wake = events.of("WAKE_WORD_DETECTED")[0]
    assert wake["trigger"] == "push_to_talk"
    assert events.of("ERROR")[0]["source"] == "stt"
    assert events.of("ERROR")[0]["code"] == "stt_unavailable"
    assert "SPEECH_RECOGNIZED" not in events.names()
    assert end["route"] == "apology"
    assert client.audio_bytes() > 0
    states = [e["new"] for e in events.of("STATE_CHANGED")]
    assert states[0] == "LISTENING"
    assert states[-1] == "IDLE"
