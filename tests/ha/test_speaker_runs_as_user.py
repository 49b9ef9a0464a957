"""Who spoke runs the turn in Home Assistant: the HA user linked to the speaker, or no user.

Real parts: a kiwi-hub whose Home Assistant is the test harness's (its HTTP server on 127.0.0.1,
an admin token), Kiwi's real STT (Whisper base, so the words are heard), the session's
kiwi-speaker and kiwi-tts, and the integration set up with the options flow's person link.
Anna's voice (espeak en-us+m3) is enrolled and linked to the person Anna, who has an HA user;
a voice nobody enrolled (en-us+f2) is a guest. Each says a command for Home Assistant's agent
through the hub's voice pipeline; the action HA runs carries the speaker's user in its context.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kiwi.const import CONF_SPEAKER_PERSONS, KIWI_EVENT
from tests.ha.kiwi_common import (
    SPEAKER_VOICES,
    WyomingServices,
    enroll,
    entry_for,
    hub_client_for,
    setup_entry,
    start_home_hub,
)
from tests.support.hub_process import HubProcess
from tests.support.speech import espeak_wav
from tests.support.waiting import until_async
from tests.support.wyoming_process import ServiceProcess

pytestmark = pytest.mark.timeout(300)

LIGHT = "input_boolean.kitchen_light"
ANNA_VOICE, GUEST_VOICE = SPEAKER_VOICES[0], SPEAKER_VOICES[1]


@pytest.fixture
async def anna_user(hass: HomeAssistant) -> str:
    """A kitchen light for HA's agent and the person Anna with an HA user; her user id."""
    for component in ("homeassistant", "http", "api", "websocket_api", "config", "conversation"):
        assert await async_setup_component(hass, component, {})
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"kitchen_light": {"name": "Kitchen light"}}}
    )
    user = await hass.auth.async_create_user("Anna")
    assert await async_setup_component(
        hass, "person", {"person": [{"id": "anna", "name": "Anna", "user_id": user.id}]}
    )
    await hass.async_block_till_done()
    async_expose_entity(hass, conversation.DOMAIN, LIGHT, True)
    return user.id


@pytest.fixture
async def home_hub(  # noqa: PLR0917 (fixtures)
    anna_user: str,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    kiwi_services: WyomingServices,
    real_stt: ServiceProcess,
    tmp_path: Path,
    socket_enabled: None,
) -> Iterator[HubProcess]:
    """A hub with the harness's Home Assistant behind it; unknown voices may give commands."""
    hub = await start_home_hub(
        hass_client,
        hass_access_token,
        kiwi_services,
        real_stt,
        tmp_path / "hub",
        {
            "KIWI_UNKNOWN_SPEAKER_POLICY": "allow",
            "KIWI_FRIEND_POLICY": "allow",
        },
    )
    yield hub
    hub.stop(stop_speaker=False)


async def say(session: aiohttp.ClientSession, hub: HubProcess, text: str, voice: str) -> None:
    clip = espeak_wav(text, voice=voice).read_bytes()
    async with session.post(
        f"{hub.base_url}/api/audio/file?mode=push_to_talk",
        data=clip,
        headers={**hub.auth_headers, "Content-Type": "audio/wav"},
    ) as answer:
        assert answer.status == 200, await answer.text()


async def test_a_voice_runs_as_its_linked_user_and_an_unknown_voice_as_no_user(
    hass: HomeAssistant, anna_user: str, home_hub: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    client = hub_client_for(home_hub, hub_session)
    anna = await enroll(client, "Anna", ANNA_VOICE)
    try:
        entry: MockConfigEntry = entry_for(home_hub)
        entry.add_to_hass(hass)
        hass.config_entries.async_update_entry(
            entry, options={CONF_SPEAKER_PERSONS: {anna: "person.anna"}}
        )
        await setup_entry(hass, entry)
        # The integration told the hub who Anna is in Home Assistant.
        [profile] = [p for p in (await client.request("GET", "/api/speakers"))["speakers"]
                     if p["id"] == anna]  # fmt: skip
        assert (profile["person"], profile["ha_user_id"]) == ("person.anna", anna_user)

        kiwi_events = async_capture_events(hass, KIWI_EVENT)
        calls: list[Event] = []
        hass.bus.async_listen("call_service", calls.append)

        async def light_call() -> list[Event[Any]]:
            await hass.async_block_till_done()
            return [c for c in calls if c.data["domain"] == "input_boolean"]

        await say(hub_session, home_hub, "Turn on the kitchen light.", ANNA_VOICE)
        [by_anna] = await until_async(light_call, "Anna's command reaching Home Assistant")
        assert by_anna.context.user_id == anna_user
        assert hass.states.get(LIGHT).state == "on"
        identified = [e.data["data"] for e in kiwi_events if e.data["type"] == "SPEAKER_IDENTIFIED"]
        assert identified[-1]["id"] == anna
        assert identified[-1]["person"] == "person.anna"  # from the hub's event itself
        assert identified[-1]["ha_user_id"] == anna_user

        calls.clear()
        await say(hub_session, home_hub, "Turn off the kitchen light.", GUEST_VOICE)
        [by_guest] = await until_async(light_call, "the guest's command reaching Home Assistant")
        assert by_guest.context.user_id is None  # a guest: no Home Assistant user
        assert hass.states.get(LIGHT).state == "off"
        identified = [e.data["data"] for e in kiwi_events if e.data["type"] == "SPEAKER_IDENTIFIED"]
        assert identified[-1]["id"] is None
        assert identified[-1]["person"] is None
    finally:
        await client.delete_speaker(anna)
        await hass.config_entries.async_unload(entry.entry_id)
