"""Options: speaker profiles linked to Home Assistant people, carried by Kiwi's events."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.kiwi.api import KiwiClient
from custom_components.kiwi.const import CONF_SPEAKER_PERSONS, KIWI_EVENT
from tests.ha.kiwi_common import enroll, setup_entry, wait_for
from tests.support.speech import espeak_wav
from tests.support.voices import TEST_SENTENCES

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def people(hass: HomeAssistant) -> None:
    """Two people in Home Assistant: person.alice and person.bob."""
    assert await async_setup_component(
        hass,
        "person",
        {"person": [{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}]},
    )


@pytest.mark.parametrize("hub_speakers", [["Alice", "Bob"]])
async def test_link_speakers_to_people(
    hass: HomeAssistant,
    people: None,
    hub_client: KiwiClient,
    init_integration: MockConfigEntry,
    speaker_ids: dict[str, str],
) -> None:
    """The options keep profile id -> person; a recognised voice's events name the person."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert sorted(str(key) for key in result["data_schema"].schema) == ["Alice", "Bob"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"Alice": "person.alice"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert init_integration.options[CONF_SPEAKER_PERSONS] == {speaker_ids["Alice"]: "person.alice"}

    events = async_capture_events(hass, KIWI_EVENT)
    # A sentence, not a two-second command: a voice is named on strong evidence only.
    clip = espeak_wav(TEST_SENTENCES[2], voice="en-us+m3")
    result_of_identify = await hub_client.request(
        "POST", "/api/speakers/identify", wav=clip.read_bytes()
    )
    assert result_of_identify["name"] == "Alice"
    await wait_for(
        hass,
        lambda: any(e.data["type"] == "SPEAKER_IDENTIFIED" for e in events),
        "no SPEAKER_IDENTIFIED",
    )
    [identified] = [e for e in events if e.data["type"] == "SPEAKER_IDENTIFIED"]
    assert identified.data["data"]["person"] == "person.alice"
    await wait_for(
        hass,
        lambda: (
            hass.states.get("event.kiwi_voice_events").attributes.get("person") == "person.alice"
        ),
        "the event entity does not name the person",
    )


async def test_same_name_twice(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """Two profiles with one name get fields that tell them apart."""
    first = await enroll(hub_client, "Sam", voice="en-us+m3")
    second = await enroll(hub_client, "Sam", voice="en-us+f2")
    await wait_for(
        hass,
        lambda: len(init_integration.runtime_data.coordinator.data.people) == 2,
        "profiles not seen",
    )
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert sorted(str(key) for key in result["data_schema"].schema) == sorted(
        [f"Sam ({first})", f"Sam ({second})"]
    )


async def test_no_speakers_yet(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """Without profiles there is nothing to link."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_speakers"


async def test_entry_not_loaded(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """The options need the hub connected (they list its profiles)."""
    await setup_entry(hass, mock_config_entry)
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"
