"""Binary sensors of the hub, against the real hub."""

from __future__ import annotations

import pytest
from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.core import Event, EventStateChangedData, HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.kiwi.api import KiwiClient
from tests.ha.kiwi_common import (
    browser_speaker,
    snapshot_kiwi_platform,
    wait_for,
    wait_for_state,
)
from tests.support.hub_process import HubProcess

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

SPEAKING = "binary_sensor.kiwi_speaking"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the binary sensor platform."""
    return [Platform.BINARY_SENSOR]


@pytest.mark.fresh_hub
async def test_binary_sensors(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every binary sensor of an idle hub."""
    await snapshot_kiwi_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_speaking_follows_the_hub(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    kiwi_hub: HubProcess,
    init_integration: MockConfigEntry,
) -> None:
    """Speaking turns on while Kiwi says the test phrase and off when it is done."""
    seen: list[str] = []

    def record(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] == SPEAKING and event.data["new_state"] is not None:
            seen.append(event.data["new_state"].state)

    hass.bus.async_listen("state_changed", record)
    assert hass.states.get(SPEAKING).state == STATE_OFF
    async with browser_speaker(kiwi_hub, hub_client.session):
        await hub_client.tts_test("Good morning.")
        # Other updates of the entity (its attributes) may come first; speaking must turn on.
        await wait_for(hass, lambda: STATE_ON in seen, "speaking turned on")
        await wait_for_state(hass, SPEAKING, STATE_OFF)
        # Judged at once: leaving the speaker (closing its socket) may move the entity again.
        assert seen[seen.index(STATE_ON) :][-1] == STATE_OFF
