"""Speaking a reply while it is still being written: each sentence goes to kiwi-tts as soon as
it is complete, and its audio to the turn's sink as kiwi-tts produces it.

With `stream_sentences=False` the whole reply is collected first and sent as one request (the
comparison the pipeline benchmark makes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.tts import TtsClient
from kiwi_voice.tts.sentences import SentenceSplitter

from . import frames
from .sink import TurnSink

FirstAudioCallback = Callable[[str], None]  # called with the sentence whose audio starts


@dataclass
class SpeechProgress:
    sentences: int = 0
    audio_seconds: float = 0.0
    started: bool = False
    tts_first_audio_seconds: float | None = None  # kiwi-tts time for the first audio


class SpeechOutput:
    def __init__(
        self,
        *,
        turn_id: str,
        sink: TurnSink,
        tts: TtsClient,
        voice: str | None,
        on_first_audio: FirstAudioCallback,
        stream_sentences: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._turn_id = turn_id
        self._sink = sink
        self._tts = tts
        self._voice = voice
        self._on_first_audio = on_first_audio
        self._stream_sentences = stream_sentences
        self._clock = clock
        self._splitter = SentenceSplitter()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._worker = asyncio.create_task(self._speak_queue(), name=f"speech-{turn_id}")
        self.progress = SpeechProgress()

    def _raise_if_failed(self) -> None:
        if self._worker.done() and not self._worker.cancelled():
            failure = self._worker.exception()
            if failure is not None:
                raise failure

    def add(self, text: str) -> bool:
        """Add reply text; True when it completed a sentence (now on its way to kiwi-tts).

        Raises the TTS failure, if speaking already failed, so the caller stops producing text.
        """
        self._raise_if_failed()
        if not self._stream_sentences:
            self._splitter.add(text)
            return False
        sentences = self._splitter.add(text)
        for sentence in sentences:
            self._queue.put_nowait(sentence)
        return bool(sentences)

    async def finish(self) -> SpeechProgress:
        """Speak what is left; return once every sentence's audio was sent and played."""
        rest = self._splitter.finish()
        if rest:
            self._queue.put_nowait(rest)
        self._queue.put_nowait(None)
        await self._worker
        await self._sink.wait_played(self._turn_id)
        return self.progress

    async def cancel(self) -> None:
        """Stop speaking: no further request to kiwi-tts, no further audio to the sink."""
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, ServiceError):
            await self._worker

    async def _speak_queue(self) -> None:
        while True:
            sentence = await self._queue.get()
            if sentence is None:
                return
            await self._speak(sentence)

    async def _speak(self, sentence: str) -> None:
        await self._sink.send_frame(frames.bot_text(self._turn_id, sentence))
        requested = self._clock()
        async with contextlib.aclosing(self._tts.synthesize(sentence, self._voice)) as chunks:
            async for chunk in chunks:
                if not self.progress.started:
                    self.progress.started = True
                    self.progress.tts_first_audio_seconds = self._clock() - requested
                    self._on_first_audio(sentence)
                await self._sink.play(self._turn_id, chunk)
                self.progress.audio_seconds += chunk.seconds
        self.progress.sentences += 1
