"""Base entities of the Kiwi integration: one for the hub device, one for speaker devices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import SpeakerProfile
from .const import DEFAULT_NAME, DOMAIN, MANUFACTURER
from .coordinator import KiwiConfigEntry, KiwiCoordinator
from .errors import translated_hub_errors

_EntityT = TypeVar("_EntityT", bound="KiwiEntity")
_P = ParamSpec("_P")


def hub_device_info(entry: KiwiConfigEntry) -> DeviceInfo:
    """The one device that stands for the hub."""
    data = entry.runtime_data
    return DeviceInfo(
        identifiers={(DOMAIN, hub_identifier(entry))},
        name=DEFAULT_NAME,
        manufacturer=MANUFACTURER,
        model="Kiwi hub",
        sw_version=data.info.version,
        configuration_url=data.client.base_url,
    )


def hub_identifier(entry: KiwiConfigEntry) -> str:
    """The hub's device identifier: its unique id, the entry id for entries without one."""
    return entry.unique_id or entry.entry_id


def speaker_identifier(entry: KiwiConfigEntry, speaker_id: str) -> str:
    """A speaker device's identifier, unique across hubs."""
    return f"{hub_identifier(entry)}_speaker_{speaker_id}"


def satellite_identifier(entry: KiwiConfigEntry, satellite_id: str) -> str:
    """A satellite device's identifier (one of Kiwi's microphones), unique across hubs."""
    return f"{hub_identifier(entry)}_satellite_{satellite_id}"


def kiwi_command(
    func: Callable[Concatenate[_EntityT, _P], Awaitable[None]],
) -> Callable[Concatenate[_EntityT, _P], Coroutine[Any, Any, None]]:
    """Turn hub errors of an entity command into translated HomeAssistantErrors."""

    @wraps(func)
    async def wrapper(self: _EntityT, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        with translated_hub_errors(
            self.hass,
            self.coordinator.config_entry,
            failed_key="command_failed",
            not_found_key="not_found",
            placeholders={"entity_id": self.entity_id},
        ):
            await func(self, *args, **kwargs)

    return wrapper


class KiwiEntity(CoordinatorEntity[KiwiCoordinator]):
    """An entity of the hub device."""

    _attr_has_entity_name = True

    def __init__(self, entry: KiwiConfigEntry, description: EntityDescription) -> None:
        """Bind the entity to the hub's coordinator and device."""
        super().__init__(entry.runtime_data.coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{hub_identifier(entry)}_{description.key}"
        self._attr_device_info = hub_device_info(entry)

    @property
    def available(self) -> bool:
        """Unavailable while the hub's event stream is down."""
        return super().available and self.coordinator.connected


class KiwiSpeakerEntity(KiwiEntity):
    """An entity of a speaker profile's device."""

    def __init__(
        self, entry: KiwiConfigEntry, description: EntityDescription, speaker_id: str
    ) -> None:
        """Bind the entity to one speaker profile."""
        super().__init__(entry, description)
        self.speaker_id = speaker_id
        profile = self.coordinator.data.speakers[speaker_id]
        self._attr_unique_id = f"{speaker_identifier(entry, speaker_id)}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, speaker_identifier(entry, speaker_id))},
            name=profile.name,
            manufacturer=MANUFACTURER,
            model="Speaker profile",
            via_device=(DOMAIN, hub_identifier(entry)),
        )

    @property
    def profile(self) -> SpeakerProfile | None:
        """The speaker's current profile; None once the hub has deleted it."""
        return self.coordinator.data.speakers.get(self.speaker_id)

    @property
    def available(self) -> bool:
        """Unavailable while disconnected or once the profile is gone."""
        return super().available and self.profile is not None
