"""One connection of kiwi-tts: `synthesize`, or a synthesize-start/chunk/stop text stream.

Audio goes out sentence by sentence: audio-start as soon as the voice is ready, the audio
chunks of each sentence as soon as it is synthesised, audio-stop at the end (and
synthesize-stopped after a text stream). Each audio-chunk carries a `kiwi` field with the
sentence it belongs to and how many sentences the engine had finished when it was sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.framing import FrameLimits
from kiwi_voice.common.handler import ServiceEventHandler, parse_event
from kiwi_voice.common.memory import release_free_memory

from .engine import LoadedVoice, PiperEngine, SynthesisProgress
from .sentences import SentenceSplitter

_LOGGER = logging.getLogger(__name__)

# Sentences the engine may synthesise ahead of what has been sent: enough to keep audio
# flowing, few enough that a client who leaves costs at most this much work.
SENTENCES_AHEAD = 2
SYNTHESIS_FIELD = "synthesis"  # Kiwi's addition to synthesize(-start): per-request scales


@dataclass
class AudioOut:
    """The audio of one request (audio-start is sent once its voice is ready)."""

    voice: LoadedVoice
    samples_per_chunk: int
    samples_sent: int = 0
    sentences_sent: int = 0
    progress: SynthesisProgress = field(default_factory=SynthesisProgress)


@dataclass
class TextStream:
    """A synthesize-start … synthesize-stop session."""

    out: AudioOut | None
    config: Any
    splitter: SentenceSplitter
    chars: int = 0
    failed: bool = False


class TtsEventHandler(ServiceEventHandler):
    # A failed `synthesize` closes the connection after its error (see common.handler);
    # a failed text stream still ends with synthesize-stopped instead.
    ANSWERED_EVENTS = frozenset({"synthesize"})

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        engine: PiperEngine,
        executor: EngineExecutor,
        build_info: Callable[[], Info],
        max_text_chars: int,
        samples_per_chunk: int,
        frame_limits: FrameLimits | None = None,
    ) -> None:
        super().__init__(reader, writer, frame_limits)
        self.engine = engine
        self.executor = executor
        self.build_info = build_info
        self.max_text_chars = max_text_chars
        self.samples_per_chunk = samples_per_chunk
        self._stream: TextStream | None = None

    def reset_request(self) -> None:
        # A failed text stream stays open until synthesize-stop, which still gets its
        # synthesize-stopped; the chunks in between are dropped.
        if self._stream is not None:
            self._stream.failed = True

    async def disconnect(self) -> None:
        self._stream = None

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.build_info().event())
        elif Synthesize.is_type(event.type):
            if self._stream is None:  # inside a stream it repeats the streamed text
                await self._synthesize(event)
        elif SynthesizeStart.is_type(event.type):
            await self._start_stream(event)
        elif SynthesizeChunk.is_type(event.type):
            await self._stream_chunk(parse_event(SynthesizeChunk, event))
        elif SynthesizeStop.is_type(event.type):
            await self._stop_stream()
        else:
            _LOGGER.debug("%s: ignoring %s", self.client_id, event.type)
        return True

    # -- one-shot synthesize ----------------------------------------------------------

    async def _synthesize(self, event: Event) -> None:
        request = parse_event(Synthesize, event)
        text = self._checked_text(request.text)
        out, config = await self._prepare(request.voice, event.data.get(SYNTHESIS_FIELD))
        try:
            await self._send_sentences(out, config, text)
        finally:
            self._log_done("synthesize", out)
            await self._send_audio_stop(out)
        await self._release_memory()

    # -- text stream ------------------------------------------------------------------

    async def _start_stream(self, event: Event) -> None:
        request = parse_event(SynthesizeStart, event)
        self._stream = TextStream(out=None, config=None, splitter=SentenceSplitter())
        out, config = await self._prepare(request.voice, event.data.get(SYNTHESIS_FIELD))
        self._stream.out, self._stream.config = out, config

    async def _stream_chunk(self, chunk: SynthesizeChunk) -> None:
        stream = self._stream
        if stream is None:
            raise ServiceError(
                ErrorCode.UNEXPECTED_EVENT, "synthesize-chunk before synthesize-start"
            )
        if stream.failed:
            return
        stream.chars += len(chunk.text)
        if stream.chars > self.max_text_chars:
            raise ServiceError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"text stream longer than {self.max_text_chars} characters",
            )
        sentences = stream.splitter.add(chunk.text)
        if sentences and stream.out is not None:
            await self._send_sentences(stream.out, stream.config, " ".join(sentences))

    async def _stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            raise ServiceError(
                ErrorCode.UNEXPECTED_EVENT, "synthesize-stop before synthesize-start"
            )
        try:
            rest = stream.splitter.finish()
            if not stream.failed and stream.out is not None:
                if rest:
                    await self._send_sentences(stream.out, stream.config, rest)
                elif stream.out.sentences_sent == 0:
                    raise ServiceError(ErrorCode.EMPTY_TEXT, "the text stream had no text to speak")
        except ServiceError as error:
            await self.write_error(error)
        finally:
            if stream.out is not None:
                self._log_done("text stream", stream.out)
                await self._send_audio_stop(stream.out)
            await self.write_event(SynthesizeStopped().event())
        await self._release_memory()

    # -- shared -----------------------------------------------------------------------

    def _checked_text(self, text: str) -> str:
        text = " ".join(text.split())
        if not text:
            raise ServiceError(ErrorCode.EMPTY_TEXT, "nothing to synthesize: the text is empty")
        if len(text) > self.max_text_chars:
            raise ServiceError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"text of {len(text)} characters is over the limit of {self.max_text_chars}",
            )
        return text

    async def _prepare(
        self, voice: SynthesizeVoice | None, overrides: object
    ) -> tuple[AudioOut, Any]:
        """Resolve (and load or download, in a worker) the voice and the synthesis config."""
        if overrides is not None and not isinstance(overrides, dict):
            raise ServiceError(ErrorCode.BAD_REQUEST, f"{SYNTHESIS_FIELD} must be an object")
        name = voice.name if voice else None
        if voice is not None and name is None and voice.language:
            name = await self.executor.run(self.engine.voice_for_language, voice.language)
        # A loaded voice is used at once; loading (maybe downloading) one is engine work.
        loaded = self.engine.cached_voice(name)
        if loaded is None:
            loaded = await self.executor.run(self.engine.voice, name)
        config = self.engine.synthesis_config(loaded, voice.speaker if voice else None, overrides)
        rate = loaded.sample_rate
        await self.write_event(AudioStart(rate=rate, width=2, channels=1, timestamp=0).event())
        return AudioOut(loaded, self.samples_per_chunk), config

    async def _send_sentences(self, out: AudioOut, config: Any, text: str) -> None:
        """Synthesise `text` in a worker and send each sentence's audio as soon as it exists."""
        first_index = out.sentences_sent
        sentences = self.executor.iterate(
            lambda: self.engine.synthesize(
                out.voice, text, config, out.progress, first_index=first_index
            ),
            max_ahead=SENTENCES_AHEAD,
            cancelled=self.client_gone,
        )
        async with aclosing(sentences) as ready:
            async for sentence in ready:
                if self.client_gone():
                    _LOGGER.debug("%s: client left, synthesis stopped", self.client_id)
                    return
                await self._send_audio(out, sentence.index, sentence.pcm)
                out.sentences_sent = sentence.index + 1

    async def _send_audio(self, out: AudioOut, sentence_index: int, pcm: bytes) -> None:
        rate = out.voice.sample_rate
        step = 2 * self.samples_per_chunk
        for offset in range(0, len(pcm), step):
            chunk = AudioChunk(
                rate=rate,
                width=2,
                channels=1,
                audio=pcm[offset : offset + step],
                timestamp=out.samples_sent * 1000 // rate,
            )
            event = chunk.event()
            event.data["kiwi"] = {
                "sentence": sentence_index,
                "sentences_ready": out.progress.sentences_ready,
            }
            await self.write_event(event)
            out.samples_sent += chunk.samples

    def _log_done(self, kind: str, out: AudioOut) -> None:
        _LOGGER.info(
            "%s: %s: %d sentence(s), %.2f s of audio with %s",
            self.client_id,
            kind,
            out.sentences_sent,
            out.samples_sent / out.voice.sample_rate,
            out.voice.name,
        )

    async def _release_memory(self) -> None:
        """The audio is out: hand the synthesis's freed buffers back (common/memory.py)."""
        await self.executor.run(release_free_memory)

    async def _send_audio_stop(self, out: AudioOut) -> None:
        timestamp = out.samples_sent * 1000 // out.voice.sample_rate
        await self.write_event(AudioStop(timestamp=timestamp).event())
