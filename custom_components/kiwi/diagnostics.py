"""Diagnostics: what the integration knows about the hub, the token left out."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant

from .coordinator import KiwiConfigEntry

TO_REDACT = {CONF_TOKEN, "token", "api_token"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: KiwiConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    coordinator = entry.runtime_data.coordinator
    snapshot = coordinator.data
    return {
        "entry": async_redact_data(
            {"data": dict(entry.data), "options": dict(entry.options)}, TO_REDACT
        ),
        "hub": asdict(entry.runtime_data.info),
        "connection": {
            "url": coordinator.client.base_url,
            "connected": coordinator.connected,
            "last_seq": coordinator.stream.last_seq,
            "last_update_success": coordinator.last_update_success,
        },
        "snapshot": async_redact_data(asdict(snapshot), TO_REDACT),
    }
