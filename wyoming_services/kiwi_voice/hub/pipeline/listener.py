"""One audio source's ears: wake word → capture until end of speech → a turn for the pipeline.

Every source (a browser session, the host microphone, a WAV file) gets a `Listener` and feeds
it 16 kHz mono s16 audio in pieces of any size, in real time or faster. Audio is kept in a
ring buffer indexed by sample position, so the capture starts exactly where the wake word
ended even when kiwi-wake reports it after more audio arrived.

Sources do not build listeners themselves: they are handed a `ListenerFactory`
(hub/voice/runtime.py's `PipelineRuntime.listener`), so audio/ needs nothing above the pipeline.

Modes: `continuous` listens for the wake word with the engine `WakeEngineSelector` chose
(openwakeword: all audio streams to kiwi-wake; text: each stretch of speech is transcribed
and matched against the wake word), `push_to_talk` captures between start and end only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.event_payloads import EventType, error, speech_recognized
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.settings import SettingsStore
from kiwi_voice.hub.speakers import PcmAudio

from . import frames
from .engine import Pipeline
from .policy import WAKE_GATE_SECONDS, wake_gate_passes
from .ring import AudioRing
from .sink import TurnSink
from .stt import SttClient, Transcript
from .turn import Turn, TurnRequest
from .vad import Endpointer, EndpointSettings, Utterance
from .wake import EngineChoice, WakeWordStream, text_matches_wake_word
from .wake_select import WakeEngineSelector

_LOGGER = logging.getLogger(__name__)
RATE = 16_000
# A restarted kiwi-wake must hear the next wake word within seconds; a refused connect is cheap.
_WAKE_RETRY_SECONDS = 1.0


# Silence after which the utterance so far goes to kiwi-stt while the endpointer waits out the
# rest of vad_silence_seconds (0.8 s by default).
EARLY_STT_SILENCE_SECONDS = 0.25
# With vad_end_on_sentence, a pause this long ends the utterance when its transcript is a whole
# sentence. Shorter pauses are hesitations: Whisper writes a sentence of most half-said ones
# ("How long does it take?" of "How long does it take to", bench/RESULTS.md `endpoint`).
EARLY_END_SILENCE_SECONDS = 0.5
# Less speech than this never ends an utterance early: Whisper makes sentences out of a click
# or a breath ("Thank you." from 90 ms of room noise before a real command, in the benchmark's
# human clips), and a real command ("Stop.") is longer.
EARLY_END_MIN_VOICED_SECONDS = 0.5
# How Whisper ends a sentence it believes complete; "..." is its mark of a voice trailing off.
_SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")
_TRAILING_OFF = ("...", "…")
# Whisper punctuates fragments too ("How long does it take to?"); an English sentence does not
# end in an article, a conjunction, a possessive or these prepositions, whatever its punctuation.
# fmt: off
_NEVER_LAST_EN = frozenset({
    "a", "an", "the", "and", "or", "but", "nor", "if", "than", "because", "whether",
    "to", "of", "with", "into", "onto", "my", "your", "our", "their", "its", "every",
})
# fmt: on


def ends_a_sentence(text: str, language: str = "en") -> bool:
    """Whether a transcript reads as a finished sentence (not cut off mid-way)."""
    text = text.rstrip()
    if not text.endswith(_SENTENCE_ENDS) or text.endswith(_TRAILING_OFF):
        return False
    words = text.rstrip("".join(_SENTENCE_ENDS)).split()
    if not words:
        return False
    return not (language.startswith("en") and words[-1].lower() in _NEVER_LAST_EN)


def ends_at_pause(transcript: Transcript, cut: Utterance) -> bool:
    """The rule of vad_end_on_sentence: the pause's transcript is a whole sentence and enough
    was said for it to be one (a pause of EARLY_END_SILENCE_SECONDS then ends the utterance)."""
    return (
        ends_a_sentence(transcript.text, transcript.language or "en")
        and cut.voiced_seconds >= EARLY_END_MIN_VOICED_SECONDS
    )


def _consume_result(task: asyncio.Task[Transcript]) -> None:
    if not task.cancelled():
        task.exception()


class ListenMode(StrEnum):
    CONTINUOUS = "continuous"
    PUSH_TO_TALK = "push_to_talk"


@dataclass(frozen=True)
class Heard:
    """What a capture Home Assistant asked for (`Listener.listen_now`) came to."""

    turn_id: str
    speech: bool  # False: nobody spoke before the listen timeout
    text: str | None = None  # the transcript, for an answer (answer_only); None for a turn
    language: str | None = None


@dataclass
class _Capture:
    turn_id: str
    trigger: Literal["wake_word", "push_to_talk", "conversation"]
    endpointer: Endpointer
    start: int  # sample position in the ring
    heard: asyncio.Future[Heard] | None = None  # a capture someone waits on (listen_now)
    answer_only: bool = False  # transcribe and hand back; no turn (ask_question's answer)
    # The utterance as it stood at the current pause and its transcription, started while the
    # endpointer waits to be sure the speaker stopped (see EndpointSettings.speculate_seconds).
    early: tuple[Utterance, asyncio.Task[Transcript]] | None = None
    # The early transcript is a whole sentence: a long enough pause ends the utterance.
    ends_at_pause: bool = False

    def drop_early(self) -> None:
        self.ends_at_pause = False
        if self.early is not None:
            self.early[1].cancel()
            self.early = None


@dataclass
class _Segment:
    """A stretch of audio the text wake engine is cutting at the next pause."""

    endpointer: Endpointer
    start: int


class Listener:
    def __init__(
        self,
        *,
        sink: TurnSink,
        pipeline: Pipeline,
        selector: WakeEngineSelector,
        stt: SttClient,
        settings: SettingsStore,
        bus: EventBus,
        wake_uri: str,
        mode: ListenMode = ListenMode.CONTINUOUS,
    ) -> None:
        self._sink = sink
        self._pipeline = pipeline
        self._selector = selector
        self._stt = stt
        self._settings = settings
        self._bus = bus
        self._wake_uri = wake_uri
        self.mode = mode
        self._ring = AudioRing(RATE)
        self._capture: _Capture | None = None
        self._used_until = 0  # audio before this position belonged to a finished capture
        self._wake: WakeWordStream | None = None
        self._wake_retry_at = 0.0
        self._reported: str | None = None  # the last wake failure told to the user
        self._detections: asyncio.Queue[int] = asyncio.Queue()
        self._segment: _Segment | None = None
        # Speech segments waiting for the text engine: (audio, start, end) sample positions.
        self._segments: asyncio.Queue[tuple[bytes, int, int]] = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._handle_detections(), name=f"wake-{sink.label}"),
            asyncio.create_task(self._handle_segments(), name=f"text-wake-{sink.label}"),
        ]
        self._unlisten = selector.on_change(self._on_engine_changed)
        self.turns: list[asyncio.Task[Turn]] = []
        self._answers: set[asyncio.Task[None]] = set()  # answers being transcribed
        self._early_ends: set[asyncio.Task[None]] = set()  # captures ending at a pause

    # ---- input ------------------------------------------------------------------------------

    async def feed(self, pcm: bytes) -> None:
        """Add audio (16 kHz mono s16, whole samples)."""
        if not pcm:
            return
        self._ring.append(pcm)
        # The capture first: a capture that starts while we wait below reads this audio from
        # the ring, so it must not get it twice.
        if self._capture is not None:
            capture = self._capture
            result = capture.endpointer.add(pcm)
            if result is not None:
                await self._complete(result)
            else:
                self._speculate(capture)
                await self._end_if_sentence_over(capture)
        if self.mode is ListenMode.CONTINUOUS:
            choice = self._selector.current
            if choice.engine == "openwakeword":
                await self._send_to_wake(pcm, choice)
            elif self._capture is None:
                self._scan_for_text_wake(pcm)

    async def start_speaking(self) -> None:
        """Push-to-talk pressed: barge in and capture until `end_speaking`."""
        await self.cancel_capture()
        turn_id = await self._pipeline.wake(self._sink, "push_to_talk")
        await self._start_capture(turn_id, "push_to_talk", self._ring.end, push_to_talk=True)

    async def listen_now(self, *, answer_only: bool = False) -> asyncio.Future[Heard]:
        """Capture the next utterance without a wake word, ended by the pause after it
        (Home Assistant's start_conversation and ask_question on this satellite).

        The utterance becomes a turn like any other; with `answer_only` it is only
        transcribed (SPEECH_RECOGNIZED) and handed back, because it answers a question Home
        Assistant asked rather than asking Kiwi something. The future resolves once the capture
        ended (and, for an answer, was transcribed)."""
        await self.cancel_capture()
        turn_id = await self._pipeline.listen(self._sink)
        heard: asyncio.Future[Heard] = asyncio.get_running_loop().create_future()
        await self._start_capture(
            turn_id, "conversation", self._ring.end, heard=heard, answer_only=answer_only
        )
        return heard

    async def end_speaking(self) -> None:
        capture = self._capture
        if capture is not None and capture.trigger == "push_to_talk":
            await self._complete(capture.endpointer.finish())

    async def cancel_capture(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.drop_early()
            self._used_until = self._ring.end
            await self._pipeline.heard_nothing(capture.turn_id)
            _settle(capture, Heard(capture.turn_id, speech=False))

    async def finish(self) -> list[asyncio.Task[Turn]]:
        """The input ended (a file): settle wake detection and capture; returns the turns."""
        if self._wake is not None:
            await self._wake.end()
        await self._detections.join()
        if self._segment is not None:
            segment, self._segment = self._segment, None
            self._queue_segment(segment, segment.endpointer.finish())
        await self._segments.join()
        if self._capture is not None:
            await self._complete(self._capture.endpointer.finish())
        return list(self.turns)

    async def close(self) -> None:
        self._unlisten()
        for worker in [*self._workers, *self._answers, *self._early_ends]:
            worker.cancel()
        for worker in [*self._workers, *self._answers, *self._early_ends]:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await self._close_wake()
        await self.cancel_capture()

    # ---- capture ----------------------------------------------------------------------------

    def _endpoint_settings(self, push_to_talk: bool) -> EndpointSettings:
        max_seconds = float(self._settings.get("max_utterance_seconds"))
        if push_to_talk:  # the user decides when it ends
            return EndpointSettings(
                silence_seconds=max_seconds + 1, max_seconds=max_seconds, start_timeout_seconds=None
            )
        return EndpointSettings(
            silence_seconds=float(self._settings.get("vad_silence_seconds")),
            max_seconds=max_seconds,
            start_timeout_seconds=float(self._settings.get("listen_timeout_seconds")),
            speculate_seconds=EARLY_STT_SILENCE_SECONDS,
        )

    def _speculate(self, capture: _Capture) -> None:
        """At a pause, start transcribing what was said so far: when the pause turns out to be
        the end, the transcript is (nearly) ready; when the speaker goes on, it is dropped."""
        tentative, capture.endpointer.tentative = capture.endpointer.tentative, None
        if tentative is None:
            return
        capture.drop_early()
        audio = PcmAudio(RATE, 2, 1, tentative.pcm)
        language = str(self._settings.get("language"))
        task = asyncio.create_task(self._stt.transcribe(audio, language))
        task.add_done_callback(_consume_result)  # a dropped one's failure is nobody's concern
        capture.early = (tentative, task)
        if self._settings.get("vad_end_on_sentence"):
            task.add_done_callback(lambda done: self._on_early_transcript(capture, done))

    def _on_early_transcript(self, capture: _Capture, done: asyncio.Task[Transcript]) -> None:
        """A pause's transcript is in: a whole sentence, with the speaker still silent, lets
        the pause end the utterance at EARLY_END_SILENCE_SECONDS rather than at
        vad_silence_seconds."""
        if done.cancelled() or done.exception() is not None:
            return
        if self._capture is not capture or capture.early is None or capture.early[1] is not done:
            return
        capture.ends_at_pause = ends_at_pause(done.result(), capture.early[0])
        if capture.ends_at_pause:  # the pause may be long enough already
            task = asyncio.create_task(self._end_if_sentence_over(capture))
            self._early_ends.add(task)
            task.add_done_callback(self._early_ends.discard)

    async def _end_if_sentence_over(self, capture: _Capture) -> None:
        endpointer = capture.endpointer
        if (
            capture.ends_at_pause
            and self._capture is capture
            and capture.early is not None
            and endpointer.paused_since_tentative  # nothing said since the transcribed cut
            and endpointer.silence_seconds >= EARLY_END_SILENCE_SECONDS
        ):
            await self._complete(endpointer.end_at(capture.early[0]))

    async def _start_capture(
        self,
        turn_id: str,
        trigger: Literal["wake_word", "push_to_talk", "conversation"],
        position: int,
        *,
        push_to_talk: bool = False,
        heard: asyncio.Future[Heard] | None = None,
        answer_only: bool = False,
    ) -> None:
        capture = _Capture(
            turn_id,
            trigger,
            Endpointer(self._endpoint_settings(push_to_talk)),
            position,
            heard,
            answer_only,
        )
        self._capture = capture
        self._segment = None  # the text engine starts afresh after this utterance
        # Audio that arrived since the wake word ended is already here: listen to it first.
        result = capture.endpointer.add(self._ring.since(position))
        if result is not None:
            await self._complete(result)

    async def _complete(self, utterance: Utterance) -> None:
        capture, self._capture = self._capture, None
        if capture is None:
            return
        self._used_until = capture.start + utterance.end_offset // 2
        if not utterance.had_speech:
            capture.drop_early()
            await self._pipeline.heard_nothing(capture.turn_id)
            _settle(capture, Heard(capture.turn_id, speech=False))
            return
        _LOGGER.debug(
            "%s: utterance of %.2f s (%s)", self._sink.label, utterance.seconds, utterance.reason
        )
        # The transcript made during the pause is this utterance's when the cut is the same.
        early = None
        if capture.early is not None and capture.early[0].pcm == utterance.pcm:
            early, capture.early = capture.early[1], None
        capture.drop_early()
        if capture.answer_only:
            # Transcribing takes a while: not on the path that feeds audio in.
            task = asyncio.create_task(self._answer(capture, utterance.pcm, early))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)
            return
        _settle(capture, Heard(capture.turn_id, speech=True))
        request = TurnRequest(
            turn_id=capture.turn_id,
            sink=self._sink,
            trigger=capture.trigger,
            audio=utterance.pcm,
            speech_ended=time.perf_counter(),
            early_transcript=early,
        )
        self.turns.append(self._pipeline.submit(request))

    async def _answer(
        self, capture: _Capture, pcm: bytes, early: asyncio.Task[Transcript] | None
    ) -> None:
        """Transcribe an answer (SPEECH_RECOGNIZED) and hand it to whoever asked; no turn.
        `early`: its transcript, already made during the pause that ended it."""
        language = str(self._settings.get("language"))
        try:
            transcript = await (early or self._stt.transcribe(PcmAudio(RATE, 2, 1, pcm), language))
        except ServiceError as err:
            await self._report(err)
            await self._pipeline.heard_nothing(capture.turn_id)
            if capture.heard is not None and not capture.heard.done():
                capture.heard.set_exception(err)
            return
        text, language = transcript.text.strip(), transcript.language or language
        self._bus.publish(
            EventType.SPEECH_RECOGNIZED, speech_recognized(text, language), "listener"
        )
        await self._sink.send_frame(frames.user_text(capture.turn_id, text, language))
        # The answer went to whoever asked: this capture ends here, with no reply of Kiwi's.
        await self._pipeline.heard_nothing(capture.turn_id)
        _settle(capture, Heard(capture.turn_id, speech=True, text=text, language=language))

    # ---- openwakeword through kiwi-wake ------------------------------------------------------

    async def _send_to_wake(self, pcm: bytes, choice: EngineChoice) -> None:
        stream = self._wake
        if stream is not None and stream.failure is not None:
            await self._report(stream.failure)
            await self._close_wake()
            stream = None
        if stream is None:
            if time.monotonic() < self._wake_retry_at:
                return
            base = self._ring.end - len(pcm) // 2
            stream = WakeWordStream(
                self._wake_uri,
                [choice.model or choice.wake_word],
                lambda detection: self._detections.put_nowait(base + detection.stream_ms * 16),
            )
            try:
                await stream.open()
            except ServiceError as err:
                await self._report(err)
                self._wake_retry_at = time.monotonic() + _WAKE_RETRY_SECONDS
                return
            self._wake = stream
        await stream.send(pcm)

    async def _close_wake(self) -> None:
        stream, self._wake = self._wake, None
        if stream is not None:
            self._wake_retry_at = time.monotonic() + _WAKE_RETRY_SECONDS
            await stream.close()

    def _on_engine_changed(self, choice: EngineChoice) -> None:
        stream, self._wake = self._wake, None
        self._wake_retry_at = 0.0
        self._segment = None
        if stream is not None:
            asyncio.create_task(stream.close())  # noqa: RUF006 - closing needs no result

    async def _handle_detections(self) -> None:
        while True:
            position = await self._detections.get()
            try:
                await self._wake_at(position)
            except Exception:
                _LOGGER.exception("%s: handling a wake word failed", self._sink.label)
            finally:
                self._detections.task_done()

    async def _wake_at(self, position: int) -> None:
        if self._capture is not None or position < self._used_until:
            return  # inside an utterance being captured, or audio already used
        if self._settings.get("wake_speaker_gate") and not await self._gate_passes(position):
            return
        self._reported = None
        turn_id = await self._pipeline.wake(self._sink, "wake_word")
        await self._start_capture(turn_id, "wake_word", position)

    async def _gate_passes(self, position: int) -> bool:
        """Whether the wake word ending at `position` is an enrolled, unblocked voice."""
        start = max(self._ring.start, position - int(WAKE_GATE_SECONDS * RATE))
        pcm = self._ring.since(start)[: (position - start) * 2]
        audio = PcmAudio(rate=RATE, width=2, channels=1, data=pcm)
        try:
            identified = dict(await self._pipeline.services.speakers.identify(audio))
        except ServiceError as err:  # the gate cannot tell: it stays shut (it is a safeguard)
            _LOGGER.info("%s: wake word not counted: %s", self._sink.label, err.message)
            return False
        if wake_gate_passes(identified):
            return True
        _LOGGER.info(
            "%s: wake word not counted: not an enrolled voice (%s)",
            self._sink.label,
            identified.get("reason") or identified.get("decision"),
        )
        return False

    # ---- the text engine: transcribe speech, look for the wake word -------------------------

    def _scan_for_text_wake(self, pcm: bytes) -> None:
        if self._segment is None:
            start = max(self._used_until, self._ring.end - len(pcm) // 2)
            settings = EndpointSettings(
                silence_seconds=float(self._settings.get("vad_silence_seconds")),
                max_seconds=float(self._settings.get("max_utterance_seconds")),
                start_timeout_seconds=None,
            )
            self._segment = _Segment(Endpointer(settings), start)
            pcm = self._ring.since(start)
        segment = self._segment
        result = segment.endpointer.add(pcm)
        if result is not None:
            self._segment = None
            self._queue_segment(segment, result)

    def _queue_segment(self, segment: _Segment, result: Utterance) -> None:
        if result.had_speech:
            end = segment.start + result.end_offset // 2
            self._segments.put_nowait((result.pcm, segment.start, end))

    async def _handle_segments(self) -> None:
        while True:
            pcm, start, end = await self._segments.get()
            try:
                if self._capture is None and start >= self._used_until:
                    await self._match_text_wake(pcm, end)
            except Exception:
                _LOGGER.exception("%s: text wake word matching failed", self._sink.label)
            finally:
                self._segments.task_done()

    async def _match_text_wake(self, pcm: bytes, end: int) -> None:
        language = str(self._settings.get("language"))
        try:
            transcript = await self._stt.transcribe(PcmAudio(RATE, 2, 1, pcm), language)
        except ServiceError as err:
            await self._report(err)
            return
        rest = text_matches_wake_word(transcript.text, self._selector.current.wake_word)
        # Checked again: a capture may have started while the transcript was being made.
        if rest is None or self._capture is not None or end < self._used_until:
            return
        self._reported = None
        turn_id = await self._pipeline.wake(self._sink, "wake_word")
        if rest:  # "kiwi, turn on the light": the command came with the wake word
            self._used_until = end
            request = TurnRequest(
                turn_id=turn_id,
                sink=self._sink,
                trigger="wake_word",
                audio=pcm,
                text=rest,
                language=transcript.language or language,
            )
            self.turns.append(self._pipeline.submit(request))
        else:
            await self._start_capture(turn_id, "wake_word", end)

    # ---- failures ---------------------------------------------------------------------------

    async def _report(self, err: ServiceError) -> None:
        """Tell the user once per outage, not for every chunk of audio."""
        if self._reported == err.message:
            return
        self._reported = err.message
        _LOGGER.warning("%s: %s failed: %s", self._sink.label, err.service, err.message)
        self._bus.publish(
            EventType.ERROR,
            error(err.message, err.service, err.code, setting=err.setting),
            "listener",
        )
        await self._sink.send_frame(frames.turn_error(err.code, err.message))


def _settle(capture: _Capture, heard: Heard) -> None:
    if capture.heard is not None and not capture.heard.done():
        capture.heard.set_result(heard)


class ListenerFactory(Protocol):
    """Makes the listener of one audio source, sending its turns to `sink`."""

    def __call__(self, sink: TurnSink, mode: ListenMode = ListenMode.CONTINUOUS) -> Listener: ...
