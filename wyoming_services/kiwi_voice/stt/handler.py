"""One connection of kiwi-stt: transcribe, audio-start/chunk/stop in, streamed transcript out;
and Kiwi's model switch (models.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe, Info

from kiwi_voice.common.audio import PcmFormat, Utterance
from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.framing import FrameLimits
from kiwi_voice.common.handler import ServiceEventHandler, parse_event
from kiwi_voice.common.memory import release_free_memory

from .engine import LanguageDetected, Segment, TranscriptPart
from .models import (
    LOAD_EVENT,
    LOADED_EVENT,
    PROGRESS_EVENT,
    LoadRequest,
    Stage,
    SwitchingPolicy,
    WhisperModels,
    may_switch,
)

_LOGGER = logging.getLogger(__name__)


class SttEventHandler(ServiceEventHandler):
    """Collects one utterance at a time and streams its transcript back."""

    ANSWERED_EVENTS = frozenset({"audio-stop"})

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        models: WhisperModels,
        executor: EngineExecutor,
        build_info: Callable[[], Info],
        max_audio_seconds: float,
        frame_limits: FrameLimits | None = None,
        model_switching: SwitchingPolicy = "local",
    ) -> None:
        super().__init__(reader, writer, frame_limits)
        self.models = models
        self.model_switching = model_switching
        self.executor = executor
        self.build_info = build_info
        self.max_audio_seconds = max_audio_seconds
        self._language: str | None = None
        self._utterance: Utterance | None = None
        # An error while an utterance is open drops it: its remaining chunks are ignored,
        # and its audio-stop is answered with that error again (the client waits on it).
        self._dropping = False
        self._dropped_by: ServiceError | None = None

    def reset_request(self) -> None:
        self._dropping = self._dropping or self._utterance is not None
        self._utterance = None

    async def write_error(self, error: ServiceError) -> None:
        if self._dropping and self._dropped_by is None:
            self._dropped_by = error
        await super().write_error(error)

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.build_info().event())
        elif Transcribe.is_type(event.type):
            self._on_transcribe(parse_event(Transcribe, event))
        elif AudioStart.is_type(event.type):
            fmt = PcmFormat.from_event_data(event.data)
            self._utterance = Utterance(fmt, self.max_audio_seconds)
            self._dropping, self._dropped_by = False, None
        elif AudioChunk.is_type(event.type):
            self._on_chunk(event)
        elif AudioStop.is_type(event.type):
            await self._on_stop()
        elif event.type == LOAD_EVENT:
            await self._on_load(event)
        else:
            _LOGGER.debug("%s: ignoring %s", self.client_id, event.type)
        return True

    def _on_transcribe(self, transcribe: Transcribe) -> None:
        engine = self.models.current
        if transcribe.name and transcribe.name != engine.settings.model:
            raise ServiceError(
                ErrorCode.UNKNOWN_MODEL,
                f"model {transcribe.name!r} is not served here "
                f"(this service runs {engine.settings.model!r})",
            )
        self._language = engine.resolve_language(transcribe.language)

    async def _on_load(self, event: Event) -> None:
        peer = self.writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else "local"
        if not may_switch(self.model_switching, address):
            raise ServiceError(
                ErrorCode.BAD_REQUEST,
                f"{LOAD_EVENT}: switching the model is not allowed from {address} "
                f"(--model-switching {self.model_switching})",
            )
        request = LoadRequest.from_data(event.data)

        async def report(stage: Stage) -> None:
            data = {"model": request.model, "device": request.device, "stage": stage}
            await self.write_event(Event(PROGRESS_EVENT, data))

        _engine, seconds = await self.models.switch(request, report)
        loaded = {"model": request.model, "device": request.device, "seconds": round(seconds, 3)}
        await self.write_event(Event(LOADED_EVENT, loaded))

    def _on_chunk(self, event: Event) -> None:
        if self._utterance is None:
            if self._dropping:
                return
            raise ServiceError(ErrorCode.UNEXPECTED_EVENT, "audio-chunk before audio-start")
        self._utterance.add(parse_event(AudioChunk, event))

    async def _on_stop(self) -> None:
        utterance, self._utterance = self._utterance, None
        if utterance is None:
            dropped_by, self._dropping, self._dropped_by = self._dropped_by, False, None
            if dropped_by is not None:
                raise ServiceError(dropped_by.code, f"utterance dropped: {dropped_by.text}")
            raise ServiceError(ErrorCode.UNEXPECTED_EVENT, "audio-stop before audio-start")
        if utterance.is_empty:
            raise ServiceError(ErrorCode.NO_AUDIO, "audio-stop with no audio since audio-start")
        engine = self.models.current  # a switch meanwhile does not change this utterance's
        language = self._language if self._language else engine.resolve_language(None)
        self._language = None
        audio = await self.executor.run(utterance.to_float_mono)
        _LOGGER.debug("%s: transcribing %.2f s", self.client_id, utterance.seconds)
        parts = self.executor.iterate(
            lambda: engine.transcribe(audio, language), cancelled=self.client_gone
        )
        await self._stream_transcript(parts)

    async def _stream_transcript(self, parts: AsyncGenerator[TranscriptPart, None]) -> None:
        texts: list[str] = []
        language: str | None = None
        async with aclosing(parts) as stream:
            async for part in stream:
                if self.client_gone():
                    _LOGGER.debug("%s: client left, transcription stopped", self.client_id)
                    return
                if isinstance(part, LanguageDetected):
                    language = part.language
                    await self.write_event(TranscriptStart(language=language).event())
                elif isinstance(part, Segment):
                    texts.append(part.text)
                    await self.write_event(TranscriptChunk(text=part.text).event())
        text = "".join(texts).strip()
        _LOGGER.info("%s: transcript (%s): %s", self.client_id, language, text)
        await self.write_event(Transcript(text=text, language=language).event())
        await self.write_event(TranscriptStop().event())
        # The transcript is out: now hand the decoder's freed buffers back (see memory.py).
        await self.executor.run(release_free_memory)
