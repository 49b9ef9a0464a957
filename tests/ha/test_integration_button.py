"""Buttons of the hub, pressed against the real hub."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from syrupy.assertion import SnapshotAssertion

from custom_components.kiwi.const import KIWI_EVENT
from tests.ha.kiwi_common import (
    browser_speaker,
    entry_for,
    setup_entry,
    snapshot_kiwi_platform,
    wait_for,
)
from tests.support.hub_process import HubProcess

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the button platform."""
    return [Platform.BUTTON]


async def press(hass: HomeAssistant, entity_id: str) -> None:
    """Press a button through Home Assistant's action."""
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: entity_id}, blocking=True
    )


@pytest.mark.fresh_hub
async def test_buttons(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every button of the hub."""
    await snapshot_kiwi_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.parametrize(
    ("button", "hub_event"),
    [
        ("button.kiwi_reset_conversation", "CONTEXT_RESET"),
        ("button.kiwi_test_voice", "TTS_STARTED"),
    ],
)
@pytest.mark.usefixtures("listening_browser")
async def test_button_reaches_the_hub(
    hass: HomeAssistant, init_integration: MockConfigEntry, button: str, hub_event: str
) -> None:
    """A press makes the hub do it: the hub's own event comes back over the stream."""
    events = async_capture_events(hass, KIWI_EVENT)
    await press(hass, button)
    await wait_for(
        hass,
        lambda: any(event.data["type"] == hub_event for event in events),
        f"no {hub_event} after pressing {button}",
    )


@pytest.mark.usefixtures("listening_browser")
async def test_stop_interrupts_speech(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Stop while Kiwi speaks: the hub reports the speech as interrupted."""
    events = async_capture_events(hass, KIWI_EVENT)
    await press(hass, "button.kiwi_test_voice")
    await press(hass, "button.kiwi_stop_speaking")
    await wait_for(
        hass,
        lambda: any(event.data["type"] == "TTS_FINISHED" for event in events),
        "speech never finished",
    )
    assert hass.states.get("button.kiwi_stop_speaking").state != "unknown"


async def test_restart_button_restarts_the_hub(
    hass: HomeAssistant, start_kiwi_hub: Callable[..., HubProcess], platforms: list[Platform]
) -> None:
    """Restart makes the hub exit with its restart code (the launcher starts it again)."""
    hub = start_kiwi_hub()
    with pytest.MonkeyPatch.context() as patches:
        patches.setattr("custom_components.kiwi.PLATFORMS", platforms)
        entry = await setup_entry(hass, entry_for(hub))
        await press(hass, "button.kiwi_restart")
        assert hub.wait() == 75
        await hass.config_entries.async_unload(entry.entry_id)


async def test_failed_command_is_a_translated_error(
    hass: HomeAssistant, start_kiwi_hub: Callable[..., HubProcess], platforms: list[Platform]
) -> None:
    """The hub cannot speak (no TTS service behind it): the press fails with the hub's reason."""
    hub = start_kiwi_hub()
    with pytest.MonkeyPatch.context() as patches:
        patches.setattr("custom_components.kiwi.PLATFORMS", platforms)
        entry = await setup_entry(hass, entry_for(hub))
        # Nothing to play on: refused before TTS is asked, in words a user can act on.
        with pytest.raises(HomeAssistantError) as raised:
            await press(hass, "button.kiwi_test_voice")
        assert raised.value.translation_key == "no_audio_output"
        async with aiohttp.ClientSession() as session, browser_speaker(hub, session):
            with pytest.raises(HomeAssistantError) as raised:
                await press(hass, "button.kiwi_test_voice")
        assert raised.value.translation_key == "command_failed"
        assert "cannot reach the TTS service" in str(raised.value)
        await hass.config_entries.async_unload(entry.entry_id)
