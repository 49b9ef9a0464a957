"""Kiwi's speaker protocol: Wyoming framing, Kiwi's own event types.

Requests and their answers (one answer per request, on the same connection):

- `speaker-enroll` {name, priority?, id?, auto_learned?}, then audio-start, audio-chunk*,
  audio-stop -> `speaker-enrolled` {id, name, priority, sample_count, samples_added, ready,
  samples_needed, threshold}
- `speaker-identify` {}, then audio-start, audio-chunk*, audio-stop
  -> `speaker-identified` {id, name, priority, confidence, is_blocked, is_self, decision,
  reason, score, threshold, margin, speech_seconds, best}
- `speaker-list` {} -> `speaker-profiles` {profiles: [profile, ...]}
- `speaker-update` {id, name?, priority?, is_blocked?} -> `speaker-profile` {profile}
- `speaker-delete` {id} -> `speaker-deleted` {id}
- `describe` -> `info` (with a `speaker` section, see `info.py`)

A profile is {id, name, priority, is_blocked, auto_learned, sample_count, last_seen}: `id` is
`spk_` + 8 hex digits, or `self` for Kiwi's own TTS voice (so its echo is recognised);
priority 0 owner, 1 friend, 2 guest (default), 3 blocked role; `last_seen` is ISO-8601 UTC
or null. `speaker-enroll` with `id` adds the sample to that profile (and applies `name` /
`priority` if given); `id: "self"` creates the self profile on first use. A clip with 10 s of
speech or more is split into samples of 5 s or more (`samples_added`). A profile is `ready`
(can be named) once it has 3 enrolment samples; `samples_needed` says how many are missing,
`threshold` is its calibrated cosine threshold (null until it has two samples).
`auto_learned: true` marks a sample Kiwi took by itself: into an existing profile it is only
accepted when the voice is clearly that profile's (else `sample_rejected`).

Identification is open-set (matching.py): `decision` is `known` (id, name, priority set),
`self` (Kiwi's own voice) or `unknown` (id, name, priority null), with the `reason` (`match`,
`self`, `no_profiles`, `incomplete_profile`, `below_threshold`, `close_to_others`,
`ambiguous`). `best` is the closest profile whatever the decision ({id, name, priority,
is_blocked, auto_learned, ready, confidence, score, threshold}, null without profiles);
`confidence` is its cosine similarity, `score` its normalised score, `threshold` its cosine
threshold, `margin` its lead over the second closest (null with one profile).

Errors are the Wyoming `error` event {text, code}; codes: `unknown_profile`, `bad_request`,
`bad_audio`, `no_audio` (empty or silent), `audio_too_short`, `audio_too_quiet`,
`audio_clipped`, `enrollment_busy` (the same name is being enrolled on another connection),
`sample_rejected`, `unexpected_event`, `payload_too_large`, `model_missing`.

This module imports no engine, so clients (the hub) can use the event classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from wyoming.event import Event, Eventable

SELF_PROFILE_ID = "self"
PRIORITIES = {0: "owner", 1: "friend", 2: "guest", 3: "blocked"}
DEFAULT_PRIORITY = 2

ENROLL = "speaker-enroll"
ENROLLED = "speaker-enrolled"
IDENTIFY = "speaker-identify"
IDENTIFIED = "speaker-identified"
LIST = "speaker-list"
PROFILES = "speaker-profiles"
UPDATE = "speaker-update"
PROFILE = "speaker-profile"
DELETE = "speaker-delete"
DELETED = "speaker-deleted"


class ProfileData(TypedDict):
    id: str
    name: str
    priority: int
    is_blocked: bool
    auto_learned: bool
    sample_count: int
    last_seen: str | None


def _optional(data: dict[str, Any], key: str, kind: type) -> Any:
    """`data[key]` if present and of type `kind` (a bool is not accepted as an int)."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(f"{key} must be {kind.__name__}, not {type(value).__name__}")
    return value


@dataclass
class SpeakerEnroll(Eventable):
    name: str | None = None
    priority: int | None = None
    id: str | None = None
    auto_learned: bool = False

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == ENROLL

    def event(self) -> Event:
        data: dict[str, Any] = {"name": self.name, "auto_learned": self.auto_learned}
        if self.priority is not None:
            data["priority"] = self.priority
        if self.id is not None:
            data["id"] = self.id
        return Event(type=ENROLL, data=data)

    @staticmethod
    def from_event(event: Event) -> SpeakerEnroll:
        data = event.data or {}
        return SpeakerEnroll(
            name=_optional(data, "name", str),
            priority=_optional(data, "priority", int),
            id=_optional(data, "id", str),
            auto_learned=bool(_optional(data, "auto_learned", bool) or False),
        )


@dataclass
class SpeakerEnrolled(Eventable):
    id: str
    name: str
    priority: int
    sample_count: int
    samples_added: int = 1
    ready: bool = False
    samples_needed: int = 0
    threshold: float | None = None

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == ENROLLED

    def event(self) -> Event:
        return Event(type=ENROLLED, data=dict(self.__dict__))

    @staticmethod
    def from_event(event: Event) -> SpeakerEnrolled:
        data = event.data
        return SpeakerEnrolled(
            data["id"],
            data["name"],
            data["priority"],
            data["sample_count"],
            samples_added=int(data.get("samples_added", 1)),
            ready=bool(data.get("ready", False)),
            samples_needed=int(data.get("samples_needed", 0)),
            threshold=data.get("threshold"),
        )


class CandidateData(TypedDict):
    """The closest profile to a voice, whatever the decision (`best` in speaker-identified)."""

    id: str
    name: str
    priority: int
    is_blocked: bool
    auto_learned: bool
    ready: bool
    confidence: float  # cosine similarity
    score: float  # normalised score
    threshold: float  # the profile's cosine threshold


@dataclass
class SpeakerIdentify(Eventable):
    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == IDENTIFY

    def event(self) -> Event:
        return Event(type=IDENTIFY)

    @staticmethod
    def from_event(event: Event) -> SpeakerIdentify:
        return SpeakerIdentify()


@dataclass
class SpeakerIdentified(Eventable):
    id: str | None
    name: str | None
    priority: int | None
    confidence: float
    is_blocked: bool = False
    is_self: bool = False
    decision: str = "unknown"  # known, unknown or self
    reason: str = "no_profiles"
    score: float | None = None
    threshold: float | None = None
    margin: float | None = None
    speech_seconds: float | None = None
    best: CandidateData | None = None

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == IDENTIFIED

    def event(self) -> Event:
        return Event(type=IDENTIFIED, data=dict(self.__dict__))

    @staticmethod
    def from_event(event: Event) -> SpeakerIdentified:
        data = event.data
        return SpeakerIdentified(
            id=data.get("id"),
            name=data.get("name"),
            priority=data.get("priority"),
            confidence=float(data["confidence"]),
            is_blocked=bool(data.get("is_blocked", False)),
            is_self=bool(data.get("is_self", False)),
            decision=str(data.get("decision", "unknown")),
            reason=str(data.get("reason", "no_profiles")),
            score=data.get("score"),
            threshold=data.get("threshold"),
            margin=data.get("margin"),
            speech_seconds=data.get("speech_seconds"),
            best=data.get("best"),
        )


@dataclass
class SpeakerList(Eventable):
    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == LIST

    def event(self) -> Event:
        return Event(type=LIST)

    @staticmethod
    def from_event(event: Event) -> SpeakerList:
        return SpeakerList()


@dataclass
class SpeakerProfiles(Eventable):
    profiles: list[ProfileData] = field(default_factory=list)

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == PROFILES

    def event(self) -> Event:
        return Event(type=PROFILES, data={"profiles": list(self.profiles)})

    @staticmethod
    def from_event(event: Event) -> SpeakerProfiles:
        return SpeakerProfiles(profiles=list(event.data.get("profiles", [])))


@dataclass
class SpeakerUpdate(Eventable):
    id: str
    name: str | None = None
    priority: int | None = None
    is_blocked: bool | None = None

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == UPDATE

    def event(self) -> Event:
        data = {k: v for k, v in self.__dict__.items() if v is not None}
        return Event(type=UPDATE, data=data)

    @staticmethod
    def from_event(event: Event) -> SpeakerUpdate:
        data = event.data or {}
        profile_id = data.get("id")
        if not isinstance(profile_id, str):
            raise TypeError("id must be a string")
        return SpeakerUpdate(
            id=profile_id,
            name=_optional(data, "name", str),
            priority=_optional(data, "priority", int),
            is_blocked=_optional(data, "is_blocked", bool),
        )


@dataclass
class SpeakerProfile(Eventable):
    profile: ProfileData

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == PROFILE

    def event(self) -> Event:
        return Event(type=PROFILE, data={"profile": dict(self.profile)})

    @staticmethod
    def from_event(event: Event) -> SpeakerProfile:
        return SpeakerProfile(profile=event.data["profile"])


@dataclass
class SpeakerDelete(Eventable):
    id: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == DELETE

    def event(self) -> Event:
        return Event(type=DELETE, data={"id": self.id})

    @staticmethod
    def from_event(event: Event) -> SpeakerDelete:
        profile_id = (event.data or {}).get("id")
        if not isinstance(profile_id, str):
            raise TypeError("id must be a string")
        return SpeakerDelete(id=profile_id)


@dataclass
class SpeakerDeleted(Eventable):
    id: str

    @staticmethod
    def is_type(event_type: str) -> bool:
        return event_type == DELETED

    def event(self) -> Event:
        return Event(type=DELETED, data={"id": self.id})

    @staticmethod
    def from_event(event: Event) -> SpeakerDeleted:
        return SpeakerDeleted(id=event.data["id"])
