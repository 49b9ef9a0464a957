"""Binary sensors: is Kiwi speaking, is it working on an answer, is it connected to HA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity
from .state import KiwiSnapshot

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class KiwiBinarySensorDescription(BinarySensorEntityDescription):
    """A hub flag read from the snapshot."""

    is_on_fn: Callable[[KiwiSnapshot], bool]


BINARY_SENSORS: tuple[KiwiBinarySensorDescription, ...] = (
    KiwiBinarySensorDescription(
        key="speaking",
        translation_key="speaking",
        is_on_fn=lambda snapshot: snapshot.status.is_speaking,
    ),
    KiwiBinarySensorDescription(
        key="processing",
        translation_key="processing",
        device_class=BinarySensorDeviceClass.RUNNING,
        is_on_fn=lambda snapshot: snapshot.status.is_processing,
    ),
    KiwiBinarySensorDescription(
        key="homeassistant_connected",
        translation_key="homeassistant_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda snapshot: snapshot.status.homeassistant_connected,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's binary sensors."""
    async_add_entities(KiwiBinarySensor(entry, description) for description in BINARY_SENSORS)


class KiwiBinarySensor(KiwiEntity, BinarySensorEntity):
    """A binary sensor of the hub."""

    entity_description: KiwiBinarySensorDescription

    @property
    def is_on(self) -> bool:
        """Read the flag from the snapshot."""
        return self.entity_description.is_on_fn(self.coordinator.data)
