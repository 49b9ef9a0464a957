"""Speaker profiles come and go: add their entities, remove their devices when they leave."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import KiwiConfigEntry
from .entity import speaker_identifier


@callback
def async_add_speaker_entities(
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[str], Iterable[Entity]],
) -> None:
    """Add ``build(speaker_id)`` for every profile now and for every profile that appears later."""
    coordinator = entry.runtime_data.coordinator
    added: set[str] = set()

    @callback
    def add_new_speakers() -> None:
        current = set(coordinator.data.people)
        # A profile deleted and enrolled again under the same id gets fresh entities.
        added.intersection_update(current)
        new = sorted(current - added)
        if new:
            added.update(new)
            async_add_entities([entity for speaker_id in new for entity in build(speaker_id)])

    add_new_speakers()
    entry.async_on_unload(coordinator.async_add_listener(add_new_speakers))


@callback
def async_remove_stale_speaker_devices(hass: HomeAssistant, entry: KiwiConfigEntry) -> None:
    """Remove the devices of profiles the hub no longer has."""
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if is_stale_speaker_device(entry, device):
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)


def is_stale_speaker_device(entry: KiwiConfigEntry, device: dr.DeviceEntry) -> bool:
    """True for a speaker device whose profile the hub no longer has (safe to delete).

    While the hub cannot list profiles, no device counts as stale.
    """
    snapshot = entry.runtime_data.coordinator.data
    if not snapshot.speakers_available:
        return False
    prefix = speaker_identifier(entry, "")
    current = {speaker_identifier(entry, sid) for sid in snapshot.people}
    identifiers = {value for domain, value in device.identifiers if domain == DOMAIN}
    return any(value.startswith(prefix) for value in identifiers) and not identifiers & current
