"""The hub's client of kiwi-speaker: Kiwi's own Wyoming events for voice profiles.

Requests: speaker-list, speaker-update, speaker-delete, speaker-enroll and speaker-identify
(the last two followed by audio-start/chunk/stop), named once in kiwi_voice/speaker/protocol.py.
Answers are checked against the hub's shapes, so a bad answer becomes a clear 502 instead of a
malformed response.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import voluptuous as vol
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event

from kiwi_voice.speaker import protocol as speaker_protocol

from .protocol import SpeakerEnrolledResponse, SpeakerIdentifiedResponse, SpeakerProfile
from .shapes import validator
from .wyoming_client import ServiceProtocolError, exchange

SERVICE = "speaker"
_CHUNK_FRAMES = 1024

_PROFILE = validator(SpeakerProfile)
_PROFILES = vol.Schema({vol.Required("profiles"): [_PROFILE]}, extra=vol.ALLOW_EXTRA)
_ENROLLED = validator(SpeakerEnrolledResponse)
_IDENTIFIED = validator(SpeakerIdentifiedResponse)


@dataclass(frozen=True)
class PcmAudio:
    rate: int
    width: int
    channels: int
    data: bytes

    def events(self) -> Iterator[Event]:
        yield AudioStart(rate=self.rate, width=self.width, channels=self.channels).event()
        step = _CHUNK_FRAMES * self.width * self.channels
        for offset in range(0, len(self.data), step):
            yield AudioChunk(
                rate=self.rate,
                width=self.width,
                channels=self.channels,
                audio=self.data[offset : offset + step],
            ).event()
        yield AudioStop().event()


def _check(schema: vol.Schema, data: dict[str, Any], what: str, keep: tuple[str, ...]) -> Any:
    try:
        return schema({key: data.get(key) for key in keep})
    except vol.Invalid as err:
        raise ServiceProtocolError(SERVICE, f"speaker service sent a bad {what}: {err}") from err


_PROFILE_KEYS = (
    "id",
    "name",
    "priority",
    "is_blocked",
    "auto_learned",
    "sample_count",
    "last_seen",
)


class SpeakerIdentifier(Protocol):
    """Who is speaking: what a voice turn needs (SpeakersClient, or a wrapper around it)."""

    async def identify(self, audio: PcmAudio) -> SpeakerIdentifiedResponse: ...


class SpeakersClient:
    def __init__(self, uri: str, read_timeout: float = 60.0) -> None:
        self.uri = uri
        self._read_timeout = read_timeout

    async def _ask(self, requests: list[Event], expect: str) -> dict[str, Any]:
        answer = await exchange(
            self.uri, SERVICE, requests, expect, read_timeout=self._read_timeout
        )
        return answer.data

    async def list_profiles(self) -> list[SpeakerProfile]:
        data = await self._ask([Event(speaker_protocol.LIST, {})], speaker_protocol.PROFILES)
        profiles = data.get("profiles")
        if not isinstance(profiles, list):
            raise ServiceProtocolError(
                SERVICE, f"{speaker_protocol.PROFILES} without a profiles list"
            )
        return [self._profile(p) for p in profiles]

    def _profile(self, raw: Any) -> SpeakerProfile:
        if not isinstance(raw, dict):
            raise ServiceProtocolError(SERVICE, "speaker profile is not an object")
        return cast(SpeakerProfile, _check(_PROFILE, raw, "profile", _PROFILE_KEYS))

    async def update(self, speaker_id: str, **changes: Any) -> SpeakerProfile:
        data = await self._ask(
            [Event(speaker_protocol.UPDATE, {"id": speaker_id, **changes})],
            speaker_protocol.PROFILE,
        )
        # The service may send the profile flat or under "profile".
        return self._profile(data.get("profile", data))

    async def delete(self, speaker_id: str) -> str:
        data = await self._ask(
            [Event(speaker_protocol.DELETE, {"id": speaker_id})], speaker_protocol.DELETED
        )
        return str(data.get("id", speaker_id))

    async def enroll(
        self,
        audio: PcmAudio,
        name: str | None,
        priority: int | None,
        speaker_id: str | None,
        auto_learned: bool = False,
    ) -> SpeakerEnrolledResponse:
        request: dict[str, Any] = {}
        if auto_learned:  # a voice Kiwi learned by itself (approvals/guest_learning.py)
            request["auto_learned"] = True
        if name is not None:
            request["name"] = name
        if priority is not None:
            request["priority"] = priority
        if speaker_id is not None:
            request["id"] = speaker_id
        events = [Event(speaker_protocol.ENROLL, request), *audio.events()]
        data = await self._ask(events, speaker_protocol.ENROLLED)
        keys = ("id", "name", "priority", "sample_count")
        return cast(SpeakerEnrolledResponse, _check(_ENROLLED, data, "enrollment", keys))

    async def identify(self, audio: PcmAudio) -> SpeakerIdentifiedResponse:
        data = await self._ask(
            [Event(speaker_protocol.IDENTIFY, {}), *audio.events()], speaker_protocol.IDENTIFIED
        )
        keys = ("id", "name", "priority", "confidence", "is_blocked", "is_self")
        data = dict(data)
        if isinstance(data.get("confidence"), int):
            data["confidence"] = float(data["confidence"])
        return cast(SpeakerIdentifiedResponse, _check(_IDENTIFIED, data, "identification", keys))
