"""Which hub an entry is: the hub's instance id (GET /api/health), made once by the hub.

New entries use it as their unique id, whichever way they were added, so the same hub is never
added twice (by hand and by the add-on's discovery) and stays the same entry when it moves.
Entries from before it (a hand-added hub's `host:port`, a discovered hub's discovery id) take it
over when they are set up, with their devices and entities, which keep their entity ids.
"""

from __future__ import annotations

import re

from homeassistant.config_entries import SOURCE_HASSIO
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN, LOGGER
from .coordinator import KiwiConfigEntry

_ADDRESS_ID = re.compile(r"^.+:\d{1,5}$")


def address_id(host: str, port: int) -> str:
    """The unique id of a hub that reports no instance id (a hub older than instance ids)."""
    return f"{host.lower()}:{port}"


def hub_unique_id(instance_id: str | None, host: str, port: int) -> str:
    """The unique id of an entry for the hub at host:port."""
    return instance_id or address_id(host, port)


def takes_instance_id(entry: KiwiConfigEntry) -> bool:
    """Whether the entry's unique id is one of the kinds used before instance ids."""
    unique_id = entry.unique_id
    return unique_id is None or bool(_ADDRESS_ID.match(unique_id)) or entry.source == SOURCE_HASSIO


@callback
def async_adopt_instance_id(hass: HomeAssistant, entry: KiwiConfigEntry, instance_id: str) -> None:
    """Make `instance_id` the entry's unique id, and move its devices and entities along."""
    old = entry.unique_id or entry.entry_id
    if old == instance_id or not takes_instance_id(entry):
        return
    if any(
        other.unique_id == instance_id and other.entry_id != entry.entry_id
        for other in hass.config_entries.async_entries(DOMAIN, include_ignore=False)
    ):
        LOGGER.warning(
            "The Kiwi hub %s is configured twice; remove one of the entries", instance_id
        )
        return
    entities = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
        if entity.unique_id == old or entity.unique_id.startswith(f"{old}_"):
            entities.async_update_entity(
                entity.entity_id, new_unique_id=instance_id + entity.unique_id[len(old) :]
            )
    devices = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        identifiers = {
            (domain, instance_id + value[len(old) :])
            if domain == DOMAIN and (value == old or value.startswith(f"{old}_"))
            else (domain, value)
            for domain, value in device.identifiers
        }
        if identifiers != device.identifiers:
            devices.async_update_device(device.id, new_identifiers=identifiers)
    hass.config_entries.async_update_entry(entry, unique_id=instance_id)
    LOGGER.info("The Kiwi hub's entry now uses its instance id %s (was %s)", instance_id, old)
