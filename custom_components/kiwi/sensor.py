"""Sensors: what Kiwi is doing, who spoke, what was heard, how fast the last turn was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .api import SpeakerProfile
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity, KiwiSpeakerEntity
from .speakers import async_add_speaker_entities
from .state import KiwiSnapshot

PARALLEL_UPDATES = 0

# The hub's assistant states (STATE_CHANGED "new"), lower-cased for translation keys.
ASSISTANT_STATES = ["idle", "listening", "processing", "speaking", "waiting_approval"]


def _assistant_state(snapshot: KiwiSnapshot) -> str | None:
    state = snapshot.status.state.lower()
    return state if state in ASSISTANT_STATES else None


def _active_soul_name(snapshot: KiwiSnapshot) -> str | None:
    soul_id = snapshot.status.active_soul
    names = {soul.id: soul.name for soul in snapshot.souls}
    return names.get(soul_id, soul_id) if soul_id else None


@dataclass(frozen=True, kw_only=True)
class KiwiSensorDescription(SensorEntityDescription):
    """A hub sensor read from the snapshot."""

    value_fn: Callable[[KiwiSnapshot], StateType]


def _metric(key: str, read: Callable[[KiwiSnapshot], float | None]) -> KiwiSensorDescription:
    return KiwiSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        # A latency figure per turn is for tuning, not for every dashboard: enabled on demand.
        entity_registry_enabled_default=False,
        suggested_display_precision=0,
        value_fn=read,
    )


HUB_SENSORS: tuple[KiwiSensorDescription, ...] = (
    KiwiSensorDescription(
        key="assistant_state",
        translation_key="assistant_state",
        device_class=SensorDeviceClass.ENUM,
        options=ASSISTANT_STATES,
        value_fn=_assistant_state,
    ),
    KiwiSensorDescription(
        key="active_speaker",
        translation_key="active_speaker",
        value_fn=lambda snapshot: snapshot.status.active_speaker,
    ),
    KiwiSensorDescription(
        key="active_soul",
        translation_key="active_soul",
        value_fn=_active_soul_name,
    ),
    KiwiSensorDescription(
        key="last_transcript",
        translation_key="last_transcript",
        value_fn=lambda snapshot: snapshot.last_transcript,
    ),
    _metric("stt_ms", lambda s: s.last_metrics.stt_ms if s.last_metrics else None),
    _metric(
        "llm_first_token_ms",
        lambda s: s.last_metrics.llm_first_token_ms if s.last_metrics else None,
    ),
    _metric(
        "first_audio_ms",
        lambda s: s.last_metrics.first_audio_ms if s.last_metrics else None,
    ),
)


@dataclass(frozen=True, kw_only=True)
class KiwiSpeakerSensorDescription(SensorEntityDescription):
    """A sensor of a speaker profile."""

    value_fn: Callable[[SpeakerProfile], datetime | None]


SPEAKER_SENSORS: tuple[KiwiSpeakerSensorDescription, ...] = (
    KiwiSpeakerSensorDescription(
        key="last_seen",
        translation_key="last_seen",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda profile: profile.last_seen,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's sensors and each speaker's sensors."""
    async_add_entities(KiwiSensor(entry, description) for description in HUB_SENSORS)
    async_add_speaker_entities(
        entry,
        async_add_entities,
        lambda speaker_id: (
            KiwiSpeakerSensor(entry, description, speaker_id) for description in SPEAKER_SENSORS
        ),
    )


class KiwiSensor(KiwiEntity, SensorEntity):
    """A sensor of the hub."""

    entity_description: KiwiSensorDescription

    @property
    def native_value(self) -> StateType:
        """Read the value from the snapshot."""
        return self.entity_description.value_fn(self.coordinator.data)


class KiwiSpeakerSensor(KiwiSpeakerEntity, SensorEntity):
    """A sensor of a speaker profile."""

    entity_description: KiwiSpeakerSensorDescription

    @property
    def native_value(self) -> datetime | None:
        """Read the value from the speaker's profile."""
        profile = self.profile
        return self.entity_description.value_fn(profile) if profile else None
