"""The hub's client of kiwi-speaker: Kiwi's own Wyoming events for voice profiles.

Requests: speaker-list, speaker-update, speaker-delete, speaker-enroll and speaker-identify
(the last two followed by audio-start/chunk/stop), and describe for what the service reports
wrong (`problems`, shown in /api/status). Answers are checked against the hub's shapes, so a
bad answer becomes a clear 502 instead of a malformed response.

Identification is open-set (kiwi_voice/speaker/matching.py): `decision` says whether the voice
is a known profile, Kiwi's own, or unknown (a guest); `best` is the closest profile either way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import voluptuous as vol
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe

from .errors import ServiceError
from .protocol import SpeakerEnrolledResponse, SpeakerIdentifiedResponse, SpeakerProfile
from .shapes import validator
from .wyoming_client import ServiceProtocolError, exchange

SERVICE = "speaker"
_CHUNK_FRAMES = 1024
_PROBLEMS_CACHE_S = 5.0  # /api/status asks often; describe once in a while is enough
_PROBLEMS_TIMEOUT_S = 2.0

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
        self._problems: tuple[float, list[str]] | None = None

    async def problems(self) -> list[str]:
        """What the speaker service says is wrong, in words (cached for a few seconds)."""
        now = time.monotonic()
        if self._problems is not None and now - self._problems[0] < _PROBLEMS_CACHE_S:
            return self._problems[1]
        try:
            answer = await exchange(
                self.uri,
                SERVICE,
                [Describe().event()],
                "info",
                connect_timeout=_PROBLEMS_TIMEOUT_S,
                read_timeout=_PROBLEMS_TIMEOUT_S,
            )
            programs = answer.data.get("speaker") or []
            reported = programs[0].get("problems", []) if programs else []
            problems = [str(p) for p in reported] if isinstance(reported, list) else []
        except ServiceError as err:
            problems = [err.message]
        self._problems = (now, problems)
        return problems

    async def _ask(self, requests: list[Event], expect: str) -> dict[str, Any]:
        answer = await exchange(
            self.uri, SERVICE, requests, expect, read_timeout=self._read_timeout
        )
        return answer.data

    async def list_profiles(self) -> list[SpeakerProfile]:
        data = await self._ask([Event("speaker-list", {})], "speaker-profiles")
        profiles = data.get("profiles")
        if not isinstance(profiles, list):
            raise ServiceProtocolError(SERVICE, "speaker-profiles without a profiles list")
        return [self._profile(p) for p in profiles]

    def _profile(self, raw: Any) -> SpeakerProfile:
        if not isinstance(raw, dict):
            raise ServiceProtocolError(SERVICE, "speaker profile is not an object")
        return cast(SpeakerProfile, _check(_PROFILE, raw, "profile", _PROFILE_KEYS))

    async def update(self, speaker_id: str, **changes: Any) -> SpeakerProfile:
        data = await self._ask(
            [Event("speaker-update", {"id": speaker_id, **changes})], "speaker-profile"
        )
        # The service may send the profile flat or under "profile".
        return self._profile(data.get("profile", data))

    async def delete(self, speaker_id: str) -> str:
        data = await self._ask([Event("speaker-delete", {"id": speaker_id})], "speaker-deleted")
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
        events = [Event("speaker-enroll", request), *audio.events()]
        data = await self._ask(events, "speaker-enrolled")
        keys = ("id", "name", "priority", "sample_count", "ready", "samples_needed")
        return cast(SpeakerEnrolledResponse, _check(_ENROLLED, data, "enrollment", keys))

    async def identify(self, audio: PcmAudio) -> SpeakerIdentifiedResponse:
        data = await self._ask(
            [Event("speaker-identify", {}), *audio.events()], "speaker-identified"
        )
        keys = (
            "id",
            "name",
            "priority",
            "confidence",
            "is_blocked",
            "is_self",
            "decision",
            "reason",
            "score",
            "margin",
            "best",
        )
        data = dict(data)
        for key in ("confidence", "score", "margin"):
            if isinstance(data.get(key), int):
                data[key] = float(data[key])
        best = data.get("best")
        if isinstance(best, dict):
            data["best"] = {
                k: float(v) if k in _CANDIDATE_FLOATS and isinstance(v, int) else v
                for k, v in best.items()
                if k in _CANDIDATE_KEYS
            }
        return cast(SpeakerIdentifiedResponse, _check(_IDENTIFIED, data, "identification", keys))


_CANDIDATE_FLOATS = ("confidence", "score", "threshold")
_CANDIDATE_KEYS = (
    "id",
    "name",
    "priority",
    "is_blocked",
    "auto_learned",
    "ready",
    *_CANDIDATE_FLOATS,
)
