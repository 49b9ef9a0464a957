"""The "blocked" switch of speaker devices, against the real hub."""

from __future__ import annotations

import pytest
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.kiwi.api import KiwiClient
from tests.ha.kiwi_common import snapshot_kiwi_platform, wait_for_state

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

BLOCKED = "switch.alice_blocked"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the switch platform."""
    return [Platform.SWITCH]


@pytest.mark.fresh_hub
@pytest.mark.parametrize("hub_speakers", [["Alice", "Bob"]])
async def test_switches(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """One blocked switch per speaker profile."""
    await snapshot_kiwi_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_blocking_a_speaker(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    init_integration: MockConfigEntry,
    speaker_ids: dict[str, str],
) -> None:
    """The switch blocks and unblocks the profile on the hub; the hub's own changes show."""
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: BLOCKED}, blocking=True
    )
    assert hass.states.get(BLOCKED).state == STATE_ON
    assert [p.is_blocked for p in await hub_client.speakers()] == [True]

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: BLOCKED}, blocking=True
    )
    assert hass.states.get(BLOCKED).state == STATE_OFF

    await hub_client.block_speaker(speaker_ids["Alice"])
    await wait_for_state(hass, BLOCKED, STATE_ON)


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_switch_of_a_deleted_profile(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    init_integration: MockConfigEntry,
    speaker_ids: dict[str, str],
) -> None:
    """A profile deleted on the hub while Home Assistant still shows it: the hub says 404."""
    entity = hass.data["entity_components"][SWITCH_DOMAIN].get_entity(BLOCKED)
    # The hub forgets the profile behind the integration's back (its own client, not HA's).
    await hub_client.delete_speaker(speaker_ids["Alice"])
    with pytest.raises(ServiceValidationError) as raised:  # the caller named a gone profile
        await entity.async_turn_on()
    assert raised.value.translation_key == "not_found"
    assert str(raised.value).startswith(f"The Kiwi hub does not know what {BLOCKED} asked for")
