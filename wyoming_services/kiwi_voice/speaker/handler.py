"""One connection to the speaker service (protocol in `protocol.py`).

Audio requests (`speaker-enroll`, `speaker-identify`) are the request event, then one
utterance (audio-start, audio-chunk*, audio-stop) in any supported PCM format, converted to
16 kHz mono float by the common converter. Embeddings run in the shared engine executor,
profile reads and writes in the single database thread, so the event loop never blocks.

Audio is judged before it is used (`quality.py`): empty or silent audio is `no_audio`; too
little speech `audio_too_short`; for a voice sample also too quiet or clipped. Identification
is the open-set decision of `matching.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe

from kiwi_voice.common.audio import ENGINE_RATE, PcmFormat, Utterance
from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.framing import FrameLimits
from kiwi_voice.common.handler import ServiceEventHandler, parse_event

from . import frontend, quality
from .context import SpeakerContext
from .encoder import NoSpeech, VoiceEncoder
from .info import build_info_event
from .matching import Decision, adaptation_problem, decide, enrolment_samples
from .protocol import (
    PRIORITIES,
    SELF_PROFILE_ID,
    CandidateData,
    SpeakerDelete,
    SpeakerDeleted,
    SpeakerEnroll,
    SpeakerEnrolled,
    SpeakerIdentified,
    SpeakerIdentify,
    SpeakerList,
    SpeakerProfile,
    SpeakerProfiles,
    SpeakerUpdate,
)
from .settings import READY_SAMPLES, SEGMENT_SECONDS
from .store import Embedding, StoredVoice, UnknownProfile

_LOGGER = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100
T = TypeVar("T")

__all__ = ["SpeakerContext", "SpeakerEventHandler"]


class SpeakerEventHandler(ServiceEventHandler):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        context: SpeakerContext,
        frame_limits: FrameLimits | None = None,
    ) -> None:
        super().__init__(reader, writer, frame_limits)
        self._context = context
        self._request: SpeakerEnroll | SpeakerIdentify | None = None
        self._utterance: Utterance | None = None
        self._discarding = False  # an utterance failed: drop its audio quietly until audio-stop
        self._claimed_name: str | None = None  # a new profile this connection is enrolling

    def reset_request(self) -> None:
        if self._utterance is not None:
            self._discarding = True
        self._request = None
        self._utterance = None
        self._release_name()

    async def handle_event(self, event: Event) -> bool:
        context = self._context
        if Describe.is_type(event.type):
            await self._describe()
        elif SpeakerEnroll.is_type(event.type):
            self._start_request(None)  # a new request replaces a half-sent one
            self._request = await self._checked_enroll(parse_event(SpeakerEnroll, event))
        elif SpeakerIdentify.is_type(event.type):
            self._start_request(SpeakerIdentify())
        elif AudioStart.is_type(event.type):
            self._utterance, self._discarding = None, True  # until this utterance is accepted
            if self._request is None:
                raise ServiceError(
                    ErrorCode.UNEXPECTED_EVENT,
                    "audio-start without a speaker-enroll or speaker-identify request",
                )
            fmt = PcmFormat.from_event_data(event.data)
            self._utterance, self._discarding = Utterance(fmt, context.max_seconds), False
        elif AudioChunk.is_type(event.type):
            if self._utterance is None:
                if self._discarding:
                    return True
                raise ServiceError(ErrorCode.UNEXPECTED_EVENT, "audio-chunk before audio-start")
            fmt = PcmFormat.from_event_data(event.data)
            chunk = AudioChunk(fmt.rate, fmt.width, fmt.channels, event.payload or b"")
            self._utterance.add(chunk)
        elif AudioStop.is_type(event.type):
            await self._finish_utterance()
        elif SpeakerList.is_type(event.type):
            profiles = await context.database.run(context.store.list_profiles)
            await self.write_event(SpeakerProfiles(profiles).event())
        elif SpeakerUpdate.is_type(event.type):
            await self._update(parse_event(SpeakerUpdate, event))
        elif SpeakerDelete.is_type(event.type):
            request = parse_event(SpeakerDelete, event)
            await self._with_profile(context.store.delete, request.id)
            await self.write_event(SpeakerDeleted(request.id).event())
        else:
            _LOGGER.debug("%s: ignoring %s", self.client_id, event.type)
        return True

    async def _describe(self) -> None:
        context = self._context
        snapshot = await context.database.run(context.store.snapshot)
        profile_count = len(await context.database.run(context.store.list_profiles))
        await self.write_event(
            build_info_event(
                context.encoder.state,
                context.thresholds,
                context.engine.workers,
                profile_count,
                store_path=str(context.store.path),
                set_aside=context.store_set_aside,
                background=context.encoder.background,
                ready_profiles=sum(
                    1 for v in snapshot.voices if _enrolment_count(v) >= READY_SAMPLES
                ),
            )
        )

    # -- audio requests -------------------------------------------------------------------

    def _start_request(self, request: SpeakerEnroll | SpeakerIdentify | None) -> None:
        self._release_name()
        self._request, self._utterance, self._discarding = request, None, False

    def _release_name(self) -> None:
        if self._claimed_name is not None:
            self._context.release_name(self._claimed_name)
            self._claimed_name = None

    async def _checked_enroll(self, request: SpeakerEnroll) -> SpeakerEnroll:
        if request.id is None and not request.name:
            raise ServiceError(ErrorCode.BAD_REQUEST, "speaker-enroll needs a name (or an id)")
        _check_fields(request.name, request.priority)
        if request.id is not None and request.id != SELF_PROFILE_ID:
            # Said now, before the client streams audio in vain.
            await self._with_profile(self._context.store.get, request.id)
        if request.id is None and request.name:
            self._claimed_name = self._context.claim_name(request.name)
        return request

    async def _finish_utterance(self) -> None:
        request, utterance, discarding = self._request, self._utterance, self._discarding
        self._request, self._utterance, self._discarding = None, None, False
        try:
            if request is None or utterance is None:
                if discarding:
                    return
                raise ServiceError(ErrorCode.UNEXPECTED_EVENT, "audio-stop before audio-start")
            if utterance.is_empty:
                raise ServiceError(
                    ErrorCode.NO_AUDIO, "no audio between audio-start and audio-stop"
                )
            if self.client_gone():
                return  # nobody is waiting for the answer: skip the embedding
            encoder = await self._context.encoder.get()
            if isinstance(request, SpeakerEnroll):
                await self._enroll(request, encoder, utterance)
            else:
                await self._identify(encoder, utterance)
        finally:
            self._release_name()

    async def _embed(
        self, encoder: VoiceEncoder, utterance: Utterance, *, enrolment: bool
    ) -> tuple[list[Embedding], list[float]]:
        """Judge the utterance's speech, then embed it (in pieces when a long voice sample)."""

        def work() -> tuple[list[Embedding], list[float]]:
            prepared = encoder.prepare(utterance.to_float_mono(ENGINE_RATE))
            if not enrolment:
                quality.check_identify(prepared.quality)
                return [encoder.embed_speech(prepared.speech)], [prepared.quality.seconds]
            quality.check_enrol(prepared.quality)
            pieces = frontend.split_speech(prepared.speech, SEGMENT_SECONDS)
            embeddings = [encoder.embed_speech(piece) for piece in pieces]
            return embeddings, [len(piece) / ENGINE_RATE for piece in pieces]

        try:
            return await self._context.engine.run(work)
        except NoSpeech as err:
            raise ServiceError(ErrorCode.NO_AUDIO, f"no usable speech: {err}") from err

    async def _enroll(
        self, request: SpeakerEnroll, encoder: VoiceEncoder, utterance: Utterance
    ) -> None:
        context = self._context
        embeddings, seconds = await self._embed(encoder, utterance, enrolment=True)
        if request.auto_learned and request.id is not None:
            index = await context.index()
            whole = _normalised(np.mean(embeddings, axis=0))
            problem = adaptation_problem(index, whole, request.id, context.thresholds, sum(seconds))
            if problem:
                raise ServiceError(
                    ErrorCode.SAMPLE_REJECTED,
                    f"not learning this sample for {request.id}: {problem}",
                )
        store = context.store
        try:
            profile = await context.database.run(
                lambda: store.add_samples(
                    embeddings,
                    seconds,
                    profile_id=request.id,
                    name=request.name,
                    priority=request.priority,
                    auto_learned=request.auto_learned,
                )
            )
        except UnknownProfile as err:
            raise _unknown(request.id) from err
        index = await context.index()
        position = index.position(profile["id"])
        assert position is not None
        enrolled = _enrolment_count(index.voices[position])
        ready = bool(index.ready[position])
        _LOGGER.info(
            "Enrolled %s: %d sample(s), %s",
            profile["id"],
            profile["sample_count"],
            "ready" if ready else f"{READY_SAMPLES - enrolled} more needed",
        )
        await self.write_event(
            SpeakerEnrolled(
                profile["id"],
                profile["name"],
                profile["priority"],
                profile["sample_count"],
                samples_added=len(embeddings),
                ready=ready,
                samples_needed=0 if ready else max(0, READY_SAMPLES - enrolled),
                threshold=(
                    round(float(index.thresholds[position]), 4)
                    if enrolled >= 2 and profile["id"] != SELF_PROFILE_ID
                    else None
                ),
            ).event()
        )

    async def _identify(self, encoder: VoiceEncoder, utterance: Utterance) -> None:
        context = self._context
        embeddings, seconds = await self._embed(encoder, utterance, enrolment=False)
        index = await context.index()
        decision = decide(index, embeddings[0], context.thresholds, seconds[0])
        profile = decision.profile
        if profile is not None:
            await context.database.run(context.store.mark_seen, profile["id"])
        best = decision.best
        _LOGGER.info(
            "Identified %s (%s; closest %s, cosine %.3f, score %.3f)",
            profile["id"] if profile else "unknown",
            decision.reason,
            best.profile["id"] if best else "-",
            decision.confidence,
            best.score if best else 0.0,
        )
        await self.write_event(_identified(decision, seconds[0]).event())

    # -- profile requests -----------------------------------------------------------------

    async def _update(self, request: SpeakerUpdate) -> None:
        _check_fields(request.name, request.priority)
        store = self._context.store
        profile = await self._with_profile(
            lambda profile_id: store.update(
                profile_id,
                name=request.name,
                priority=request.priority,
                is_blocked=request.is_blocked,
            ),
            request.id,
        )
        await self.write_event(SpeakerProfile(profile).event())

    async def _with_profile(self, operation: Callable[[str], T], profile_id: str) -> T:
        """Run a store operation on one profile in the database thread; unknown ids -> error."""
        try:
            return await self._context.database.run(operation, profile_id)
        except UnknownProfile as err:
            raise _unknown(profile_id) from err


def _identified(decision: Decision, speech_seconds: float) -> SpeakerIdentified:
    profile, best = decision.profile, decision.best
    candidate: CandidateData | None = None
    if best is not None:
        candidate = CandidateData(
            id=best.profile["id"],
            name=best.profile["name"],
            priority=best.profile["priority"],
            is_blocked=best.profile["is_blocked"],
            auto_learned=best.profile["auto_learned"],
            ready=best.ready,
            confidence=round(best.cosine, 4),
            score=round(best.score, 4),
            threshold=round(best.threshold, 4),
        )
    return SpeakerIdentified(
        id=profile["id"] if profile else None,
        name=profile["name"] if profile else None,
        priority=profile["priority"] if profile else None,
        confidence=round(decision.confidence, 4),
        is_blocked=bool(profile and profile["is_blocked"]),
        is_self=decision.is_self,
        decision="self" if decision.is_self else "known" if profile else "unknown",
        reason=str(decision.reason),
        score=candidate["score"] if candidate else None,
        threshold=candidate["threshold"] if candidate else None,
        margin=round(decision.margin, 4) if decision.margin is not None else None,
        speech_seconds=round(speech_seconds, 2),
        best=candidate,
    )


def _normalised(vector: np.typing.NDArray[np.float32]) -> Embedding:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _enrolment_count(voice: StoredVoice) -> int:
    return len(enrolment_samples(voice))


def _check_fields(name: str | None, priority: int | None) -> None:
    if name is not None and not (0 < len(name.strip()) <= MAX_NAME_LENGTH):
        raise ServiceError(
            ErrorCode.BAD_REQUEST, f"name must be 1-{MAX_NAME_LENGTH} characters, not {name!r}"
        )
    if priority is not None and priority not in PRIORITIES:
        raise ServiceError(
            ErrorCode.BAD_REQUEST,
            f"priority must be one of {', '.join(f'{k} ({v})' for k, v in PRIORITIES.items())}",
        )


def _unknown(profile_id: str | None) -> ServiceError:
    return ServiceError(ErrorCode.UNKNOWN_PROFILE, f"no speaker profile with id {profile_id!r}")
