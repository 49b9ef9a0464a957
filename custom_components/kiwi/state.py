"""What Home Assistant knows about one hub, and how each hub event changes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .api import (
    HubConfig,
    HubStatus,
    KiwiEvent,
    Languages,
    Soul,
    SpeakerProfile,
    TurnMetrics,
)
from .const import SELF_SPEAKER_ID


@dataclass(frozen=True, slots=True, kw_only=True)
class KiwiSnapshot:
    """The hub's state as the entities read it: a REST snapshot kept current by events."""

    status: HubStatus
    config: HubConfig
    languages: Languages
    souls: tuple[Soul, ...]
    speakers: Mapping[str, SpeakerProfile]
    last_transcript: str | None = None
    last_metrics: TurnMetrics | None = None
    # False while the hub cannot list profiles (its speaker service is down): the profiles
    # are then the last ones known, and no speaker device is removed for lack of news.
    speakers_available: bool = True

    @property
    def people(self) -> dict[str, SpeakerProfile]:
        """Speaker profiles that stand for people (Kiwi's own voice left out)."""
        return {sid: p for sid, p in self.speakers.items() if sid != SELF_SPEAKER_ID}

    def speaker_by_name(self, name: str) -> SpeakerProfile | None:
        """The profile with this display name, if exactly one matches."""
        matches = [p for p in self.speakers.values() if p.name == name]
        return matches[0] if len(matches) == 1 else None


def build_snapshot(
    *,
    status: HubStatus,
    config: HubConfig,
    languages: Languages,
    souls: list[Soul],
    speakers: list[SpeakerProfile] | None,
    previous: KiwiSnapshot | None,
) -> KiwiSnapshot:
    """A fresh snapshot from REST reads, keeping what only events tell (the last transcript).

    ``speakers`` is None when the hub could not list them.
    """
    if speakers is not None:
        profiles = {speaker.id: speaker for speaker in speakers}
    else:
        profiles = dict(previous.speakers) if previous else {}
    return KiwiSnapshot(
        status=status,
        config=config,
        languages=languages,
        souls=tuple(souls),
        speakers=profiles,
        speakers_available=speakers is not None,
        last_transcript=previous.last_transcript if previous else None,
        last_metrics=status.last_turn_metrics or (previous.last_metrics if previous else None),
    )


def apply_event(snapshot: KiwiSnapshot, event: KiwiEvent, *, replayed: bool) -> KiwiSnapshot:
    """The snapshot after ``event``.

    Replayed events (they happened while the connection was down) only update history
    fields: the live fields come from the REST read that follows every reconnect.
    """
    data = event.data
    match event.event:
        case "SPEECH_RECOGNIZED" if isinstance(data.get("text"), str):
            return replace(snapshot, last_transcript=data["text"])
        case "TURN_METRICS":
            return replace(snapshot, last_metrics=TurnMetrics.from_dict(data))
    if replayed:
        return snapshot
    match event.event:
        case "STATE_CHANGED" | "TTS_STARTED" | "TTS_FINISHED" | "SOUL_CHANGED":
            return replace(snapshot, status=_status_after(snapshot.status, event.event, data))
        case "SPEAKER_IDENTIFIED":
            return _speaker_identified(snapshot, event)
        case "SPEAKER_ENROLLED" | "SPEAKER_UPDATED" if isinstance(data.get("id"), str):
            return _speaker_changed(snapshot, data)
        case "SPEAKER_DELETED" if isinstance(data.get("id"), str):
            speakers = {sid: p for sid, p in snapshot.speakers.items() if sid != data["id"]}
            return replace(snapshot, speakers=speakers)
        case "CONFIG_CHANGED" if isinstance(data.get("updated"), Mapping):
            return _config_changed(snapshot, data["updated"])
    return snapshot


def _status_after(status: HubStatus, name: str, data: Mapping[str, Any]) -> HubStatus:
    match name:
        case "STATE_CHANGED" if isinstance(data.get("new"), str):
            new_state = data["new"]
            return replace(
                status,
                state=new_state,
                is_speaking=new_state == "SPEAKING",
                is_processing=new_state == "PROCESSING",
            )
        case "TTS_STARTED":
            return replace(status, is_speaking=True)
        case "TTS_FINISHED":
            return replace(status, is_speaking=False)
        case "SOUL_CHANGED" if isinstance(data.get("soul"), str):
            return replace(status, active_soul=data["soul"])
    return status


def _speaker_identified(snapshot: KiwiSnapshot, event: KiwiEvent) -> KiwiSnapshot:
    name = event.data.get("name")
    status = replace(snapshot.status, active_speaker=name if isinstance(name, str) else None)
    speakers = dict(snapshot.speakers)
    speaker_id = event.data.get("id")
    if isinstance(speaker_id, str) and speaker_id in speakers and event.timestamp is not None:
        seen = datetime.fromtimestamp(event.timestamp, UTC)
        speakers[speaker_id] = replace(speakers[speaker_id], last_seen=seen)
    return replace(snapshot, status=status, speakers=speakers)


def _speaker_changed(snapshot: KiwiSnapshot, data: Mapping[str, Any]) -> KiwiSnapshot:
    speakers = dict(snapshot.speakers)
    known = speakers.get(data["id"])
    merged: dict[str, Any] = {
        "id": data["id"],
        "name": known.name if known else data["id"],
        "priority": known.priority if known else 2,
        "is_blocked": known.is_blocked if known else False,
        "sample_count": known.sample_count if known else 0,
        "auto_learned": known.auto_learned if known else False,
    }
    merged.update({key: value for key, value in data.items() if key in merged})
    profile = SpeakerProfile.from_dict(merged)
    speakers[profile.id] = replace(profile, last_seen=known.last_seen if known else None)
    return replace(snapshot, speakers=speakers)


def _config_changed(snapshot: KiwiSnapshot, updated: Mapping[str, Any]) -> KiwiSnapshot:
    config = HubConfig.from_dict({**snapshot.config.raw, **updated})
    languages, status = snapshot.languages, snapshot.status
    if isinstance(language := updated.get("language"), str):
        languages = replace(languages, current=language)
        status = replace(status, language=language)
    return replace(snapshot, config=config, languages=languages, status=status)
