"""The "Kiwi voice events" entity and the kiwi_event bus event, against the real hub."""

from __future__ import annotations

import pytest
from homeassistant.components import automation
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from syrupy.assertion import SnapshotAssertion

from custom_components.kiwi.api import KiwiClient
from custom_components.kiwi.const import KIWI_EVENT
from tests.ha.kiwi_common import say_to_kiwi, snapshot_kiwi_platform, wait_for

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

EVENTS = "event.kiwi_voice_events"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the event platform."""
    return [Platform.EVENT]


@pytest.mark.fresh_hub
async def test_event_entity(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The event entity and the event types it reports."""
    await snapshot_kiwi_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_hub_event_reaches_entity_and_bus(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """A soul switch on the hub: the entity reports soul_changed, the bus gets kiwi_event."""
    bus_events = async_capture_events(hass, KIWI_EVENT)
    await hub_client.set_soul("comedian")
    await wait_for(
        hass,
        lambda: hass.states.get(EVENTS).attributes.get("event_type") == "soul_changed",
        "the event entity never reported soul_changed",
    )
    state = hass.states.get(EVENTS)
    assert state.attributes["soul"] == "comedian"
    [soul_changed] = [e for e in bus_events if e.data["type"] == "SOUL_CHANGED"]
    assert soul_changed.data["data"]["soul"] == "comedian"
    assert soul_changed.data["config_entry_id"] == init_integration.entry_id
    assert soul_changed.data["replayed"] is False
    assert isinstance(soul_changed.data["seq"], int)


async def test_automation_fires_on_wake_word(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """An automation on the event entity runs when Kiwi hears "hey jarvis" in real audio."""
    calls: list[ServiceCall] = []
    hass.services.async_register("test", "wake", calls.append)
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: {
                "triggers": {"trigger": "state", "entity_id": EVENTS},
                "conditions": {
                    "condition": "state",
                    "entity_id": EVENTS,
                    "attribute": "event_type",
                    "state": "wake_word_detected",
                },
                "actions": {
                    "action": "test.wake",
                    "data": {"word": "{{ trigger.to_state.attributes.text }}"},
                },
            }
        },
    )
    await say_to_kiwi(hub_client, "hey jarvis, what time is it?")
    await wait_for(hass, lambda: len(calls) == 1, "the automation did not run")
    assert calls[0].data["word"]
