"""Actions: speak, approve, deny, reset the conversation, enroll a speaker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util.json import JsonValueType

from .const import DOMAIN
from .coordinator import KiwiConfigEntry
from .errors import translated_hub_errors
from .recordings import async_download, async_read_allowed_file
from .replies import async_say_on_media_players

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_TEXT = "text"
ATTR_SOUL = "soul"
ATTR_REQUEST_ID = "request_id"
ATTR_NAME = "name"
ATTR_AUDIO_URL = "audio_url"
ATTR_AUDIO_PATH = "audio_path"
ATTR_PRIORITY = "priority"
ATTR_MEDIA_PLAYERS = "media_player_entity_id"

SERVICE_SPEAK = "speak"
SERVICE_APPROVE = "approve"
SERVICE_DENY = "deny"
SERVICE_RESET_CONTEXT = "reset_context"
SERVICE_ENROLL_SPEAKER = "enroll_speaker"

_ENTRY: dict[vol.Marker, Any] = {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string}

SPEAK_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Required(ATTR_TEXT): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_SOUL): cv.string,
        vol.Optional(ATTR_MEDIA_PLAYERS): cv.entity_ids,
    }
)
APPROVAL_SCHEMA = vol.Schema({**_ENTRY, vol.Required(ATTR_REQUEST_ID): cv.string})
ENTRY_SCHEMA = vol.Schema(_ENTRY)
ENROLL_SCHEMA = vol.All(
    vol.Schema(
        {
            **_ENTRY,
            vol.Required(ATTR_NAME): vol.All(cv.string, vol.Length(min=1)),
            vol.Exclusive(ATTR_AUDIO_PATH, "audio"): cv.string,
            vol.Exclusive(ATTR_AUDIO_URL, "audio"): cv.url,
            vol.Optional(ATTR_PRIORITY): vol.All(vol.Coerce(int), vol.Range(min=0, max=3)),
        }
    ),
    cv.has_at_least_one_key(ATTR_AUDIO_PATH, ATTR_AUDIO_URL),
)


def _loaded_entry(call: ServiceCall) -> KiwiConfigEntry:
    """The Kiwi entry the call names; it must be loaded."""
    entry_id: str = call.data[ATTR_CONFIG_ENTRY_ID]
    entry: KiwiConfigEntry | None = call.hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


_T = TypeVar("_T")
_Handler = Callable[[ServiceCall], Coroutine[Any, Any, None]]


async def _call_hub(
    call: ServiceCall, entry: KiwiConfigEntry, request: Awaitable[_T], *, not_found_key: str
) -> _T:
    """Await a hub request and turn its errors into translated Home Assistant errors."""
    with translated_hub_errors(
        call.hass,
        entry,
        failed_key="action_failed",
        not_found_key=not_found_key,
        placeholders={
            "action": call.service,
            "request_id": str(call.data.get(ATTR_REQUEST_ID, "")),
            "soul": str(call.data.get(ATTR_SOUL, "")),
        },
    ):
        return await request


async def _async_speak(call: ServiceCall) -> ServiceResponse:
    entry = _loaded_entry(call)
    client = entry.runtime_data.client
    if (soul := call.data.get(ATTR_SOUL)) is not None:
        known = {s.id for s in entry.runtime_data.coordinator.data.souls}
        if soul not in known:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_soul",
                translation_placeholders={"soul": soul, "souls": ", ".join(sorted(known))},
            )
        await _call_hub(call, entry, client.set_soul(soul), not_found_key="unknown_soul")
    if players := call.data.get(ATTR_MEDIA_PLAYERS):
        # Where the user is: Home Assistant's TTS says it on those media players.
        played_on = await async_say_on_media_players(call.hass, call.data[ATTR_TEXT], players)
        return {"played_on": list[JsonValueType](played_on)}
    played_on = await _call_hub(
        call, entry, client.tts_test(call.data[ATTR_TEXT]), not_found_key="endpoint_missing"
    )
    return {"played_on": list[JsonValueType](played_on)}


async def _async_resolve_approval(call: ServiceCall, *, approved: bool) -> None:
    entry = _loaded_entry(call)
    request = entry.runtime_data.client.resolve_approval(
        call.data[ATTR_REQUEST_ID], approved=approved
    )
    await _call_hub(call, entry, request, not_found_key="approval_not_found")


async def _async_reset_context(call: ServiceCall) -> None:
    entry = _loaded_entry(call)
    request = entry.runtime_data.client.reset_context()
    await _call_hub(call, entry, request, not_found_key="endpoint_missing")


async def _async_enroll_speaker(call: ServiceCall) -> ServiceResponse:
    entry = _loaded_entry(call)
    if ATTR_AUDIO_PATH in call.data:
        wav = await async_read_allowed_file(call.hass, call.data[ATTR_AUDIO_PATH])
    else:
        wav = await async_download(call.hass, call.data[ATTR_AUDIO_URL])
    request = entry.runtime_data.client.enroll_speaker(
        wav, name=call.data[ATTR_NAME], priority=call.data.get(ATTR_PRIORITY)
    )
    profile = await _call_hub(call, entry, request, not_found_key="endpoint_missing")
    await entry.runtime_data.coordinator.async_refresh()
    return {
        "id": profile.id,
        "name": profile.name,
        "priority": profile.priority,
        "sample_count": profile.sample_count,
    }


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions once, for all Kiwi entries."""
    plain: tuple[tuple[str, _Handler, vol.Schema], ...] = (
        (SERVICE_APPROVE, partial(_async_resolve_approval, approved=True), APPROVAL_SCHEMA),
        (SERVICE_DENY, partial(_async_resolve_approval, approved=False), APPROVAL_SCHEMA),
        (SERVICE_RESET_CONTEXT, _async_reset_context, ENTRY_SCHEMA),
    )
    for name, handler, schema in plain:
        hass.services.async_register(DOMAIN, name, handler, schema=schema)
    # speak answers where it played (`played_on`); enroll_speaker the new profile.
    hass.services.async_register(
        DOMAIN,
        SERVICE_SPEAK,
        _async_speak,
        schema=SPEAK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_ENROLL_SPEAKER,
        _async_enroll_speaker,
        schema=ENROLL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
