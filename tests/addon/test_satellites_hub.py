"""The hub's side of Kiwi's satellites: named browser microphones, listening without a wake word,
announcing on one satellite (docs/satellites.md). Every answer is checked against the hub's
OpenAPI document; the Home Assistant side is tests/ha/test_integration_assist_satellite.py.

Real processes: kiwi-hub, kiwi-stt and kiwi-tts on the offline models (the tiny Whisper's
transcripts are not words: only that one came back is asserted here).
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.hub_openapi import CheckedClient
from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import AudioClient, EventLog
from tests.support.pipeline_stack import stack_fixture
from tests.support.speech import espeak_pcm

pytestmark = pytest.mark.timeout(90)
SILENCE = b"\x00\x00" * 16000

stack = stack_fixture(services=("stt", "tts"))


async def test_a_named_microphone_is_a_satellite_while_connected(
    client: CheckedClient, hub: HubProcess
) -> None:
    assert (await client.call("GET", "/api/satellites")).body == {"satellites": []}
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
    ):
        async with AudioClient.connect(
            session, hub.ws_url("/api/audio"), hello={"room": "Kitchen"}
        ):
            listed = (await client.call("GET", "/api/satellites")).body["satellites"]
            joined = await events.wait("SATELLITES_CHANGED")
        left = await events.wait("SATELLITES_CHANGED", satellites=[])
    kitchen = {
        "id": "room:Kitchen",
        "name": "Kitchen",
        "kind": "browser",
        "can_play": True,
        "replies": "here",
    }
    assert listed == [kitchen]
    assert joined["data"]["satellites"] == [kitchen]
    assert left["data"]["satellites"] == []


async def test_an_announcement_plays_on_its_target_and_waits_until_said(
    client: CheckedClient, hub: HubProcess
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={"room": "Kitchen"}) as k,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as other,
    ):
        answer = await client.call(
            "POST",
            "/api/tts/test",
            json={"text": "Dinner is ready.", "target": "room:Kitchen", "wait": True},
        )
        # Answered once it was said: Kiwi is no longer speaking.
        status = (await client.call("GET", "/api/status")).body
    assert answer.status == 200, answer.body
    assert answer.body["played_on"] == ["room:Kitchen"]
    assert status["state"] == "IDLE"
    assert status["is_speaking"] is False
    assert k.audio_bytes() > 0
    assert other.audio_bytes() == 0


async def test_listen_answer_only_transcribes_and_runs_no_turn(
    client: CheckedClient, hub: HubProcess
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={"room": "Kitchen"}) as k,
    ):

        async def user() -> None:
            await k.wait_frame("listening", trigger="conversation")
            await k.send_audio(espeak_pcm("coffee please") + SILENCE)

        speaking = asyncio.create_task(user())
        answer = await client.call(
            "POST", "/api/satellites/room:Kitchen/listen", json={"answer_only": True}
        )
        await speaking
        recognized = await events.wait("SPEECH_RECOGNIZED")
    assert answer.status == 200, answer.body
    assert answer.body["speech"] is True
    assert answer.body["status"] == "heard"
    assert answer.body["text"] == recognized["data"]["text"]
    states = [(e["new"], e.get("session")) for e in events.of("STATE_CHANGED")]
    assert states[0] == ("LISTENING", "room:Kitchen")
    assert states[-1] == ("IDLE", "room:Kitchen")
    assert "TURN_METRICS" not in events.names()  # an answer, not a turn
    assert k.frames("end")[-1]["route"] == "none"


async def test_listen_on_a_satellite_that_is_not_there_is_404(client: CheckedClient) -> None:
    answer = await client.call("POST", "/api/satellites/room:Attic/listen")
    assert answer.status == 404
    assert answer.body["error"]["code"] == "unknown_satellite"


async def test_replies_elsewhere_keep_a_turns_audio_off_the_microphone(
    client: CheckedClient, hub: HubProcess
) -> None:
    """Home Assistant plays this room's replies on a media player: the hub says them (events,
    frames) but sends no audio of them to the room; announcements still play there."""
    bad = await client.call("PATCH", "/api/satellites/attic", json={"replies": "elsewhere"})
    assert bad.status == 404
    assert bad.body["error"]["code"] == "unknown_satellite"
    # Set before the room connects: it keeps the choice when it does.
    answer = await client.call(
        "PATCH", "/api/satellites/room:Kitchen", json={"replies": "elsewhere"}
    )
    assert answer.body == {"satellite": "room:Kitchen", "replies": "elsewhere"}
    try:
        async with (
            aiohttp.ClientSession() as session,
            EventLog.connect(session, hub.ws_url("/api/events")) as events,
            AudioClient.connect(
                session, hub.ws_url("/api/audio"), hello={"room": "Kitchen"}
            ) as kitchen,
        ):
            listed = (await client.call("GET", "/api/satellites")).body["satellites"]
            await kitchen.send({"type": "text_input", "text": "tell me a joke"})
            end = await kitchen.wait_frame("end", wait_s=60)
            finished = await events.wait("TTS_FINISHED")
            assert kitchen.audio_bytes() == 0
            announced = await client.call(
                "POST",
                "/api/tts/test",
                json={"text": "Dinner is ready.", "target": "room:Kitchen", "wait": True},
            )
            assert announced.status == 200
            assert kitchen.audio_bytes() > 0
    finally:
        await client.call("PATCH", "/api/satellites/room:Kitchen", json={"replies": "here"})
    assert listed[0]["replies"] == "elsewhere"
    assert finished["data"]["text"] == end["text"]  # what Home Assistant says elsewhere
