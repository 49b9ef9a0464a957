"""Who spoke, in Home Assistant: a voice's request runs as the HA user linked to that speaker.

The options flow links each speaker profile to a person; a person has an HA user. Kiwi's hub
runs a voice's commands through two WebSocket commands registered here (admin only: the hub's
token), so Home Assistant applies that user's `Context` (logbook, permissions, automations that
look at `context.user_id`):

- `kiwi/conversation/process`: HA's own conversation agent, like POST /api/conversation/process.
- `kiwi/call_service`: an action, like POST /api/services/<domain>/<service>.

A voice the hub could not name (a guest), or a speaker linked to no person with a user, runs
with no user at all. The links are also sent to the hub (PATCH /api/speakers/{id}) so that its
SPEAKER_IDENTIFIED events name the person.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.components import conversation, websocket_api
from homeassistant.components.websocket_api import const as ws_const
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import (
    async_response,
    require_admin,
    websocket_command,
)
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceNotFound, Unauthorized

from .api import KiwiError
from .const import CONF_SPEAKER_PERSONS, DOMAIN, LOGGER
from .coordinator import KiwiConfigEntry

PROCESS_COMMAND = "kiwi/conversation/process"
CALL_SERVICE_COMMAND = "kiwi/call_service"


@callback
def async_setup_run_as(hass: HomeAssistant) -> None:
    """Register the hub's WebSocket commands (once, for every entry)."""
    websocket_api.async_register_command(hass, ws_conversation_process)
    websocket_api.async_register_command(hass, ws_call_service)


def linked_person(hass: HomeAssistant, speaker_id: str | None) -> str | None:
    """The person an entry's options link to `speaker_id`."""
    if not speaker_id:
        return None
    for entry in hass.config_entries.async_loaded_entries(DOMAIN):
        person = entry.options.get(CONF_SPEAKER_PERSONS, {}).get(speaker_id)
        if isinstance(person, str):
            return person
    return None


def person_user_id(hass: HomeAssistant, person: str | None) -> str | None:
    """The HA user of a person entity (people without a login have none)."""
    state = hass.states.get(person) if person else None
    user_id = state.attributes.get("user_id") if state else None
    return user_id if isinstance(user_id, str) else None


def speaker_context(hass: HomeAssistant, speaker_id: str | None) -> Context:
    """The context a speaker's request runs in: the linked user's, else none (a guest)."""
    return Context(user_id=person_user_id(hass, linked_person(hass, speaker_id)))


@require_admin
@websocket_command(
    {
        vol.Required("type"): PROCESS_COMMAND,
        vol.Required("text"): str,
        vol.Optional("language"): vol.Any(str, None),
        vol.Optional("speaker_id"): vol.Any(str, None),
    }
)
@async_response
async def ws_conversation_process(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Run HA's own agent on a speaker's words, as the speaker's user."""
    context = speaker_context(hass, msg.get("speaker_id"))
    result = await conversation.async_converse(
        hass,
        msg["text"],
        None,
        context,
        msg.get("language"),
        agent_id=conversation.HOME_ASSISTANT_AGENT,
    )
    connection.send_result(msg["id"], result.as_dict())


@require_admin
@websocket_command(
    {
        vol.Required("type"): CALL_SERVICE_COMMAND,
        vol.Required("domain"): str,
        vol.Required("service"): str,
        vol.Optional("service_data", default=dict): dict,
        vol.Optional("target"): dict,
        vol.Optional("speaker_id"): vol.Any(str, None),
    }
)
@async_response
async def ws_call_service(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Call an action for a speaker, as the speaker's user."""
    context = speaker_context(hass, msg.get("speaker_id"))
    try:
        await hass.services.async_call(
            msg["domain"],
            msg["service"],
            msg["service_data"],
            blocking=True,
            context=context,
            target=msg.get("target"),
        )
    except ServiceNotFound as err:
        connection.send_error(msg["id"], ws_const.ERR_NOT_FOUND, str(err))
    except Unauthorized as err:
        connection.send_error(msg["id"], ws_const.ERR_UNAUTHORIZED, str(err))
    except (HomeAssistantError, vol.Invalid) as err:
        connection.send_error(msg["id"], ws_const.ERR_HOME_ASSISTANT_ERROR, str(err))
    else:
        connection.send_result(msg["id"], {"context": context.as_dict()})


async def async_push_speaker_links(hass: HomeAssistant, entry: KiwiConfigEntry) -> None:
    """Tell the hub which person (and user) each profile is linked to, so its events say so."""
    coordinator = entry.runtime_data.coordinator
    links: dict[str, str] = entry.options.get(CONF_SPEAKER_PERSONS, {})
    for speaker_id in coordinator.data.people:
        person = links.get(speaker_id)
        changes = {"person": person, "ha_user_id": person_user_id(hass, person)}
        try:
            await entry.runtime_data.client.update_speaker(speaker_id, changes)
        except KiwiError as err:  # the next options change or restart sends it again
            LOGGER.warning("Could not tell the hub about %s's person: %s", speaker_id, err)
