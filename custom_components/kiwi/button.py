"""Buttons: stop speaking, forget the conversation, restart the hub, say a test phrase."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import KiwiClient
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity, kiwi_command

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class KiwiButtonDescription(ButtonEntityDescription):
    """A hub control."""

    press_fn: Callable[[KiwiClient], Awaitable[object]]


BUTTONS: tuple[KiwiButtonDescription, ...] = (
    KiwiButtonDescription(
        key="stop",
        translation_key="stop",
        press_fn=lambda client: client.stop(),
    ),
    KiwiButtonDescription(
        key="reset_context",
        translation_key="reset_context",
        press_fn=lambda client: client.reset_context(),
    ),
    KiwiButtonDescription(
        key="restart",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda client: client.restart(),
    ),
    KiwiButtonDescription(
        key="tts_test",
        translation_key="tts_test",
        entity_category=EntityCategory.DIAGNOSTIC,
        press_fn=lambda client: client.tts_test(),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's buttons."""
    async_add_entities(KiwiButton(entry, description) for description in BUTTONS)


class KiwiButton(KiwiEntity, ButtonEntity):
    """A button of the hub."""

    entity_description: KiwiButtonDescription

    @kiwi_command
    async def async_press(self) -> None:
        """Send the control to the hub."""
        await self.entity_description.press_fn(self.coordinator.client)
