"""Who spoke travels with the turn: a profile's Home Assistant person and its own soul.

Real processes: kiwi-hub with kiwi-stt (offline Whisper: its words are not the point here),
kiwi-tts, kiwi-speaker, the local Home Assistant conversation API (it understands nothing of
these words, so Claude answers) and the local Anthropic Messages API. A voice is enrolled,
linked to a person and given the comedian soul (PATCH /api/speakers/{id}); its turns then
report the person in SPEAKER_IDENTIFIED and are answered by the comedian while the active soul
stays the default. An unknown voice gets the active soul and no person.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import EventLog
from tests.support.pipeline_stack import PipelineStack, stack_fixture
from tests.support.speech import espeak_wav
from tests.support.voices import ENROL_SENTENCES

pytestmark = pytest.mark.timeout(120)
COMEDIAN_PROMPT_START = "You are Kiwi in stand-up mode"
PERSON, USER = "person.anna", "0123456789abcdef0123456789abcdef"
VOICE, OTHER_VOICE = "en-us+m3", "en-us+f2"

stack = stack_fixture(services=("stt", "tts", "speaker"))


async def _enroll(session: aiohttp.ClientSession, hub: HubProcess, name: str, voice: str) -> str:
    params = {"name": name, "priority": "1"}
    for sentence in ENROL_SENTENCES:  # a voice is named once it has three samples
        async with session.post(
            f"{hub.base_url}/api/speakers/enroll",
            params=params,
            data=espeak_wav(sentence, voice).read_bytes(),
            headers={"Content-Type": "audio/wav"},
        ) as answer:
            assert answer.status == 200, await answer.text()
            profile = await answer.json()
        params = {"id": profile["id"]}
    return str(profile["id"])


async def _patch(
    session: aiohttp.ClientSession, hub: HubProcess, speaker_id: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with session.patch(f"{hub.base_url}/api/speakers/{speaker_id}", json=body) as answer:
        return answer.status, await answer.json()


async def _turn(session: aiohttp.ClientSession, hub: HubProcess, voice: str) -> None:
    clip = espeak_wav("Tell me something about the weather today.", voice).read_bytes()
    async with session.post(
        f"{hub.base_url}/api/audio/file", params={"mode": "push_to_talk"}, data=clip
    ) as answer:
        assert answer.status == 200, await answer.text()


async def test_a_speakers_person_and_soul_travel_with_the_turn(
    stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.claude is not None
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        anna = await _enroll(session, hub, "Anna", VOICE)
        try:
            status, profile = await _patch(
                session, hub, anna, {"person": PERSON, "ha_user_id": USER, "soul": "comedian"}
            )
            assert status == 200, profile
            assert (profile["person"], profile["ha_user_id"], profile["soul"]) == (
                PERSON,
                USER,
                "comedian",
            )
            async with session.get(f"{hub.base_url}/api/speakers") as answer:
                [listed] = [p for p in (await answer.json())["speakers"] if p["id"] == anna]
            assert listed["soul"] == "comedian"
            assert listed["person"] == PERSON

            async with EventLog.connect(session, hub.ws_url("/api/events")) as events:
                await _turn(session, hub, VOICE)
                identified = await events.wait("SPEAKER_IDENTIFIED")
                await events.wait("TURN_METRICS")
            assert identified["data"]["id"] == anna
            assert identified["data"]["person"] == PERSON
            assert identified["data"]["ha_user_id"] == USER
            assert stack.claude.last_request()["system"].startswith(COMEDIAN_PROMPT_START)
            async with session.get(f"{hub.base_url}/api/soul/current") as answer:
                assert (await answer.json())["id"] == "default"  # the active soul is untouched

            async with EventLog.connect(session, hub.ws_url("/api/events")) as events:
                await _turn(session, hub, OTHER_VOICE)
                identified = await events.wait("SPEAKER_IDENTIFIED")
                await events.wait("TURN_METRICS")
            assert identified["data"]["id"] is None
            assert identified["data"]["person"] is None
            assert not stack.claude.last_request()["system"].startswith(COMEDIAN_PROMPT_START)

            # null unlinks; the profile goes back to the active soul.
            status, profile = await _patch(session, hub, anna, {"person": None, "soul": None})
            assert (status, profile["person"], profile["soul"]) == (200, None, None)
            assert profile["ha_user_id"] == USER
        finally:
            async with session.delete(f"{hub.base_url}/api/speakers/{anna}"):
                pass


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"soul": "no_such_soul"}, 404, "unknown_soul"),
        ({"soul": "Not A Soul"}, 400, "invalid_value"),
        ({"person": "light.kitchen"}, 400, "invalid_value"),
        ({"ha_user_id": "anna"}, 400, "invalid_value"),
    ],
)
async def test_bad_links_are_refused_with_a_code(
    hub: HubProcess, body: dict[str, Any], status: int, code: str
) -> None:
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        speaker = await _enroll(session, hub, "Bob", VOICE)
        try:
            answer_status, answer = await _patch(session, hub, speaker, body)
        finally:
            async with session.delete(f"{hub.base_url}/api/speakers/{speaker}"):
                pass
    assert (answer_status, answer["error"]["code"]) == (status, code)
