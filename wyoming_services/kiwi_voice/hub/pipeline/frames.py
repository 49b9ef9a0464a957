"""What a turn tells the client it came from (the server frames of /api/audio about a turn).

Names follow AstrBot's live mode where it has one: `user_text` (user_msg), `bot_delta`
(bot_delta_chunk: raw model text, not aligned to audio), `bot_text` (bot_text_chunk: the
sentence whose audio follows), `stop_play`, `end`, `metrics`, `error`. Every frame carries the
turn id, so a client can drop what belongs to a turn it already gave up on.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired, TypedDict

from kiwi_voice.hub.protocol import TurnMetrics
from kiwi_voice.hub.shapes import Doc

TurnRoute = Literal[
    "homeassistant",
    "claude",
    "refusal",
    "apology",
    "blocked",
    "announcement",
    "approval",  # the owner answered a pending approval request by voice
    "none",
]

# conversation: Home Assistant asked this satellite to listen (start_conversation, ask_question).
ListenTrigger = Literal["wake_word", "push_to_talk", "conversation"]


class ListeningFrame(TypedDict):
    """The wake word was heard (or push-to-talk pressed): Kiwi is capturing the utterance."""

    type: Literal["listening"]
    turn_id: str
    trigger: ListenTrigger


class UserTextFrame(TypedDict):
    """What Kiwi understood (the STT transcript, or the text_input as sent)."""

    type: Literal["user_text"]
    turn_id: str
    text: str
    language: str


class BotDeltaFrame(TypedDict):
    """A raw piece of the reply as the model streams it (append to a buffer)."""

    type: Literal["bot_delta"]
    turn_id: str
    text: str


class BotTextFrame(TypedDict):
    """The sentence whose audio comes next (text aligned with playback)."""

    type: Literal["bot_text"]
    turn_id: str
    text: str


class StopPlayFrame(TypedDict):
    """Drop every queued sample of this turn now (barge-in, stop)."""

    type: Literal["stop_play"]
    turn_id: str


class TurnEndFrame(TypedDict):
    """The turn is over; no frame or audio of it follows."""

    type: Literal["end"]
    turn_id: str
    route: Annotated[TurnRoute, Doc("Who answered; refusal/apology: Kiwi itself")]
    text: Annotated[str, Doc("The whole reply as spoken (up to an interruption)")]
    interrupted: bool
    model: NotRequired[Annotated[str, Doc("The Claude model, when Claude answered")]]


class TurnMetricsFrame(TypedDict):
    type: Literal["metrics"]
    turn_id: str
    data: TurnMetrics


class TurnErrorFrame(TypedDict):
    """Something failed; `code` says what (stt_unavailable, llm_overloaded, ...)."""

    type: Literal["error"]
    code: str
    message: str
    turn_id: NotRequired[str]


TurnFrame = (
    ListeningFrame
    | UserTextFrame
    | BotDeltaFrame
    | BotTextFrame
    | StopPlayFrame
    | TurnEndFrame
    | TurnMetricsFrame
    | TurnErrorFrame
)
TURN_FRAMES: tuple[type, ...] = (
    ListeningFrame,
    UserTextFrame,
    BotDeltaFrame,
    BotTextFrame,
    StopPlayFrame,
    TurnEndFrame,
    TurnMetricsFrame,
    TurnErrorFrame,
)


def listening(turn_id: str, trigger: ListenTrigger) -> ListeningFrame:
    return {"type": "listening", "turn_id": turn_id, "trigger": trigger}


def user_text(turn_id: str, text: str, language: str) -> UserTextFrame:
    return {"type": "user_text", "turn_id": turn_id, "text": text, "language": language}


def bot_delta(turn_id: str, text: str) -> BotDeltaFrame:
    return {"type": "bot_delta", "turn_id": turn_id, "text": text}


def bot_text(turn_id: str, text: str) -> BotTextFrame:
    return {"type": "bot_text", "turn_id": turn_id, "text": text}


def stop_play(turn_id: str) -> StopPlayFrame:
    return {"type": "stop_play", "turn_id": turn_id}


def turn_end(
    turn_id: str, route: TurnRoute, text: str, interrupted: bool, model: str | None
) -> TurnEndFrame:
    frame: TurnEndFrame = {
        "type": "end",
        "turn_id": turn_id,
        "route": route,
        "text": text,
        "interrupted": interrupted,
    }
    if model is not None:
        frame["model"] = model
    return frame


def turn_metrics(turn_id: str, metrics: TurnMetrics) -> TurnMetricsFrame:
    return {"type": "metrics", "turn_id": turn_id, "data": metrics}


def turn_error(code: str, message: str, turn_id: str | None = None) -> TurnErrorFrame:
    frame: TurnErrorFrame = {"type": "error", "code": code, "message": message}
    if turn_id is not None:
        frame["turn_id"] = turn_id
    return frame
