"""The "Kiwi voice events" entity: one event per thing Kiwi hears or decides."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import KiwiEvent
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity

PARALLEL_UPDATES = 0

# Hub event names the entity reports, as lower-case event types.
VOICE_EVENT_TYPES = [
    "wake_word_detected",
    "speech_recognized",
    "speaker_identified",
    "llm_complete",
    "tts_started",
    "tts_finished",
    "approval_requested",
    "approval_resolved",
    "exec_approval_requested",
    "exec_approval_resolved",
    "soul_changed",
    "context_reset",
    "turn_metrics",
    "error",
]

VOICE_EVENTS = EventEntityDescription(
    key="voice_events",
    translation_key="voice_events",
    event_types=VOICE_EVENT_TYPES,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's event entity."""
    async_add_entities([KiwiVoiceEventEntity(entry, VOICE_EVENTS)])


class KiwiVoiceEventEntity(KiwiEntity, EventEntity):
    """Reports hub events; the attributes are the event's data (with the linked person)."""

    async def async_added_to_hass(self) -> None:
        """Listen to the hub's events."""
        await super().async_added_to_hass()
        self.async_on_remove(self.coordinator.async_add_event_callback(self._handle_event))

    @callback
    def _handle_event(self, event: KiwiEvent, data: dict[str, Any]) -> None:
        event_type = event.event.lower()
        if event_type not in VOICE_EVENT_TYPES:
            return
        self._trigger_event(event_type, data)
        self.async_write_ha_state()
