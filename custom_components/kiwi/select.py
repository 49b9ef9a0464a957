"""Selects: Kiwi's personality (soul), language and TTS voice.

The soul select shows souls by name, as the active-soul sensor does (a name two souls share is
followed by the soul's id); choosing one switches by id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import KiwiClient
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity, kiwi_command
from .reply_select import async_setup_reply_selects
from .state import KiwiSnapshot

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class KiwiSelectDescription(SelectEntityDescription):
    """A hub setting chosen from the options the hub offers."""

    options_fn: Callable[[KiwiSnapshot], list[str]]
    current_fn: Callable[[KiwiSnapshot], str | None]
    select_fn: Callable[[KiwiClient, str], Awaitable[object]]
    exists_fn: Callable[[KiwiSnapshot], bool] = lambda _: True
    # The hub's value of an option the user picked (default: the option itself).
    value_fn: Callable[[KiwiSnapshot, str], str] = lambda _, option: option


def soul_labels(snapshot: KiwiSnapshot) -> dict[str, str]:
    """Each soul's label in the select (its name; name and id when names repeat) -> its id."""
    names = Counter(soul.name for soul in snapshot.souls)
    return {
        soul.name if names[soul.name] == 1 else f"{soul.name} ({soul.id})": soul.id
        for soul in snapshot.souls
    }


def active_soul_label(snapshot: KiwiSnapshot) -> str | None:
    active = snapshot.status.active_soul
    return next((label for label, sid in soul_labels(snapshot).items() if sid == active), active)


SELECTS: tuple[KiwiSelectDescription, ...] = (
    KiwiSelectDescription(
        key="soul",
        translation_key="soul",
        options_fn=lambda snapshot: list(soul_labels(snapshot)),
        current_fn=active_soul_label,
        select_fn=lambda client, soul: client.set_soul(soul),
        value_fn=lambda snapshot, label: soul_labels(snapshot).get(label, label),
    ),
    KiwiSelectDescription(
        key="language",
        translation_key="language",
        entity_category=EntityCategory.CONFIG,
        options_fn=lambda snapshot: list(snapshot.languages.available),
        current_fn=lambda snapshot: snapshot.languages.current,
        select_fn=lambda client, language: client.set_language(language),
    ),
    KiwiSelectDescription(
        key="tts_voice",
        translation_key="tts_voice",
        entity_category=EntityCategory.CONFIG,
        options_fn=lambda snapshot: list(snapshot.config.tts_voices),
        current_fn=lambda snapshot: snapshot.config.tts_voice,
        select_fn=lambda client, voice: client.update_config({"tts_voice": voice}),
        # A choice of one is no choice: only offered when the hub has several voices.
        exists_fn=lambda snapshot: len(snapshot.config.tts_voices) > 1,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's selects, and each satellite's Replies on select."""
    snapshot = entry.runtime_data.coordinator.data
    async_add_entities(
        KiwiSelect(entry, description) for description in SELECTS if description.exists_fn(snapshot)
    )
    await async_setup_reply_selects(hass, entry, async_add_entities)


class KiwiSelect(KiwiEntity, SelectEntity):
    """A select of the hub."""

    entity_description: KiwiSelectDescription

    @property
    def options(self) -> list[str]:
        """What the hub offers now."""
        return self.entity_description.options_fn(self.coordinator.data)

    @property
    def current_option(self) -> str | None:
        """What the hub uses now."""
        return self.entity_description.current_fn(self.coordinator.data)

    @kiwi_command
    async def async_select_option(self, option: str) -> None:
        """Switch the hub, then read its state back."""
        value = self.entity_description.value_fn(self.coordinator.data, option)
        await self.entity_description.select_fn(self.coordinator.client, value)
        await self.coordinator.async_refresh()
