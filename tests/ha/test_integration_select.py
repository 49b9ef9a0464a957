"""Selects of the hub (soul, language), switched against the real hub."""

from __future__ import annotations

import pytest
from homeassistant.components.select import (
    ATTR_OPTION,
    SERVICE_SELECT_OPTION,
)
from homeassistant.components.select import (
    DOMAIN as SELECT_DOMAIN,
)
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.kiwi.api import KiwiClient
from tests.ha.kiwi_common import SECOND_VOICE, snapshot_kiwi_platform, wait_for_state
from tests.support.offline_models import PIPER_VOICE_NAME

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

SOUL = "select.kiwi_soul"
LANGUAGE = "select.kiwi_language"
VOICE = "select.kiwi_voice"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the select platform."""
    return [Platform.SELECT]


async def select(hass: HomeAssistant, entity_id: str, option: str) -> None:
    """Choose an option through Home Assistant's action."""
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: entity_id, ATTR_OPTION: option},
        blocking=True,
    )


@pytest.mark.fresh_hub
async def test_selects(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Soul, language and voice offer what the hub offers."""
    await snapshot_kiwi_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_soul_select_switches_the_hub(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """The select shows souls by name (as the active-soul sensor does); choosing one switches
    the hub's personality by its id, and the entity follows."""
    options = hass.states.get(SOUL).attributes["options"]
    assert {"Default", "Comedian", "Butler", "Storyteller"} <= set(options)
    assert "comedian" not in options
    await select(hass, SOUL, "Comedian")
    assert (await hub_client.status()).active_soul == "comedian"
    await wait_for_state(hass, SOUL, "Comedian")


async def test_soul_switched_elsewhere_shows_up(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """Another client switches the soul: SOUL_CHANGED brings the select along."""
    await hub_client.set_soul("butler")
    await wait_for_state(hass, SOUL, "Butler")


async def test_language_select_switches_the_hub(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """Choosing a language switches the hub's language (and another client's change shows)."""
    await select(hass, LANGUAGE, "de")
    assert (await hub_client.languages()).current == "de"
    assert hass.states.get(LANGUAGE).state == "de"
    await hub_client.set_language("fr")
    await wait_for_state(hass, LANGUAGE, "fr")


async def test_refused_soul_is_a_translated_error(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """The hub refuses an 18+ soul without the owner's consent: a clear error, no switch."""
    with pytest.raises(HomeAssistantError) as raised:
        await select(hass, SOUL, "Siren")
    assert raised.value.translation_key == "command_failed"
    assert "NSFW" in str(raised.value)
    assert (await hub_client.status()).active_soul == "default"
    assert hass.states.get(SOUL).state == "Default"


async def test_voice_select_switches_the_hub_voice(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """The hub lists the voices kiwi-tts has installed; choosing one sets the hub's tts_voice."""
    state = hass.states.get(VOICE)
    assert state is not None
    assert state.attributes["options"] == [SECOND_VOICE, PIPER_VOICE_NAME]
    await select(hass, VOICE, SECOND_VOICE)
    assert (await hub_client.config()).tts_voice == SECOND_VOICE
    await wait_for_state(hass, VOICE, SECOND_VOICE)
