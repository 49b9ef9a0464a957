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
from dataclasses import dataclass, field
from typing import Any

from kiwi_voice.hub.tts import TtsClient
from kiwi_voice.tts.sentences import SentenceSplitter

from . import frames
from .sink import TurnSink

FirstAudioCallback = Callable[[str], None]  # called with the sentence whose audio starts
_CANCEL_RETRY_SECONDS = 0.5


async def cancel_for_sure(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended.

    Python 3.11's `asyncio.wait_for` (inside wyoming's client) can swallow a cancellation that
    arrives as its read completes; the request is repeated until the task really ends.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_CANCEL_RETRY_SECONDS)
    if not task.cancelled():
        with contextlib.suppress(Exception):
            task.result()  # retrieved, so a failure is not reported as never retrieved


@dataclass
class SpeechProgress:
    sentences: int = 0
    audio_seconds: float = 0.0
    started: bool = False
    tts_first_audio_seconds: float | None = None  # kiwi-tts time for the first audio
    heard: list[str] = field(default_factory=list)  # sentences whose audio reached the sink


class SpeechOutput:
    def __init__(
        self,
        *,
        turn_id: str,
        sink: TurnSink,
        tts: TtsClient,
        voice: str | None,
        on_first_audio: FirstAudioCallback,
        language: str | None = None,
        length_scale: float | None = None,
        stream_sentences: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._turn_id = turn_id
        self._sink = sink
        self._tts = tts
        self._voice = voice
        self._language = language  # with no voice: kiwi-tts picks one of this language
        self._length_scale = length_scale
        self._on_first_audio = on_first_audio
        self._stream_sentences = stream_sentences
        self._clock = clock
        self._splitter = SentenceSplitter()
        self._collected: list[str] = []  # the whole reply, when not streaming sentences
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._worker = asyncio.create_task(self._speak_queue(), name=f"speech-{turn_id}")
        self._stopped = False
        self.progress = SpeechProgress()

    @property
    def worker(self) -> asyncio.Task[None]:
        """Ends when everything was spoken (after `finish`), or when speaking failed."""
        return self._worker

    def raise_if_failed(self) -> None:
        if self._worker.done() and not self._worker.cancelled():
            failure = self._worker.exception()
            if failure is not None:
                raise failure

    def add(self, text: str) -> bool:
        """Add reply text; True when it completed a sentence (now on its way to kiwi-tts).

        Raises the TTS failure, if speaking already failed, so the caller stops producing text.
        """
        self.raise_if_failed()
        if not self._stream_sentences:
            self._collected.append(text)
            return False
        sentences = self._splitter.add(text)
        for sentence in sentences:
            self._queue.put_nowait(sentence)
        return bool(sentences)

    async def finish(self) -> SpeechProgress:
        """Speak what is left; return once every sentence's audio was sent and played."""
        rest = self._splitter.finish() if self._stream_sentences else "".join(self._collected)
        rest = " ".join(rest.split())
        if rest:
            self._queue.put_nowait(rest)
        self._queue.put_nowait(None)
        await self._worker
        await self._sink.wait_played(self._turn_id)
        return self.progress

    async def cancel(self) -> None:
        """Stop speaking: no further request to kiwi-tts, no further audio to the sink."""
        self._stopped = True
        self._queue.put_nowait(None)
        await cancel_for_sure(self._worker)

    async def _speak_queue(self) -> None:
        while True:
            sentence = await self._queue.get()
            if sentence is None or self._stopped:
                return
            await self._speak(sentence)

    async def _speak(self, sentence: str) -> None:
        await self._sink.send_frame(frames.bot_text(self._turn_id, sentence))
        requested = self._clock()
        audio = self._tts.synthesize(
            sentence, self._voice, language=self._language, length_scale=self._length_scale
        )
        async with contextlib.aclosing(audio) as chunks:
            async for chunk in chunks:
                if self._stopped:
                    return
                if not self.progress.started:
                    self.progress.started = True
                    self.progress.tts_first_audio_seconds = self._clock() - requested
                    self._on_first_audio(sentence)
                if not self.progress.heard or self.progress.heard[-1] is not sentence:
                    self.progress.heard.append(sentence)
                await self._sink.play(self._turn_id, chunk)
                self.progress.audio_seconds += chunk.seconds
        self.progress.sentences += 1
