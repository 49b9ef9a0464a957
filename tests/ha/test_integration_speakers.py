"""Speaker devices come and go with the hub's speaker profiles."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.kiwi.api import KiwiClient
from custom_components.kiwi.const import DOMAIN
from tests.ha.kiwi_common import TEST_UNIQUE_ID, enroll, wait_for, wait_for_state

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)


def speaker_device(hass: HomeAssistant, speaker_id: str) -> dr.DeviceEntry | None:
    """The device of a speaker profile, if Home Assistant has one."""
    return dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{TEST_UNIQUE_ID}_speaker_{speaker_id}")}
    )


async def test_speaker_devices_appear_and_disappear(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """Enrolling adds a device (linked to the hub) with its entities; deleting removes it."""
    alice = await enroll(hub_client, "Alice")
    await wait_for(hass, lambda: speaker_device(hass, alice) is not None, "no device for Alice")
    device = speaker_device(hass, alice)
    assert device is not None
    assert device.name == "Alice"
    hub = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, TEST_UNIQUE_ID)})
    assert hub is not None
    assert device.via_device_id == hub.id
    await wait_for_state(hass, "switch.alice_blocked", "off")

    bob = await enroll(hub_client, "Bob", voice="en-us+f2")
    await wait_for(hass, lambda: speaker_device(hass, bob) is not None, "no device for Bob")

    await hub_client.delete_speaker(alice)
    await wait_for(hass, lambda: speaker_device(hass, alice) is None, "Alice's device stayed")
    assert hass.states.get("switch.alice_blocked") is None
    assert speaker_device(hass, bob) is not None
    assert hass.states.get("switch.bob_blocked").state == "off"


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_profiles_removed_while_away_are_removed_at_start(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    mock_config_entry: MockConfigEntry,
    speaker_ids: dict[str, str],
) -> None:
    """A profile deleted while Home Assistant was not running loses its device at the next start."""
    mock_config_entry.add_to_hass(hass)
    assert await async_setup_component(hass, "homeassistant", {})
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert speaker_device(hass, speaker_ids["Alice"]) is not None

    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hub_client.delete_speaker(speaker_ids["Alice"])
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert speaker_device(hass, speaker_ids["Alice"]) is None
    await hass.config_entries.async_unload(mock_config_entry.entry_id)


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_only_stale_devices_can_be_deleted(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    init_integration: MockConfigEntry,
    speaker_ids: dict[str, str],
) -> None:
    """The user may not delete the hub device or a live speaker's device."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_ws_client(hass)
    hub = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, TEST_UNIQUE_ID)})
    alice = speaker_device(hass, speaker_ids["Alice"])
    assert hub is not None
    assert alice is not None
    for device in (hub, alice):
        response = await client.remove_device(device.id, init_integration.entry_id)
        assert not response["success"]
