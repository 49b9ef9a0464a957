"""Assist turns through Kiwi's services, told to the hub (assist_turns.py explains why).

- POST /api/assist/events: Kiwi's combined Wyoming endpoint reports what it saw on a Wyoming
  connection (a wake word, a transcript, who spoke, TTS speaking and done); the hub publishes
  the events a turn of its own would (WAKE_WORD_DETECTED, SPEECH_RECOGNIZED, SPEAKER_IDENTIFIED,
  TTS_STARTED, TTS_FINISHED) and STATE_CHANGED follows.
- POST /api/assist/stt: the integration's speech-to-text entity sends an Assist utterance (WAV);
  the hub transcribes it and identifies the speaker in parallel, publishes the events and
  answers the text with an `utterance_id` that the conversation agent passes on, so the
  conversation knows exactly who spoke.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from kiwi_voice.hub.api.speakers import read_wav
from kiwi_voice.hub.assist_turns import SOURCE
from kiwi_voice.hub.audio.convert import MAX_CHANNELS, PcmConverter
from kiwi_voice.hub.endpoint import Call, Endpoint, QueryParam
from kiwi_voice.hub.errors import ServiceError, bad_request, from_service_error
from kiwi_voice.hub.event_payloads import (
    EventType,
    speaker_identified,
    speech_recognized,
    tts_finished,
    tts_started,
    wake_word_detected,
)
from kiwi_voice.hub.pipeline.turn import speaker_from
from kiwi_voice.hub.protocol import LanguageCode
from kiwi_voice.hub.shapes import Doc, Length, Range
from kiwi_voice.hub.speakers import PcmAudio
from kiwi_voice.hub.state import AssistantState

from .runtime import PIPELINE_KEY

TAG = "assist"
RATE = 16_000
Client = Annotated[
    str, Length(1, 200), Doc("The Wyoming client or satellite (e.g. wyoming:192.168.1.20)")
]


class AssistSpeaker(TypedDict):
    """kiwi-speaker's identification of the turn's voice."""

    id: str | None
    name: str | None
    priority: Annotated[int, Range(0, 3)] | None
    confidence: float
    is_blocked: NotRequired[bool]
    is_self: NotRequired[bool]


class AssistEvent(TypedDict):
    """Kiwi addition: one thing Kiwi's combined Wyoming endpoint saw."""

    event: Annotated[
        Literal["wake", "transcript", "speaker", "speaking", "done"],
        Doc(
            "wake: a wake word (text: its phrase); transcript: STT's text; speaker: who spoke "
            "the transcribed audio; speaking: TTS started (text); done: TTS finished"
        ),
    ]
    client: Client
    text: NotRequired[Annotated[str, Length(0, 2000)]]
    language: NotRequired[Annotated[str, Length(0, 16)]]
    voice: NotRequired[Annotated[str, Length(0, 200)]]
    speaker: NotRequired[Annotated[AssistSpeaker, Doc("event speaker; absent: an unknown voice")]]


class AssistEventResponse(TypedDict):
    published: Annotated[list[str], Doc("The hub events it published")]


class AssistSttResponse(TypedDict):
    """Kiwi addition."""

    text: str
    language: str
    utterance_id: Annotated[str, Doc("Pass to POST /api/conversation: the turn's speaker")]
    speaker: Annotated[dict[str, Any], Doc("SPEAKER_IDENTIFIED's data for this utterance")]


_UNKNOWN_VOICE: dict[str, Any] = {"id": None, "name": None, "priority": None, "confidence": 0.0}
_STATE_AFTER = {
    "wake": AssistantState.LISTENING,
    "transcript": AssistantState.PROCESSING,
    "speaking": AssistantState.SPEAKING,
    "done": AssistantState.IDLE,
}


def _identified(call: Call, result: dict[str, Any]) -> dict[str, Any]:
    runtime = call.request.app[PIPELINE_KEY]
    speaker = speaker_from(result, runtime.pipeline.services.links)
    return dict(
        speaker_identified(
            speaker.name if speaker.id else None,
            speaker.priority,
            speaker.confidence,
            speaker.id,
            speaker.is_blocked,
            person=speaker.person,
            ha_user_id=speaker.ha_user_id,
        )
    )


async def post_assist_event(call: Call) -> AssistEventResponse:
    body, bus = call.body, call.ctx.bus
    kind, client = body["event"], body["client"]
    published: list[str] = []
    if kind == "wake":
        payload = wake_word_detected(body.get("text") or "", trigger="wake_word", session=client)
        bus.publish(EventType.WAKE_WORD_DETECTED, payload, SOURCE)
        published.append(EventType.WAKE_WORD_DETECTED)
    elif kind == "transcript":
        language = body.get("language") or str(call.ctx.settings.get("language"))
        payload = speech_recognized(body.get("text") or "", language)
        bus.publish(EventType.SPEECH_RECOGNIZED, payload, SOURCE)
        published.append(EventType.SPEECH_RECOGNIZED)
    elif kind == "speaker":
        # No identification (kiwi-speaker had none to give): the voice is unknown, a guest.
        result = dict(body.get("speaker") or _UNKNOWN_VOICE)
        bus.publish(EventType.SPEAKER_IDENTIFIED, _identified(call, result), SOURCE)
        published.append(EventType.SPEAKER_IDENTIFIED)
    elif kind == "speaking":
        payload = tts_started(body.get("text") or "", "piper", body.get("voice"))
        bus.publish(EventType.TTS_STARTED, payload, SOURCE)
        published.append(EventType.TTS_STARTED)
    else:
        bus.publish(EventType.TTS_FINISHED, tts_finished(False), SOURCE)
        published.append(EventType.TTS_FINISHED)
    if (state := _STATE_AFTER.get(kind)) is not None:
        call.ctx.assist.enter(state)
    return {"published": published}


async def post_assist_stt(call: Call) -> AssistSttResponse:
    wav = await read_wav(call)
    if not 1 <= wav.channels <= MAX_CHANNELS or not 4_000 <= wav.rate <= 192_000:
        raise bad_request(
            "bad_audio", f"{wav.channels} channel(s) at {wav.rate} Hz: send mono or stereo PCM"
        )
    # kiwi-stt and kiwi-speaker both take 16 kHz mono s16.
    try:
        pcm = PcmConverter(RATE).convert(wav.data, wav.rate, wav.width, wav.channels)
    except Exception as err:  # audioop (its own error type) refuses what it cannot convert
        raise bad_request("bad_audio", f"cannot convert the audio: {err}") from err
    audio = PcmAudio(rate=RATE, width=2, channels=1, data=pcm)
    runtime = call.request.app[PIPELINE_KEY]
    services = runtime.pipeline.services
    language = call.query.get("language") or str(call.ctx.settings.get("language"))
    client = call.query.get("client") or "homeassistant"
    call.ctx.assist.enter(AssistantState.PROCESSING)
    identify = asyncio.create_task(services.speakers.identify(audio))
    try:
        transcript = await services.stt.transcribe(audio, language)
    except ServiceError as err:
        identify.cancel()
        call.ctx.assist.enter(AssistantState.IDLE)
        raise from_service_error(err) from err
    text, language = transcript.text, transcript.language or language
    call.ctx.bus.publish(EventType.SPEECH_RECOGNIZED, speech_recognized(text, language), SOURCE)
    try:
        result: dict[str, Any] = dict(await identify)
    except ServiceError:  # who spoke is unknown, not fatal: the voice is a guest's
        result = dict(_UNKNOWN_VOICE)
    identified = _identified(call, result)
    call.ctx.bus.publish(EventType.SPEAKER_IDENTIFIED, identified, SOURCE)
    utterance = call.ctx.assist.remember(text, language, result, client)
    return {
        "text": text,
        "language": language,
        "utterance_id": utterance.utterance_id,
        "speaker": identified,
    }


ENDPOINTS = (
    Endpoint(
        method="POST",
        path="/api/assist/events",
        handler=post_assist_event,
        summary="What Kiwi's Wyoming services saw of an Assist turn (Kiwi addition)",
        tag=TAG,
        request=AssistEvent,
        response=AssistEventResponse,
        description=(
            "Sent by Kiwi's combined Wyoming endpoint; the hub publishes the matching events "
            "and STATE_CHANGED follows the turn."
        ),
    ),
    Endpoint(
        method="POST",
        path="/api/assist/stt",
        handler=post_assist_stt,
        summary="Transcribe an Assist utterance and identify its speaker (Kiwi addition)",
        tag=TAG,
        raw_body="audio/wav",
        query=(
            QueryParam(name="language", annotation=LanguageCode, description="Its language"),
            QueryParam(name="client", annotation=Client, description="Where it came from"),
        ),
        response=AssistSttResponse,
        errors=(400, 413, 415, 502, 503),
        description=(
            "Used by the integration's speech-to-text entity. Publishes SPEECH_RECOGNIZED and "
            "SPEAKER_IDENTIFIED; `utterance_id` names the speaker to POST /api/conversation."
        ),
    ),
)
