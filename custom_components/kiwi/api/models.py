"""Typed views of the hub's REST bodies and event frames.

The hub may add fields to any body (the contract only promises never to rename or drop
them), so every parser reads the fields it knows and ignores the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

JsonObject: TypeAlias = dict[str, Any]


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _optional_datetime(value: Any) -> datetime | None:
    """Read an ISO-8601 timestamp; naive ones are the hub's UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnMetrics:
    """Latencies of one voice turn, in milliseconds (TURN_METRICS event)."""

    stt_ms: float | None = None
    speaker_ms: float | None = None
    llm_first_token_ms: float | None = None
    first_audio_ms: float | None = None
    total_ms: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnMetrics:
        """Parse a TURN_METRICS payload or /api/status ``last_turn_metrics``."""
        return cls(
            stt_ms=_optional_number(data.get("stt_ms")),
            speaker_ms=_optional_number(data.get("speaker_ms")),
            llm_first_token_ms=_optional_number(data.get("llm_first_token_ms")),
            first_audio_ms=_optional_number(data.get("first_audio_ms")),
            total_ms=_optional_number(data.get("total_ms")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HubStatus:
    """GET /api/status."""

    state: str
    language: str | None = None
    tts_provider: str | None = None
    is_speaking: bool = False
    is_processing: bool = False
    is_running: bool = True
    uptime_seconds: float | None = None
    active_speaker: str | None = None
    active_soul: str | None = None
    homeassistant_connected: bool = False
    last_turn_metrics: TurnMetrics | None = None
    version: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HubStatus:
        """Parse the status body."""
        metrics = data.get("last_turn_metrics")
        return cls(
            state=str(data.get("state") or "IDLE"),
            language=_optional_str(data.get("language")),
            tts_provider=_optional_str(data.get("tts_provider")),
            is_speaking=bool(data.get("is_speaking", False)),
            is_processing=bool(data.get("is_processing", False)),
            is_running=bool(data.get("is_running", True)),
            uptime_seconds=_optional_number(data.get("uptime_seconds")),
            active_speaker=_optional_str(data.get("active_speaker")),
            active_soul=_optional_str(data.get("active_soul")),
            homeassistant_connected=bool(data.get("homeassistant_connected", False)),
            last_turn_metrics=(
                TurnMetrics.from_dict(metrics) if isinstance(metrics, Mapping) else None
            ),
            version=_optional_str(data.get("version")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Soul:
    """One personality from GET /api/souls."""

    id: str
    name: str
    description: str = ""
    nsfw: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Soul:
        """Parse one soul."""
        soul_id = str(data["id"])
        return cls(
            id=soul_id,
            name=str(data.get("name") or soul_id),
            description=str(data.get("description") or ""),
            nsfw=bool(data.get("nsfw", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakerProfile:
    """One voice profile from GET /api/speakers."""

    id: str
    name: str
    priority: int = 2
    is_blocked: bool = False
    auto_learned: bool = False
    sample_count: int = 0
    last_seen: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpeakerProfile:
        """Parse one profile."""
        speaker_id = str(data["id"])
        return cls(
            id=speaker_id,
            name=str(data.get("name") or speaker_id),
            priority=int(data.get("priority", 2)),
            is_blocked=bool(data.get("is_blocked", False)),
            auto_learned=bool(data.get("auto_learned", False)),
            sample_count=int(data.get("sample_count", 0)),
            last_seen=_optional_datetime(data.get("last_seen")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Languages:
    """GET /api/languages."""

    current: str
    available: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Languages:
        """Parse the languages body."""
        available = tuple(str(code) for code in data.get("available") or ())
        current = str(data.get("current") or (available[0] if available else "en"))
        return cls(current=current, available=available)


@dataclass(frozen=True, slots=True, kw_only=True)
class HubConfig:
    """GET /api/config (safe fields only; the hub never sends secrets here)."""

    tts_voice: str | None = None
    tts_voices: tuple[str, ...] = ()
    # Which secrets the hub has (anthropic_api_key, homeassistant_token, ...), never their values.
    secrets_configured: dict[str, bool] = field(default_factory=dict)
    raw: JsonObject = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HubConfig:
        """Parse the config body; ``tts_voices`` lists the voices the hub can switch to."""
        voices = data.get("tts_voices")
        secrets = data.get("secrets_configured")
        return cls(
            tts_voice=_optional_str(data.get("tts_voice")),
            tts_voices=tuple(str(v) for v in voices) if isinstance(voices, list) else (),
            secrets_configured=(
                {str(k): bool(v) for k, v in secrets.items()} if isinstance(secrets, dict) else {}
            ),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HubInfo:
    """GET /api/health (answered without a token): is it a Kiwi hub, which version, which hub."""

    version: str | None = None
    # The hub's identity, made once and kept in its data dir (None: a hub older than that).
    instance_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HubInfo:
        """Parse the health body."""
        return cls(
            version=_optional_str(data.get("version")),
            instance_id=_optional_str(data.get("instance_id")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KiwiEvent:
    """One frame of /api/events: ``{"event", "data", "timestamp", "source", "seq"}``."""

    event: str
    data: JsonObject
    timestamp: float | None = None
    source: str | None = None
    seq: int | None = None

    @classmethod
    def from_dict(cls, frame: Mapping[str, Any]) -> KiwiEvent:
        """Parse an event frame; a frame without an ``event`` name is a ValueError."""
        name = frame.get("event")
        if not isinstance(name, str) or not name:
            raise ValueError("event frame without an event name")
        data = frame.get("data")
        seq = frame.get("seq")
        return cls(
            event=name,
            data=dict(data) if isinstance(data, Mapping) else {},
            timestamp=_optional_number(frame.get("timestamp")),
            source=_optional_str(frame.get("source")),
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """The first frame of /api/events: ``{"event": "hello", "data": {"seq", "replay", ...}}``.

    ``last_seq`` is the newest sequence number the hub had when the client subscribed;
    the ``replay`` frames that follow (because of ``since``) carry a ``seq`` at or below it.
    """

    last_seq: int | None = None
    replay: int = 0
    version: str | None = None

    @classmethod
    def from_dict(cls, frame: Mapping[str, Any]) -> Hello:
        """Parse the hello frame."""
        data = frame.get("data")
        details: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        seq = details.get("seq")
        replay = details.get("replay")
        return cls(
            last_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            replay=replay if isinstance(replay, int) and not isinstance(replay, bool) else 0,
            version=_optional_str(details.get("version")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationReply:
    """POST /api/conversation."""

    response: str
    conversation_id: str | None = None
    route: str | None = None
    # Home Assistant's response_type when it answered ("error" when it did not understand).
    response_type: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversationReply:
        """Parse the conversation answer."""
        return cls(
            response=str(data.get("response") or ""),
            conversation_id=_optional_str(data.get("conversation_id")),
            route=_optional_str(data.get("route")),
            response_type=_optional_str(data.get("response_type")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SatelliteInfo:
    """One of Kiwi's own microphones from GET /api/satellites (or SATELLITES_CHANGED)."""

    id: str  # host, or room:<name>
    name: str
    kind: str  # host or browser
    can_play: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SatelliteInfo:
        """Parse one satellite."""
        satellite_id = str(data["id"])
        return cls(
            id=satellite_id,
            name=str(data.get("name") or satellite_id),
            kind=str(data.get("kind") or "browser"),
            can_play=bool(data.get("can_play", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenResult:
    """What a satellite heard (POST /api/satellites/{id}/listen)."""

    turn_id: str
    speech: bool
    text: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListenResult:
        """Parse the answer."""
        return cls(
            turn_id=str(data.get("turn_id") or ""),
            speech=bool(data.get("speech", False)),
            text=_optional_str(data.get("text")),
        )
