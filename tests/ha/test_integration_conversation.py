"""The conversation agent: Assist -> Kiwi's hub -> (Home Assistant's own agent) -> the answer.

The hub answers home commands through Home Assistant's REST conversation API. Here that is the
Home Assistant under test itself (its HTTP server on 127.0.0.1), so the whole round trip is real.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.const import Platform
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from tests.ha.kiwi_common import entry_for, hub_client_for, setup_entry, snapshot_kiwi_platform
from tests.support.hub_process import HubProcess

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

AGENT = "conversation.kiwi"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the conversation platform."""
    return [Platform.CONVERSATION]


async def ask(hass: HomeAssistant, text: str, conversation_id: str | None = None) -> object:
    """Send `text` to the Kiwi agent as Assist would."""
    return await conversation.async_converse(
        hass, text, conversation_id, Context(), language="en", agent_id=AGENT
    )


@pytest.mark.fresh_hub
async def test_conversation_entity(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The agent entity of the hub."""
    await snapshot_kiwi_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_command_through_kiwi(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    start_kiwi_hub: Callable[..., HubProcess],
    hub_session: aiohttp.ClientSession,
) -> None:
    """ "Turn on the kitchen light" goes to Kiwi, which has Home Assistant do it and answers."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "http", {})
    # Kiwi's sensitive-action gate asks HA's WebSocket API what a command would touch.
    assert await async_setup_component(hass, "websocket_api", {})
    assert await async_setup_component(hass, "config", {})
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"kitchen_light": {"name": "Kitchen light"}}}
    )
    home_assistant_url = str((await hass_client()).make_url("/")).rstrip("/")
    hub = start_kiwi_hub(env={"KIWI_HA_TOKEN": hass_access_token})
    await hub_client_for(hub, hub_session).update_config({"homeassistant_url": home_assistant_url})
    entry = await setup_entry(hass, entry_for(hub))

    async_expose_entity(hass, conversation.DOMAIN, "input_boolean.kitchen_light", True)

    result = await ask(hass, "turn on the kitchen light")

    assert hass.states.get("input_boolean.kitchen_light").state == "on"
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE
    assert result.response.speech["plain"]["speech"]
    follow_up = await ask(hass, "turn off the kitchen light", result.conversation_id)
    assert follow_up.conversation_id == result.conversation_id
    assert hass.states.get("input_boolean.kitchen_light").state == "off"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_home_assistant_did_not_understand(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    start_kiwi_hub: Callable[..., HubProcess],
    hub_session: aiohttp.ClientSession,
) -> None:
    """Home Assistant's agent answered with an error: Assist gets it as an error."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "http", {})
    # Kiwi's sensitive-action gate asks HA's WebSocket API what a command would touch.
    assert await async_setup_component(hass, "websocket_api", {})
    assert await async_setup_component(hass, "config", {})
    home_assistant_url = str((await hass_client()).make_url("/")).rstrip("/")
    hub = start_kiwi_hub(env={"KIWI_HA_TOKEN": hass_access_token})
    await hub_client_for(hub, hub_session).update_config({"homeassistant_url": home_assistant_url})
    entry = await setup_entry(hass, entry_for(hub))
    result = await ask(hass, "turn on the hovercraft")
    assert result.response.response_type is intent.IntentResponseType.ERROR
    assert result.response.speech["plain"]["speech"]
    await hass.config_entries.async_unload(entry.entry_id)


async def test_hub_that_cannot_answer(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Neither Home Assistant nor Claude is set up on the hub: Assist says why, in words."""
    result = await ask(hass, "what is the meaning of life?")
    assert result.response.response_type is intent.IntentResponseType.ERROR
    assert result.response.speech["plain"]["speech"].startswith("Kiwi could not answer")


async def test_hub_gone(
    hass: HomeAssistant,
    start_kiwi_hub: Callable[..., HubProcess],
    platforms: list[Platform],
) -> None:
    """The hub is down: the answer says Kiwi cannot be reached."""
    hub = start_kiwi_hub()
    with pytest.MonkeyPatch.context() as patches:
        patches.setattr("custom_components.kiwi.PLATFORMS", platforms)
        entry = await setup_entry(hass, entry_for(hub))
        hub.stop()
        result = await ask(hass, "hello?")
        assert result.response.response_type is intent.IntentResponseType.ERROR
        assert result.response.speech["plain"]["speech"].startswith("I cannot reach Kiwi")
        await hass.config_entries.async_unload(entry.entry_id)
