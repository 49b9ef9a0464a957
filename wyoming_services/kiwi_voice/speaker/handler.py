"""One connection to the speaker service (protocol in `protocol.py`).

Audio requests (`speaker-enroll`, `speaker-identify`) are the request event, then one
utterance (audio-start, audio-chunk*, audio-stop) in any supported PCM format, converted to
16 kHz mono float by the common converter. Embeddings run in the shared engine executor,
profile reads and writes in the single database thread, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe

from kiwi_voice.common.audio import ENGINE_RATE, PcmFormat, Utterance
from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.framing import FrameLimits
from kiwi_voice.common.handler import ServiceEventHandler, parse_event

from .encoder import NoSpeech
from .encoder_slot import EncoderSlot
from .info import build_info_event
from .matching import Thresholds, best_match
from .protocol import (
    PRIORITIES,
    SELF_PROFILE_ID,
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
from .store import Embedding, ProfileStore, UnknownProfile

_LOGGER = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100
T = TypeVar("T")


@dataclass(frozen=True)
class SpeakerContext:
    """What every connection shares: the encoder, the profiles and the two executors."""

    encoder: EncoderSlot
    store: ProfileStore
    thresholds: Thresholds
    engine: EngineExecutor
    database: EngineExecutor
    max_seconds: float = 30.0


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

    def reset_request(self) -> None:
        if self._utterance is not None:
            self._discarding = True
        self._request = None
        self._utterance = None

    async def handle_event(self, event: Event) -> bool:
        context = self._context
        if Describe.is_type(event.type):
            profiles = await context.database.run(context.store.matrix)
            await self.write_event(
                build_info_event(
                    context.encoder.state,
                    context.thresholds,
                    context.engine.workers,
                    len(profiles.profiles),
                )
            )
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

    # -- audio requests -------------------------------------------------------------------

    def _start_request(self, request: SpeakerEnroll | SpeakerIdentify | None) -> None:
        self._request, self._utterance, self._discarding = request, None, False

    async def _checked_enroll(self, request: SpeakerEnroll) -> SpeakerEnroll:
        if request.id is None and not request.name:
            raise ServiceError(ErrorCode.BAD_REQUEST, "speaker-enroll needs a name (or an id)")
        _check_fields(request.name, request.priority)
        if request.id is not None and request.id != SELF_PROFILE_ID:
            # Said now, before the client streams audio in vain.
            await self._with_profile(self._context.store.get, request.id)
        return request

    async def _finish_utterance(self) -> None:
        request, utterance, discarding = self._request, self._utterance, self._discarding
        self._start_request(None)
        if request is None or utterance is None:
            if discarding:
                return
            raise ServiceError(ErrorCode.UNEXPECTED_EVENT, "audio-stop before audio-start")
        if utterance.is_empty:
            raise ServiceError(ErrorCode.NO_AUDIO, "no audio between audio-start and audio-stop")
        if self.client_gone():
            return  # nobody is waiting for the answer: skip the embedding
        embedding, seconds = await self._embed(utterance)
        if isinstance(request, SpeakerEnroll):
            await self._enroll(request, embedding, seconds)
        else:
            await self._identify(embedding)

    async def _embed(self, utterance: Utterance) -> tuple[Embedding, float]:
        encoder = await self._context.encoder.get()

        def convert_and_embed() -> tuple[Embedding, float]:
            return encoder.embed(utterance.to_float_mono(ENGINE_RATE))

        try:
            return await self._context.engine.run(convert_and_embed)
        except NoSpeech as err:
            raise ServiceError(ErrorCode.NO_AUDIO, f"no usable speech: {err}") from err

    async def _enroll(self, request: SpeakerEnroll, embedding: Embedding, seconds: float) -> None:
        store = self._context.store
        try:
            profile = await self._context.database.run(
                lambda: store.add_sample(
                    embedding,
                    seconds,
                    profile_id=request.id,
                    name=request.name,
                    priority=request.priority,
                    auto_learned=request.auto_learned,
                )
            )
        except UnknownProfile as err:
            raise _unknown(request.id) from err
        _LOGGER.info("Enrolled %s: %d sample(s)", profile["id"], profile["sample_count"])
        await self.write_event(
            SpeakerEnrolled(
                profile["id"], profile["name"], profile["priority"], profile["sample_count"]
            ).event()
        )

    async def _identify(self, embedding: Embedding) -> None:
        context = self._context
        profiles = await context.database.run(context.store.matrix)
        match = best_match(embedding, profiles, context.thresholds)
        profile = match.profile
        if profile is not None:
            await context.database.run(context.store.mark_seen, profile["id"])
        _LOGGER.info(
            "Identified %s (%.2f)", profile["id"] if profile else "unknown", match.confidence
        )
        await self.write_event(
            SpeakerIdentified(
                id=profile["id"] if profile else None,
                name=profile["name"] if profile else None,
                priority=profile["priority"] if profile else None,
                confidence=round(match.confidence, 4),
                is_blocked=bool(profile and profile["is_blocked"]),
                is_self=match.is_self,
            ).event()
        )

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
