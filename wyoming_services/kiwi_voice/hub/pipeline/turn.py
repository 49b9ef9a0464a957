"""One turn, stage by stage: understand (STT ∥ speaker) → policy → route → speak, and the
bookkeeping every turn ends with, however it ends (done, failed, interrupted).

Events, in order: STATE_CHANGED → PROCESSING, SPEECH_RECOGNIZED, SPEAKER_IDENTIFIED, (LLM_TOKEN…
LLM_COMPLETE), STATE_CHANGED → SPEAKING, TTS_STARTED, TTS_FINISHED, STATE_CHANGED → IDLE,
TURN_METRICS. A failure adds ERROR (with the turn id) and Kiwi says sorry when it still can.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.event_payloads import (
    EventType,
    error,
    llm_complete,
    llm_token,
    speaker_blocked,
    speaker_identified,
    speech_recognized,
    tts_finished,
    tts_started,
)
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.homeassistant import Requester, acting_for
from kiwi_voice.hub.routing.router import NoRouteError, Reply, Route, Router
from kiwi_voice.hub.settings import SettingsStore
from kiwi_voice.hub.souls import ActiveSoul, Soul
from kiwi_voice.hub.speaker_links import SpeakerLinks
from kiwi_voice.hub.speakers import PcmAudio, SpeakerIdentifier
from kiwi_voice.hub.state import AssistantState, StateMachine
from kiwi_voice.hub.tts import TtsClient, VoiceChooser

from . import frames
from .metrics import TurnTimer
from .policy import Action, ApprovalGate, Speaker, SpeakerPolicy
from .sink import TurnSink
from .speech import SpeechOutput, cancel_for_sure
from .stt import SttClient, Transcript

_LOGGER = logging.getLogger(__name__)
SOURCE = "pipeline"
T = TypeVar("T")
# conversation: Home Assistant asked a satellite to listen (assist_satellite.start_conversation).
Trigger = Literal["wake_word", "push_to_talk", "text", "announcement", "conversation"]

DIDNT_CATCH = "Sorry, I didn't catch that."
_APOLOGIES = {
    "stt": "Sorry, I could not understand that: speech recognition is not available right now.",
    "llm": "Sorry, I cannot reach my language model right now.",
    "homeassistant": "Sorry, Home Assistant did not answer.",
    "hub": "Sorry, I cannot answer that right now.",
}


@dataclass(frozen=True, kw_only=True)
class TurnRequest:
    turn_id: str
    sink: TurnSink
    trigger: Trigger
    audio: bytes | None = None  # the utterance, 16 kHz mono s16
    text: str | None = None  # typed text, or a transcript the wake engine already made
    language: str | None = None
    speaker: Speaker | None = None  # who typed it (typed turns have no voiceprint)
    speech_ended: float = field(default_factory=time.perf_counter)
    context_key: str | None = None  # conversation history to use (default: the speaker's)
    # kiwi-stt's transcription of exactly `audio`, started at the pause before the end of
    # speech was certain (the listener's early STT); awaited instead of a new request.
    early_transcript: asyncio.Task[Transcript] | None = None


@dataclass
class Turn:
    request: TurnRequest
    timer: TurnTimer
    route: frames.TurnRoute = "none"
    user_text: str | None = None
    language: str | None = None
    reply: Reply | None = None
    context_key: str | None = None  # whose conversation history this turn continues
    spoken_text: str = ""
    model: str | None = None
    speech: SpeechOutput | None = None
    speaking: bool = False  # TTS_STARTED was published
    interrupted: bool = False  # cancelled, and the turn knows it
    finishing: bool = False  # in its final bookkeeping: not to be cancelled any more
    superseded: bool = False  # a barge-in takes the state over: do not go back to IDLE
    error_code: str | None = None
    apologizing: bool = False
    first_audio: asyncio.Future[None] | None = None  # resolved when audio starts (announcements)
    soul_id: str | None = None  # the speaker's own soul (None: the active soul)

    @property
    def turn_id(self) -> str:
        return self.request.turn_id

    @property
    def sink(self) -> TurnSink:
        return self.request.sink


@dataclass(frozen=True, kw_only=True)
class TurnServices:
    bus: EventBus
    state: StateMachine
    settings: SettingsStore
    souls: ActiveSoul
    stt: SttClient
    speakers: SpeakerIdentifier
    tts: TtsClient
    router: Router
    policy: SpeakerPolicy
    approvals: ApprovalGate
    stream_sentences: bool = True
    voices: VoiceChooser | None = None  # default: one of its own over `tts`
    links: SpeakerLinks | None = None  # HA person/user and soul of each profile


class TurnRunner:
    def __init__(self, services: TurnServices) -> None:
        self._s = services
        self._voices = services.voices or VoiceChooser(services.tts)

    # ---- the whole turn --------------------------------------------------------------------

    async def run(self, turn: Turn) -> None:
        try:
            try:
                await self._stages(turn)
            except ServiceError as err:
                await self._failed(turn, err)
            except Exception as err:
                _LOGGER.exception("Turn %s failed", turn.turn_id)
                await self._failed(
                    turn, ServiceError("hub", "internal_error", f"internal error: {err}")
                )
        except asyncio.CancelledError:  # also while apologizing
            turn.interrupted = True
            await self._stop_speaking(turn)
            raise
        finally:
            turn.finishing = True
            await self._finish(turn)

    async def _stages(self, turn: Turn) -> None:
        request = turn.request
        if request.trigger == "announcement":
            await self._say(turn, request.text or "", "announcement")
            return
        speaker = await self._understand(turn)
        text, language = turn.user_text or "", turn.language or self._language()
        if not text:
            await self._say(turn, DIDNT_CATCH, "apology")
            return
        answered = await self._s.approvals.answer_by_voice(speaker, text)
        if answered is not None:  # the owner's "yes"/"no" to a pending approval request
            await self._say(turn, answered, "approval")
            return
        decision = self._s.policy.decide(speaker)
        if decision.action is Action.DROP:
            turn.route = "blocked"
            payload = speaker_blocked(turn.turn_id, speaker.name, speaker.id, decision.reason)
            self._s.bus.publish(EventType.SPEAKER_BLOCKED, payload, SOURCE)
            return
        allow_home_control = decision.action is Action.RUN
        if decision.action is Action.APPROVE:
            self._enter(AssistantState.WAITING_APPROVAL)
            result = await self._s.approvals.request(speaker, text, language)
            self._enter(AssistantState.PROCESSING)
            if not result.approved:
                await self._say(turn, result.answer or "Sorry, that was not approved.", "refusal")
                return
            allow_home_control = True
        turn.timer.route_started = turn.timer.now()
        turn.context_key = request.context_key or speaker.context_key
        turn.soul_id = speaker.soul
        # A voice's turn runs in HA as the speaker's linked user; an unnamed voice as a guest.
        requester = Requester(speaker.id if speaker.id else None) if speaker.voice else None
        # Also while the reply streams: Claude's tool calls run then.
        with acting_for(requester):
            reply = await self._s.router.route(
                text,
                language,
                turn.context_key,
                allow_home_control=allow_home_control,
                report_error=lambda err: self._report(turn, err),
                soul=speaker.soul,
            )
            turn.reply, turn.route, turn.model = reply, reply.route.value, reply.model  # type: ignore[assignment]
            turn.timer.route = reply.route.value
            await self._speak_reply(turn, reply)

    # ---- understanding ---------------------------------------------------------------------

    def _language(self) -> str:
        return str(self._s.settings.get("language"))

    async def _understand(self, turn: Turn) -> Speaker:
        request = turn.request
        self._enter(AssistantState.PROCESSING)
        language = request.language or self._language()
        if request.audio is None:  # typed
            turn.user_text, turn.language = (request.text or "").strip(), language
            await turn.sink.send_frame(frames.user_text(turn.turn_id, turn.user_text, language))
            return request.speaker or Speaker.client("client")
        audio = PcmAudio(rate=16_000, width=2, channels=1, data=request.audio)
        identify = asyncio.create_task(self._timed(self._s.speakers.identify(audio)))
        try:
            if request.text is not None:  # the text wake engine transcribed it already
                turn.user_text, turn.language = request.text.strip(), language
            else:
                # With early STT, stt_ms is what is left to wait after the end of speech.
                pending = request.early_transcript or self._s.stt.transcribe(audio, language)
                transcript, turn.timer.stt_seconds = await self._timed(pending)
                turn.user_text, turn.language = transcript.text, transcript.language or language
        except BaseException:
            identify.cancel()
            if request.early_transcript is not None:
                request.early_transcript.cancel()
            raise
        payload = speech_recognized(turn.user_text, turn.language)
        self._s.bus.publish(EventType.SPEECH_RECOGNIZED, payload, SOURCE)
        await turn.sink.send_frame(frames.user_text(turn.turn_id, turn.user_text, turn.language))
        return await self._identified(turn, identify)

    async def _identified(
        self, turn: Turn, identify: asyncio.Task[tuple[dict[str, object], float]]
    ) -> Speaker:
        try:
            result, turn.timer.speaker_seconds = await identify
        except ServiceError as err:
            # Who spoke is unknown, not fatal: the policy treats the voice as unknown.
            self._report(turn, err)
            result = {"id": None, "name": None, "priority": None, "confidence": 0.0}
        speaker = speaker_from(result, self._s.links)
        payload = speaker_identified(
            result.get("name"),  # type: ignore[arg-type]
            speaker.priority,
            speaker.confidence,
            speaker.id,
            speaker.is_blocked,
            person=speaker.person,
            ha_user_id=speaker.ha_user_id,
        )
        self._s.bus.publish(EventType.SPEAKER_IDENTIFIED, payload, SOURCE)
        return speaker

    @staticmethod
    async def _timed(work: Awaitable[T]) -> tuple[T, float]:
        started = time.perf_counter()
        result = await work
        return result, time.perf_counter() - started

    # ---- speaking --------------------------------------------------------------------------

    async def _speech(self, turn: Turn) -> SpeechOutput:
        """The turn's voice: the soul's (else `tts_voice`) when it speaks the turn's language,
        else one that does (tts.VoiceChooser); spoken at the soul's speed. The soul is the
        speaker's own when the profile names one, else the active soul."""
        soul: Soul = self._s.souls.for_speaker(turn.soul_id)
        preferred = soul.voice or str(self._s.settings.get("tts_voice")) or None
        choice = await self._voices.choose(preferred, turn.language or self._language())
        voice = choice.name
        speech = SpeechOutput(
            turn_id=turn.turn_id,
            sink=turn.sink,
            tts=self._s.tts,
            voice=voice,
            language=choice.language,
            length_scale=1.0 / soul.speed if soul.speed else None,
            on_first_audio=lambda sentence: self._audio_started(turn, sentence, voice),
            stream_sentences=self._s.stream_sentences,
        )
        turn.speech = speech
        return speech

    def _audio_started(self, turn: Turn, sentence: str, voice: str | None) -> None:
        turn.timer.mark_first_audio()
        turn.speaking = True
        self._enter(AssistantState.SPEAKING)
        provider = str(self._s.settings.get("tts_provider"))
        self._s.bus.publish(EventType.TTS_STARTED, tts_started(sentence, provider, voice), SOURCE)
        if turn.first_audio is not None and not turn.first_audio.done():
            turn.first_audio.set_result(None)

    async def _speak_reply(self, turn: Turn, reply: Reply) -> None:
        speech = await self._speech(turn)
        from_claude = reply.route is Route.CLAUDE
        # The reply is read in its own task so that kiwi-tts failing ends the turn at once,
        # not only when the model sends its next piece of text.
        reading = asyncio.create_task(self._read_reply(turn, reply, speech, from_claude))
        try:
            await asyncio.wait({reading, speech.worker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not reading.done():
                await cancel_for_sure(reading)
        speech.raise_if_failed()
        reading.result()
        turn.timer.mark_first_sentence()
        if from_claude:
            self._s.bus.publish(
                EventType.LLM_COMPLETE, llm_complete(reply.text, reply.model), SOURCE
            )
        turn.spoken_text = reply.text
        progress = await speech.finish()
        turn.timer.tts_first_audio_seconds = progress.tts_first_audio_seconds
        self._tts_finished(turn, interrupted=False)

    async def _read_reply(
        self, turn: Turn, reply: Reply, speech: SpeechOutput, from_claude: bool
    ) -> None:
        async for delta in reply.stream():
            if from_claude:
                turn.timer.mark_first_token()
                self._s.bus.publish(EventType.LLM_TOKEN, llm_token(delta), SOURCE)
            await turn.sink.send_frame(frames.bot_delta(turn.turn_id, delta))
            if speech.add(delta):
                turn.timer.mark_first_sentence()

    async def _say(self, turn: Turn, text: str, route: frames.TurnRoute) -> None:
        """Kiwi's own words: an announcement, an apology, a refusal."""
        turn.route = route
        speech = await self._speech(turn)
        await turn.sink.send_frame(frames.bot_delta(turn.turn_id, text))
        speech.add(text)
        turn.spoken_text = (turn.spoken_text + " " + text).strip()
        progress = await speech.finish()
        if turn.timer.tts_first_audio_seconds is None:
            turn.timer.tts_first_audio_seconds = progress.tts_first_audio_seconds
        self._tts_finished(turn, interrupted=False)

    def _tts_finished(self, turn: Turn, *, interrupted: bool) -> None:
        if turn.speaking:
            turn.speaking = False
            seconds = turn.speech.progress.audio_seconds if turn.speech else 0.0
            payload = tts_finished(interrupted, seconds, turn.spoken_text)
            self._s.bus.publish(EventType.TTS_FINISHED, payload, SOURCE)

    async def _stop_speaking(self, turn: Turn) -> None:
        if turn.speech is not None:
            await turn.speech.cancel()
        await turn.sink.stop_playback(turn.turn_id)
        self._tts_finished(turn, interrupted=True)
        self._keep_what_was_heard(turn)

    @staticmethod
    def _keep_what_was_heard(turn: Turn) -> None:
        """A reply cut short: the end frame says what the user got to hear of it."""
        if turn.reply is not None and turn.speech is not None and not turn.apologizing:
            turn.spoken_text = " ".join(turn.speech.progress.heard)

    # ---- failures and the end --------------------------------------------------------------

    def _report(self, turn: Turn, err: ServiceError) -> None:
        _LOGGER.warning(
            "Turn %s: %s failed: %s (%s)", turn.turn_id, err.service, err.message, err.code
        )
        payload = error(err.message, err.service, err.code, turn.turn_id, err.setting)
        self._s.bus.publish(EventType.ERROR, payload, err.service)

    async def _failed(self, turn: Turn, err: ServiceError) -> None:
        turn.error_code = err.code
        self._report(turn, err)
        await turn.sink.send_frame(frames.turn_error(err.code, err.message, turn.turn_id))
        if turn.speech is not None:
            await turn.speech.cancel()
        self._keep_what_was_heard(turn)
        self._tts_finished(turn, interrupted=True)
        if turn.first_audio is not None and not turn.first_audio.done():
            turn.first_audio.set_exception(err)
        if err.service == "tts" or turn.apologizing:
            return  # Kiwi cannot speak: the error frame is the apology
        turn.apologizing = True
        if isinstance(err, NoRouteError):  # it says what to set up
            apology = err.spoken
        else:
            apology = _APOLOGIES.get(err.service, _APOLOGIES["hub"])
        try:
            await self._say(turn, apology, "apology")
        except ServiceError as second:
            self._report(turn, second)
            await turn.sink.send_frame(frames.turn_error(second.code, second.message, turn.turn_id))

    async def _finish(self, turn: Turn) -> None:
        if turn.first_audio is not None and not turn.first_audio.done():
            turn.first_audio.set_result(None)  # nothing to wait for: it ended before any audio
        if turn.reply and turn.context_key and turn.user_text and turn.error_code is None:
            self._s.router.remember(turn.context_key, turn.user_text, turn.reply)
        if not turn.superseded:
            self._s.state.reset(SOURCE)
        await turn.sink.send_frame(
            frames.turn_end(
                turn.turn_id, turn.route, turn.spoken_text, turn.interrupted, turn.model
            )
        )
        if turn.request.trigger != "announcement":
            metrics = turn.timer.payload(turn.interrupted)
            self._s.bus.publish(EventType.TURN_METRICS, metrics, SOURCE)
            await turn.sink.send_frame(frames.turn_metrics(turn.turn_id, metrics))

    def _enter(self, new: AssistantState) -> None:
        state = self._s.state
        if not state.can_enter(new):
            state.reset(SOURCE)
        state.transition(new, SOURCE)


def speaker_from(result: dict[str, object], links: SpeakerLinks | None) -> Speaker:
    """The turn's speaker from kiwi-speaker's answer and the profile's links (HA person, soul)."""
    speaker_id = result.get("id")
    link = links.get(speaker_id if isinstance(speaker_id, str) else None) if links else None
    return Speaker(
        id=speaker_id,  # type: ignore[arg-type]
        name=str(result.get("name") or "Unknown"),
        priority=result.get("priority"),  # type: ignore[arg-type]
        confidence=float(result.get("confidence") or 0.0),  # type: ignore[arg-type]
        is_blocked=bool(result.get("is_blocked")),
        is_self=bool(result.get("is_self")),
        person=link.person if link else None,
        ha_user_id=link.ha_user_id if link else None,
        soul=link.soul if link else None,
    )
