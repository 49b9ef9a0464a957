"""Event names and their payloads (seed 000), plus Kiwi's additional events.

One TypedDict per event; `EVENT_PAYLOADS` maps each name to it, and the builders below are the
only way the hub's code makes a payload, so every published event matches the served document.
Modules that add events (the pipeline) add a TypedDict and a builder here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from .protocol import AssistantStateName, SettingsChanges, TurnMetrics
from .shapes import Doc, Range


class EventType(StrEnum):
    # seed 000
    STATE_CHANGED = "STATE_CHANGED"
    WAKE_WORD_DETECTED = "WAKE_WORD_DETECTED"
    SPEECH_RECOGNIZED = "SPEECH_RECOGNIZED"
    SPEAKER_IDENTIFIED = "SPEAKER_IDENTIFIED"
    LLM_TOKEN = "LLM_TOKEN"
    LLM_COMPLETE = "LLM_COMPLETE"
    TTS_STARTED = "TTS_STARTED"
    TTS_FINISHED = "TTS_FINISHED"
    APPROVAL_REQUESTED = "APPROVAL_REQUESTED"
    APPROVAL_RESOLVED = "APPROVAL_RESOLVED"
    EXEC_APPROVAL_REQUESTED = "EXEC_APPROVAL_REQUESTED"
    EXEC_APPROVAL_RESOLVED = "EXEC_APPROVAL_RESOLVED"
    SOUL_CHANGED = "SOUL_CHANGED"
    ERROR = "ERROR"
    # Kiwi additions
    CONFIG_CHANGED = "CONFIG_CHANGED"
    CONTEXT_RESET = "CONTEXT_RESET"
    SPEAKER_ENROLLED = "SPEAKER_ENROLLED"
    SPEAKER_UPDATED = "SPEAKER_UPDATED"
    SPEAKER_DELETED = "SPEAKER_DELETED"
    HUB_STOPPING = "HUB_STOPPING"
    MODEL_LOADING = "MODEL_LOADING"
    MODEL_LOADED = "MODEL_LOADED"
    # Kiwi additions of the voice pipeline (hub/pipeline)
    TURN_METRICS = "TURN_METRICS"
    SPEAKER_BLOCKED = "SPEAKER_BLOCKED"
    # Kiwi addition: Kiwi's own microphones (Home Assistant's assist satellites)
    SATELLITES_CHANGED = "SATELLITES_CHANGED"


SEED_EVENTS: tuple[EventType, ...] = tuple(EventType)[:14]
# Who decided an approval request (approvals/model.py): an owner's channel, or its deadline.
ApprovalDecidedBy = Literal["telegram", "api", "voice", "timeout"]


class StateChanged(TypedDict):
    old: AssistantStateName
    new: AssistantStateName
    session: NotRequired[
        Annotated[
            str,
            Doc("Kiwi addition: whose turn (host, room:Kitchen, browser:ab12cd34, broadcast)"),
        ]
    ]


class WakeWordDetected(TypedDict):
    text: str
    score: NotRequired[Annotated[float, Doc("Kiwi addition: detector score 0-1")]]
    trigger: NotRequired[
        Annotated[
            Literal["wake_word", "push_to_talk"],
            Doc("Kiwi addition: heard the wake word, or a client pressed push-to-talk"),
        ]
    ]
    session: NotRequired[
        Annotated[str, Doc("Kiwi addition: the audio source (e.g. browser:ab12cd34)")]
    ]


class SpeechRecognized(TypedDict):
    text: str
    language: str


class SpeakerIdentified(TypedDict):
    name: Annotated[str, Doc('"Unknown" when no profile matched')]
    priority: int
    confidence: float
    id: NotRequired[Annotated[str | None, Doc("Kiwi addition: profile id")]]
    is_blocked: NotRequired[Annotated[bool, Doc("Kiwi addition")]]
    person: NotRequired[
        Annotated[str | None, Doc("Kiwi addition: the Home Assistant person linked to the profile")]
    ]
    ha_user_id: NotRequired[
        Annotated[str | None, Doc("Kiwi addition: that person's Home Assistant user")]
    ]


class LlmToken(TypedDict):
    token: str


class LlmComplete(TypedDict):
    text: str
    model: NotRequired[Annotated[str, Doc("Kiwi addition")]]


class TtsStarted(TypedDict):
    text: str
    provider: str
    voice: NotRequired[Annotated[str | None, Doc("Kiwi addition")]]


class TtsFinished(TypedDict):
    interrupted: NotRequired[Annotated[bool, Doc("Kiwi addition: stopped before the end")]]
    audio_seconds: NotRequired[Annotated[float, Range(0), Doc("Kiwi addition")]]
    text: NotRequired[
        Annotated[str, Doc("Kiwi addition: everything said (a reply played elsewhere uses it)")]
    ]


class ApprovalRequested(TypedDict):
    speaker: str
    command: str
    request_id: NotRequired[Annotated[str, Doc("Kiwi addition")]]
    timeout_seconds: NotRequired[
        Annotated[float, Range(0), Doc("Kiwi addition: denied when unanswered this long")]
    ]


class ApprovalResolved(TypedDict):
    approved: bool
    speaker: str
    request_id: NotRequired[Annotated[str, Doc("Kiwi addition")]]
    decided_by: NotRequired[Annotated[ApprovalDecidedBy, Doc("Kiwi addition: who answered")]]


class ExecApprovalRequested(TypedDict):
    command: str
    request_id: str
    timeout_seconds: NotRequired[
        Annotated[float, Range(0), Doc("Kiwi addition: denied when unanswered this long")]
    ]


class ExecApprovalResolved(TypedDict):
    approved: bool
    request_id: str
    decided_by: NotRequired[Annotated[ApprovalDecidedBy, Doc("Kiwi addition: who answered")]]


class SoulChanged(TypedDict):
    soul: str
    name: str
    model: NotRequired[Annotated[str, Doc("Kiwi addition")]]
    nsfw: NotRequired[Annotated[bool, Doc("Kiwi addition")]]


class ErrorEvent(TypedDict):
    message: str
    source: Annotated[str, Doc("Part that failed: tts, stt, speaker, homeassistant, hub, ...")]
    code: NotRequired[Annotated[str, Doc("Kiwi addition: machine-readable code")]]
    turn_id: NotRequired[Annotated[str, Doc("Kiwi addition: the voice turn that failed")]]
    setting: NotRequired[
        Annotated[
            str,
            Doc(
                "Kiwi addition: the setting or option to fill or change to fix it "
                "(anthropic_api_key, homeassistant_token, stt_model, tts_voice, ...)"
            ),
        ]
    ]


class ConfigChanged(TypedDict):
    """Kiwi addition: settings changed (PATCH /api/config, POST /api/language)."""

    updated: SettingsChanges


class ContextReset(TypedDict):
    """Kiwi addition: the conversation history was cleared."""


class SpeakerEnrolled(TypedDict):
    """Kiwi addition."""

    id: str
    name: str
    priority: int
    sample_count: int


class SpeakerUpdated(TypedDict):
    """Kiwi addition: a profile was blocked, unblocked, renamed or re-ranked."""

    id: str
    name: str
    priority: int
    is_blocked: bool


class SpeakerDeleted(TypedDict):
    """Kiwi addition."""

    id: str


class HubStopping(TypedDict):
    """Kiwi addition: the hub is about to exit (clients should reconnect with ?since)."""

    reason: Literal["restart", "shutdown", "signal"]


class ModelLoading(TypedDict):
    """Kiwi addition: a service is switching its model (a setting changed); progress."""

    service: Literal["stt"]
    model: str
    device: str
    stage: Literal["downloading", "loading"]


class ModelLoaded(TypedDict):
    """Kiwi addition: the service runs the new model now."""

    service: Literal["stt"]
    model: str
    device: str
    seconds: Annotated[float, Range(0)]


class SpeakerBlocked(TypedDict):
    """Kiwi addition: a blocked speaker (or Kiwi's own echo) spoke; the utterance was ignored."""

    turn_id: str
    name: str
    id: str | None
    reason: str


class SatelliteInfo(TypedDict):
    """Kiwi addition: one of Kiwi's own microphones (GET /api/satellites)."""

    id: Annotated[str, Doc("host, or room:<name> for a browser microphone that named its room")]
    name: Annotated[str, Doc("What to call it: Host microphone, or the room's name")]
    kind: Literal["host", "browser"]
    can_play: Annotated[bool, Doc("It has a speaker: announcements and replies play on it")]
    replies: Annotated[
        Literal["here", "elsewhere"],
        Doc("elsewhere: Home Assistant plays its replies on a media player, not on it"),
    ]


class SatellitesChanged(TypedDict):
    """Kiwi addition: a microphone joined or left (a named browser microphone connected or
    went away, the host microphone opened); every satellite there is now."""

    satellites: list[SatelliteInfo]


EVENT_PAYLOADS: dict[str, Any] = {
    EventType.STATE_CHANGED: StateChanged,
    EventType.WAKE_WORD_DETECTED: WakeWordDetected,
    EventType.SPEECH_RECOGNIZED: SpeechRecognized,
    EventType.SPEAKER_IDENTIFIED: SpeakerIdentified,
    EventType.LLM_TOKEN: LlmToken,
    EventType.LLM_COMPLETE: LlmComplete,
    EventType.TTS_STARTED: TtsStarted,
    EventType.TTS_FINISHED: TtsFinished,
    EventType.APPROVAL_REQUESTED: ApprovalRequested,
    EventType.APPROVAL_RESOLVED: ApprovalResolved,
    EventType.EXEC_APPROVAL_REQUESTED: ExecApprovalRequested,
    EventType.EXEC_APPROVAL_RESOLVED: ExecApprovalResolved,
    EventType.SOUL_CHANGED: SoulChanged,
    EventType.ERROR: ErrorEvent,
    EventType.CONFIG_CHANGED: ConfigChanged,
    EventType.CONTEXT_RESET: ContextReset,
    EventType.SPEAKER_ENROLLED: SpeakerEnrolled,
    EventType.SPEAKER_UPDATED: SpeakerUpdated,
    EventType.SPEAKER_DELETED: SpeakerDeleted,
    EventType.HUB_STOPPING: HubStopping,
    EventType.MODEL_LOADING: ModelLoading,
    EventType.MODEL_LOADED: ModelLoaded,
    EventType.TURN_METRICS: TurnMetrics,
    EventType.SPEAKER_BLOCKED: SpeakerBlocked,
    EventType.SATELLITES_CHANGED: SatellitesChanged,
}


# ---- builders: the hub's only way to make a payload -------------------------------------------


def state_changed(old: str, new: str, session: str | None = None) -> StateChanged:
    payload: StateChanged = {"old": old, "new": new}  # type: ignore[typeddict-item]
    if session is not None:
        payload["session"] = session
    return payload


def wake_word_detected(
    text: str,
    score: float | None = None,
    trigger: Literal["wake_word", "push_to_talk"] | None = None,
    session: str | None = None,
) -> WakeWordDetected:
    payload: WakeWordDetected = {"text": text}
    if score is not None:
        payload["score"] = score
    if trigger is not None:
        payload["trigger"] = trigger
    if session is not None:
        payload["session"] = session
    return payload


def speech_recognized(text: str, language: str) -> SpeechRecognized:
    return {"text": text, "language": language}


def speaker_identified(
    name: str | None,
    priority: int | None,
    confidence: float,
    speaker_id: str | None = None,
    is_blocked: bool = False,
    *,
    person: str | None = None,
    ha_user_id: str | None = None,
) -> SpeakerIdentified:
    """An unmatched voice is reported as "Unknown" with guest priority (2)."""
    return {
        "name": name if name is not None else "Unknown",
        "priority": priority if priority is not None else 2,
        "confidence": float(confidence),
        "id": speaker_id,
        "is_blocked": is_blocked,
        "person": person,
        "ha_user_id": ha_user_id,
    }


def llm_token(token: str) -> LlmToken:
    return {"token": token}


def llm_complete(text: str, model: str | None = None) -> LlmComplete:
    payload: LlmComplete = {"text": text}
    if model is not None:
        payload["model"] = model
    return payload


def tts_started(text: str, provider: str, voice: str | None = None) -> TtsStarted:
    return {"text": text, "provider": provider, "voice": voice}


def tts_finished(
    interrupted: bool = False, audio_seconds: float | None = None, text: str | None = None
) -> TtsFinished:
    payload: TtsFinished = {"interrupted": interrupted}
    if audio_seconds is not None:
        payload["audio_seconds"] = round(audio_seconds, 3)
    if text:
        payload["text"] = text
    return payload


def approval_requested(
    speaker: str,
    command: str,
    request_id: str | None = None,
    timeout_seconds: float | None = None,
) -> ApprovalRequested:
    payload: ApprovalRequested = {"speaker": speaker, "command": command}
    if request_id is not None:
        payload["request_id"] = request_id
    if timeout_seconds is not None:
        payload["timeout_seconds"] = float(timeout_seconds)
    return payload


def approval_resolved(
    approved: bool,
    speaker: str,
    request_id: str | None = None,
    decided_by: ApprovalDecidedBy | None = None,
) -> ApprovalResolved:
    payload: ApprovalResolved = {"approved": approved, "speaker": speaker}
    if request_id is not None:
        payload["request_id"] = request_id
    if decided_by is not None:
        payload["decided_by"] = decided_by
    return payload


def exec_approval_requested(
    command: str, request_id: str, timeout_seconds: float | None = None
) -> ExecApprovalRequested:
    payload: ExecApprovalRequested = {"command": command, "request_id": request_id}
    if timeout_seconds is not None:
        payload["timeout_seconds"] = float(timeout_seconds)
    return payload


def exec_approval_resolved(
    approved: bool, request_id: str, decided_by: ApprovalDecidedBy | None = None
) -> ExecApprovalResolved:
    payload: ExecApprovalResolved = {"approved": approved, "request_id": request_id}
    if decided_by is not None:
        payload["decided_by"] = decided_by
    return payload


def soul_changed(soul: str, name: str, model: str, nsfw: bool) -> SoulChanged:
    return {"soul": soul, "name": name, "model": model, "nsfw": nsfw}


def error(
    message: str,
    source: str,
    code: str | None = None,
    turn_id: str | None = None,
    setting: str | None = None,
) -> ErrorEvent:
    payload: ErrorEvent = {"message": message, "source": source}
    if code is not None:
        payload["code"] = code
    if turn_id is not None:
        payload["turn_id"] = turn_id
    if setting is not None:
        payload["setting"] = setting
    return payload


def config_changed(updated: dict[str, Any]) -> ConfigChanged:
    return {"updated": dict(updated)}


def context_reset() -> ContextReset:
    return {}


def speaker_enrolled(
    speaker_id: str, name: str, priority: int, sample_count: int
) -> SpeakerEnrolled:
    return {"id": speaker_id, "name": name, "priority": priority, "sample_count": sample_count}


def speaker_updated(speaker_id: str, name: str, priority: int, is_blocked: bool) -> SpeakerUpdated:
    return {"id": speaker_id, "name": name, "priority": priority, "is_blocked": is_blocked}


def speaker_deleted(speaker_id: str) -> SpeakerDeleted:
    return {"id": speaker_id}


def hub_stopping(reason: Literal["restart", "shutdown", "signal"]) -> HubStopping:
    return {"reason": reason}


def speaker_blocked(turn_id: str, name: str, speaker_id: str | None, reason: str) -> SpeakerBlocked:
    return {"turn_id": turn_id, "name": name, "id": speaker_id, "reason": reason}


def model_loading(
    model: str, device: str, stage: Literal["downloading", "loading"]
) -> ModelLoading:
    return {"service": "stt", "model": model, "device": device, "stage": stage}


def model_loaded(model: str, device: str, seconds: float) -> ModelLoaded:
    return {"service": "stt", "model": model, "device": device, "seconds": round(seconds, 3)}


def satellites_changed(satellites: list[SatelliteInfo]) -> SatellitesChanged:
    return {"satellites": satellites}
