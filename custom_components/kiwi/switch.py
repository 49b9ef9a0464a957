"""Switches: block a speaker profile (Kiwi then ignores that voice)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import KiwiClient, SpeakerProfile
from .coordinator import KiwiConfigEntry
from .entity import KiwiSpeakerEntity, kiwi_command
from .speakers import async_add_speaker_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class KiwiSpeakerSwitchDescription(SwitchEntityDescription):
    """A switch of a speaker profile."""

    is_on_fn: Callable[[SpeakerProfile], bool]
    set_fn: Callable[[KiwiClient, str, bool], Awaitable[None]]


SPEAKER_SWITCHES: tuple[KiwiSpeakerSwitchDescription, ...] = (
    KiwiSpeakerSwitchDescription(
        key="blocked",
        translation_key="blocked",
        is_on_fn=lambda profile: profile.is_blocked,
        set_fn=lambda client, speaker_id, blocked: (
            client.block_speaker(speaker_id) if blocked else client.unblock_speaker(speaker_id)
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each speaker's switches, now and as profiles appear."""
    async_add_speaker_entities(
        entry,
        async_add_entities,
        lambda speaker_id: (
            KiwiSpeakerSwitch(entry, description, speaker_id) for description in SPEAKER_SWITCHES
        ),
    )


class KiwiSpeakerSwitch(KiwiSpeakerEntity, SwitchEntity):
    """A switch of a speaker profile."""

    entity_description: KiwiSpeakerSwitchDescription

    @property
    def is_on(self) -> bool | None:
        """Read the flag from the profile."""
        profile = self.profile
        return self.entity_description.is_on_fn(profile) if profile else None

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Set the flag on the hub."""
        await self._async_set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Clear the flag on the hub."""
        await self._async_set(False)

    @kiwi_command
    async def _async_set(self, value: bool) -> None:
        await self.entity_description.set_fn(self.coordinator.client, self.speaker_id, value)
        await self.coordinator.async_refresh()
