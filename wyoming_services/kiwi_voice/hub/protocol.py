"""The hub's REST bodies and WebSocket frames, declared once.

Field names are the contract of `shared/seeds/001` (REST) and `000` (events); Kiwi's additions are
marked. `openapi.py` builds the served document from these TypedDicts and request bodies are
validated with `shapes.validator()` from the same declarations.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict, get_args

from .shapes import Doc, Length, PartialOf, Pattern, Range

LanguageCode = Literal[
    "en", "ru", "es", "pt", "fr", "it", "de", "tr", "pl", "zh", "ja", "ko", "hi", "ar", "id"
]
LANGUAGES: tuple[str, ...] = get_args(LanguageCode)
# In English, for what Kiwi tells Claude and the owner about a language.
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "ru": "Russian",
    "es": "Spanish",
    "pt": "Portuguese",
    "fr": "French",
    "it": "Italian",
    "de": "German",
    "tr": "Turkish",
    "pl": "Polish",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "hi": "Hindi",
    "ar": "Arabic",
    "id": "Indonesian",
}

AssistantStateName = Literal["IDLE", "LISTENING", "PROCESSING", "SPEAKING", "WAITING_APPROVAL"]

SpeakerId = Annotated[str, Pattern(r"spk_[0-9a-f]{8}|self"), Doc("spk_ + 8 hex, or `self`")]
SoulId = Annotated[str, Pattern(r"[a-z0-9][a-z0-9_-]{0,63}"), Doc("Soul id (file name)")]
ShortText = Annotated[str, Length(1, 200)]


class ErrorBody(TypedDict):
    code: str
    message: str
    field: NotRequired[Annotated[str, Doc("Kiwi: the request field that was wrong")]]


class ErrorResponse(TypedDict):
    error: ErrorBody


# ---- status, health ---------------------------------------------------------------------------


class HealthResponse(TypedDict):
    """Kiwi addition: liveness without a token."""

    status: Literal["ok"]
    version: str
    instance_id: Annotated[
        str,
        Pattern(r"[0-9a-f]{32}"),
        Doc("This hub's identity: made once, kept in the data dir (the integration's unique id)"),
    ]


class TurnMetrics(TypedDict):
    """Kiwi addition: timings of one voice turn in ms, from the end of speech (null: not run)."""

    turn_id: str
    stt_ms: float | None
    speaker_ms: float | None
    llm_first_token_ms: Annotated[float | None, Doc("From routing start to Claude's first token")]
    first_audio_ms: Annotated[float | None, Doc("End of speech to the first audio byte sent")]
    total_ms: float
    route: Annotated[str | None, Doc("homeassistant, claude, refusal, ... (null: none)")]
    route_first_sentence_ms: Annotated[
        float | None, Doc("From routing start to the first complete sentence")
    ]
    tts_first_audio_ms: Annotated[float | None, Doc("kiwi-tts time for the first sentence")]
    interrupted: bool


class StatusResponse(TypedDict):
    state: AssistantStateName
    language: LanguageCode
    tts_provider: str
    is_speaking: bool
    is_processing: bool
    is_running: bool
    uptime_seconds: Annotated[int, Range(0)]
    active_speaker: str | None
    active_soul: str
    homeassistant_connected: bool
    version: Annotated[str, Doc("Kiwi addition")]
    event_seq: Annotated[int, Range(0), Doc("Kiwi addition: seq of the latest event")]
    last_turn_metrics: Annotated[
        TurnMetrics | None, Doc("Kiwi addition: timings of the latest voice turn")
    ]
    speaker_problems: Annotated[
        list[str],
        Doc(
            "Kiwi addition: what the speaker service reports wrong (it is unreachable, its "
            "encoder is missing, its profile store was set aside at start); empty when all is well"
        ),
    ]


# ---- config -----------------------------------------------------------------------------------


class Settings(TypedDict):
    """Settings that can change at run time. Secrets are never part of them."""

    language: LanguageCode
    tts_provider: Literal["piper"]
    tts_voice: Annotated[
        str,
        Length(0, 128),
        Doc(
            "Piper voice; empty: kiwi-tts's default. When the voice does not speak `language`, "
            "an installed voice that does is used instead"
        ),
    ]
    stt_model: Annotated[
        str,
        Length(1, 128),
        Doc("Whisper model kiwi-stt runs; a change loads it at once (PATCH waits for it)"),
    ]
    stt_device: Annotated[
        Literal["cpu", "cuda", "auto"],
        Doc("Where kiwi-stt runs Whisper; a change reloads the model at once"),
    ]
    wake_word: Annotated[str, Length(1, 128)]
    wake_word_engine: Annotated[
        Literal["auto", "openwakeword", "text"],
        Doc("auto: openwakeword when kiwi-wake has a model for wake_word, else text"),
    ]
    wake_speaker_gate: Annotated[
        bool,
        Doc(
            "Kiwi addition: a wake word counts only in the voice of an enrolled, unblocked "
            "speaker (docs/assist.md)"
        ),
    ]
    allow_nsfw: Annotated[bool, Doc("Owner's consent to switch to souls marked nsfw")]
    llm_model: Annotated[str, Length(1, 128), Doc("Claude model of souls that name none")]
    guest_policy: Literal["allow", "approve", "deny"]
    unknown_speaker_policy: Literal["allow", "approve", "deny"]
    friend_policy: Annotated[
        Literal["allow", "approve", "deny"],
        Doc("Kiwi addition: what a friend's (priority 1) command needs (docs/approvals.md)"),
    ]
    approval_timeout_seconds: Annotated[
        float,
        Range(0.1, 86400.0),
        Doc("Kiwi addition: an unanswered approval request is denied after this long"),
    ]
    approvals_via_api: Annotated[
        bool,
        Doc(
            "Kiwi addition: without Telegram, wait for an answer from Home Assistant "
            "(kiwi.approve) or the dashboard instead of refusing at once"
        ),
    ]
    sensitive_actions: Annotated[
        str,
        Length(0, 1000),
        Doc(
            "Kiwi addition: comma-separated domains, domain.service names or entity ids "
            "(wildcards allowed: *garage*) whose Home Assistant actions the owner must approve "
            "when Claude calls them"
        ),
    ]
    auto_learn_guests: Annotated[
        bool, Doc("Kiwi addition: learn unknown voices as guests after enough samples")
    ]
    auto_learn_samples: Annotated[
        int, Range(1, 50), Doc("Kiwi addition: confident samples before a voice is a guest")
    ]
    auto_learn_min_confidence: Annotated[
        float,
        Range(0.0, 1.0),
        Doc("Kiwi addition: similarity a sample needs to count for a voice being learned"),
    ]
    homeassistant_url: Annotated[
        str, Length(0, 500), Pattern(r"(https?://\S+)?"), Doc("Home Assistant base URL")
    ]
    vad_silence_seconds: Annotated[
        float, Range(0.2, 5.0), Doc("Kiwi addition: silence that ends an utterance")
    ]
    vad_end_on_sentence: Annotated[
        bool,
        Doc(
            "Kiwi addition: a pause ends the utterance before vad_silence_seconds once its "
            "transcript is a whole sentence (docs/pipeline.md)"
        ),
    ]
    max_utterance_seconds: Annotated[
        float, Range(1.0, 60.0), Doc("Kiwi addition: an utterance is cut at this length")
    ]
    listen_timeout_seconds: Annotated[
        float,
        Range(0.5, 30.0),
        Doc("Kiwi addition: after the wake word, wait this long for speech"),
    ]
    context_idle_seconds: Annotated[
        float,
        Range(0.0, 86400.0),
        Doc("Kiwi addition: a speaker's conversation is forgotten after this long idle (0: never)"),
    ]


class SecretsConfigured(TypedDict):
    """Kiwi addition: which secrets are set (never their values)."""

    anthropic_api_key: bool
    telegram_bot_token: bool
    homeassistant_token: bool


class WakeEngineInfo(TypedDict):
    """Kiwi addition: the engine that serves the wake word, and why."""

    engine: Literal["openwakeword", "text"]
    wake_word: str
    model: Annotated[str | None, Doc("kiwi-wake model for openwakeword")]
    reason: str


class ConfigResponse(Settings):
    tts_qwen_backend: Annotated[
        Literal["none"],
        Doc(
            "Seed contract field, not a setting: piper has no Qwen backend. PATCH accepts it "
            "and answers it under `ignored`"
        ),
    ]
    secrets_configured: SecretsConfigured
    wake_word_engine_active: Annotated[
        WakeEngineInfo | None, Doc("Kiwi addition: null until the pipeline has chosen")
    ]
    tts_voices: Annotated[
        list[str],
        Doc("Kiwi addition: voices kiwi-tts has installed (values for tts_voice); [] if unknown"),
    ]


class ContractOnlySettings(Settings):
    """What PATCH /api/config accepts: the settings, plus the seed contract's fields that are
    not settings in Kiwi (accepted so that a client of the contract keeps working, never applied,
    and answered under `ignored`)."""

    tts_qwen_backend: Annotated[str, Length(0, 64), Doc("Ignored: piper has no Qwen backend")]
    tts_default_style: Annotated[str, Length(0, 64), Doc("Ignored: piper has no speaking styles")]


# Why each contract-only field is not applied (the `ignored` answer of PATCH /api/config).
CONTRACT_ONLY_SETTINGS: dict[str, str] = {
    "tts_qwen_backend": "not a Kiwi setting: piper has no Qwen backend",
    "tts_default_style": (
        "not a Kiwi setting: piper voices have no speaking styles (pick another voice instead)"
    ),
}

# PATCH /api/config: any subset of Settings; null puts a field back to its default.
SettingsPatch = Annotated[dict[str, Any], PartialOf(ContractOnlySettings, nullable=True)]
SettingsChanges = Annotated[dict[str, Any], PartialOf(Settings)]


class SettingNotice(TypedDict):
    """Kiwi addition: something about a change the owner should know (it did take effect)."""

    field: str
    code: Annotated[str, Doc("e.g. no_voice_for_language")]
    message: str


class ConfigUpdateResponse(TypedDict):
    updated: Annotated[SettingsChanges, Doc("Only the fields whose value changed")]
    ignored: NotRequired[
        Annotated[
            dict[str, str],
            Doc("Kiwi addition: contract fields that are not settings here, and why"),
        ]
    ]
    notices: NotRequired[
        Annotated[list[SettingNotice], Doc("Kiwi addition: what to know about the change")]
    ]


# ---- speakers ---------------------------------------------------------------------------------


class SpeakerProfile(TypedDict):
    id: str
    name: str
    priority: Annotated[int, Range(0, 3)]
    is_blocked: bool
    auto_learned: bool
    sample_count: Annotated[int, Range(0)]
    last_seen: str | None
    person: NotRequired[
        Annotated[str | None, Doc("Kiwi addition: the linked Home Assistant person (entity id)")]
    ]
    ha_user_id: NotRequired[
        Annotated[str | None, Doc("Kiwi addition: that person's Home Assistant user id")]
    ]
    soul: NotRequired[
        Annotated[str | None, Doc("Kiwi addition: the soul this speaker's turns use")]
    ]


class SpeakersResponse(TypedDict):
    speakers: list[SpeakerProfile]


class SpeakerDeletedResponse(TypedDict):
    deleted: str


class SpeakerBlockedResponse(TypedDict):
    blocked: str


class SpeakerUnblockedResponse(TypedDict):
    unblocked: str


PersonEntityId = Annotated[str, Pattern(r"person\.[a-z0-9_]{1,255}"), Doc("person.<object id>")]
HaUserId = Annotated[str, Pattern(r"[0-9a-f]{32}"), Doc("A Home Assistant user id")]


class SpeakerUpdateRequest(TypedDict, total=False):
    """Kiwi addition: rename or re-rank a profile; link it to a Home Assistant person (the
    turn then runs as that person's HA user) and give it a soul of its own. null unlinks."""

    name: ShortText
    priority: Annotated[int, Range(0, 3)]
    person: PersonEntityId | None
    ha_user_id: HaUserId | None
    soul: Annotated[SoulId | None, Doc("null: the active soul")]


class SpeakerEnrolledResponse(TypedDict):
    """Kiwi addition."""

    id: str
    name: str
    priority: int
    sample_count: int
    ready: Annotated[bool, Doc("The profile has enough enrolment speech to be named")]
    samples_needed: Annotated[int, Range(0), Doc("More samples needed before it is ready")]


class SpeakerCandidate(TypedDict):
    """Kiwi addition: the closest profile to a voice, whatever the decision."""

    id: str
    name: str
    priority: int
    is_blocked: bool
    auto_learned: bool
    ready: bool
    confidence: Annotated[float, Doc("Cosine similarity to the profile")]
    score: Annotated[float, Doc("Normalised score (cosine minus the closest cohort voices')")]
    threshold: Annotated[float, Doc("The profile's calibrated cosine threshold")]


class SpeakerIdentifiedResponse(TypedDict):
    """Kiwi addition."""

    id: str | None
    name: str | None
    priority: int | None
    confidence: float
    is_blocked: bool
    is_self: bool
    decision: Annotated[
        Literal["known", "unknown", "self"],
        Doc("known: id/name set; unknown: a voice Kiwi cannot name (a guest); self: Kiwi's echo"),
    ]
    reason: Annotated[
        Literal[
            "match",
            "self",
            "no_profiles",
            "incomplete_profile",
            "below_threshold",
            "close_to_others",
            "ambiguous",
        ],
        Doc("Why: every test passed, or the first one the voice failed"),
    ]
    score: Annotated[float | None, Doc("Normalised score of the closest profile")]
    margin: Annotated[float | None, Doc("Cosine lead of the closest profile over the next")]
    best: Annotated[SpeakerCandidate | None, Doc("The closest profile, null without profiles")]


# ---- languages --------------------------------------------------------------------------------


class LanguagesResponse(TypedDict):
    current: LanguageCode
    available: list[LanguageCode]


class LanguageRequest(TypedDict):
    language: LanguageCode


class LanguageResponse(TypedDict):
    language: LanguageCode
    notices: NotRequired[
        Annotated[list[SettingNotice], Doc("Kiwi addition: e.g. no installed voice speaks it")]
    ]


# ---- souls ------------------------------------------------------------------------------------


class SoulSummary(TypedDict):
    id: str
    name: str
    description: str
    nsfw: bool
    model: Annotated[str, Doc("Kiwi addition: the Claude model this soul uses")]
    source: Annotated[Literal["builtin", "user"], Doc("Kiwi addition")]


class SoulsResponse(TypedDict):
    souls: list[SoulSummary]
    current: Annotated[str, Doc("Kiwi addition: id of the active soul")]


class SoulDetail(TypedDict):
    id: str
    name: str
    description: str
    nsfw: bool
    model: str
    voice: Annotated[str | None, Doc("Kiwi addition: piper voice, null for the default")]
    speed: Annotated[
        float | None, Doc("Kiwi addition: speech rate factor (piper's length scale is 1/speed)")
    ]
    source: Literal["builtin", "user"]


class SoulSwitchRequest(TypedDict):
    soul: SoulId


class SoulSwitchResponse(TypedDict):
    soul: str
    name: str
    nsfw: bool
    model: str


# ---- controls ---------------------------------------------------------------------------------


class TtsTestRequest(TypedDict, total=False):
    text: Annotated[str, Length(1, 1000)]
    target: Annotated[
        str,
        Length(1, 128),
        Doc("Kiwi addition: play only on this output (host, room:Kitchen, browser:ab12cd34)"),
    ]
    wait: Annotated[
        bool, Doc("Kiwi addition: answer once it was said (default: once audio started)")
    ]


class TtsTestResponse(TypedDict):
    status: Literal["speaking"]
    text: str
    played_on: Annotated[
        list[str],
        Doc("Kiwi addition: where it plays (host, browser:ab12cd34, ...); never empty"),
    ]


class StopResponse(TypedDict):
    status: Literal["stopped"]


class ResetContextResponse(TypedDict):
    status: Literal["context_reset"]


class RestartResponse(TypedDict):
    status: Literal["restarting"]


class ShutdownResponse(TypedDict):
    status: Literal["shutting_down"]


# ---- Home Assistant ---------------------------------------------------------------------------


class HomeAssistantStatusResponse(TypedDict):
    enabled: bool
    connected: bool
    mode: Annotated[Literal["supervisor", "direct", "disabled"], Doc("Kiwi addition")]


class HomeAssistantCommandRequest(TypedDict):
    text: Annotated[str, Length(1, 1000)]
    language: NotRequired[LanguageCode]


class HomeAssistantCommandResponse(TypedDict):
    response: str
    command: str
    response_type: Annotated[str | None, Doc("Kiwi addition: HA's response_type")]
    conversation_id: Annotated[str | None, Doc("Kiwi addition")]


# ---- WebSocket frames (/api/events) -----------------------------------------------------------


class EventFrame(TypedDict):
    """One event: the seed's envelope plus Kiwi's `seq`."""

    event: str
    data: dict[str, Any]
    timestamp: float
    source: str
    seq: Annotated[int, Range(1), Doc("Kiwi addition: monotonic, survives restarts")]


class EventHistoryResponse(TypedDict):
    """Kiwi addition: GET /api/events/history."""

    events: list[EventFrame]
    current_seq: int
    oldest_available: int


class HelloData(TypedDict):
    version: str
    seq: Annotated[int, Range(0), Doc("Latest seq when this connection subscribed")]
    state: AssistantStateName
    types: Annotated[list[str] | None, Doc("The ?types filter, null for all")]
    replay: Annotated[int, Range(0), Doc("How many missed events follow before live ones")]


class HelloFrame(TypedDict):
    """Kiwi addition: first frame on every connection."""

    event: Literal["hello"]
    data: HelloData
    timestamp: float
    source: Literal["hub"]


class ReplayGapData(TypedDict):
    requested_since: int
    oldest_available: Annotated[int, Doc("Oldest seq still in the log (replay starts there)")]
    current_seq: int
    reason: Literal["window_exceeded", "unknown_seq"]


class ReplayGapFrame(TypedDict):
    """Kiwi addition: `since` is older than the log keeps (or newer than the hub knows)."""

    event: Literal["replay_gap"]
    data: ReplayGapData
    timestamp: float
    source: Literal["hub"]


class FrameErrorData(TypedDict):
    code: str
    message: str
    status: Annotated[int, Range(400, 499), Doc("The HTTP status this mistake would get")]


class FrameErrorFrame(TypedDict):
    """Kiwi addition: answer to a client frame the hub cannot use; the connection stays open."""

    event: Literal["error"]
    data: FrameErrorData
    timestamp: float
    source: Literal["hub"]


class PongFrame(TypedDict):
    event: Literal["pong"]


class PingCommand(TypedDict):
    type: Literal["ping"]


CLIENT_COMMANDS: dict[str, type] = {"ping": PingCommand}

# WebSocket close codes (4000-4999 are the application's).
WS_CLOSE_BAD_REQUEST = 4400
WS_CLOSE_UNAUTHORIZED = 4401
WS_CLOSE_SLOW_CONSUMER = 4429
WS_CLOSE_GOING_AWAY = 1001
