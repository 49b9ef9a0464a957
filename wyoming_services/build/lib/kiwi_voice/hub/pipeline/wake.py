"""Wake word detection through kiwi-wake, and which engine serves the configured wake word.

`WakeWordStream` is one long-lived Wyoming `wake` stream per audio source: every chunk of the
source goes in, `detection` events come back carrying the stream time (ms) at which the word
ended, so the capture can start exactly there even when audio arrives faster than real time
(a WAV file). `end()` closes the stream with audio-stop and then asks `describe`: kiwi-wake
scores every frame before it answers audio-stop, so once `info` is back every detection of
the stream has been delivered.

`choose_engine` turns the `wake_word` / `wake_word_engine` settings and what kiwi-wake has
installed into the engine that runs: `openwakeword` when a model for the word is installed,
else `text` (speech transcribed and matched against the word), which works for any word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.wake import Detect, Detection

from kiwi_voice.hub.errors import ServiceError, ServiceUnavailable
from kiwi_voice.hub.wyoming_client import exchange, tcp_client

_LOGGER = logging.getLogger(__name__)
SERVICE = "wake"
RATE = 16_000
EngineName = Literal["openwakeword", "text"]


@dataclass(frozen=True)
class WakeDetection:
    name: str
    stream_ms: int  # stream time at the end of the frame that fired, from the stream's start


class WakeWordStream:
    """One source's audio streamed to kiwi-wake; detections are handed to `on_detection`."""

    def __init__(
        self, uri: str, names: list[str], on_detection: Callable[[WakeDetection], None]
    ) -> None:
        self._uri = uri
        self._names = names
        self._on_detection = on_detection
        self._client: AsyncTcpClient | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sent_samples = 0
        self._synced: list[asyncio.Future[None]] = []
        self._ended = False
        self.failure: ServiceError | None = None

    async def open(self) -> None:
        client = tcp_client(self._uri, SERVICE, 3.0, 3600.0)
        try:
            await client.connect()
            await client.write_event(Detect(names=self._names).event())
            await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        except (TimeoutError, OSError) as err:
            raise ServiceUnavailable(SERVICE, f"cannot reach the wake service: {err}") from err
        self._client = client
        self._reader = asyncio.create_task(self._read(client), name="wake-reader")

    @property
    def alive(self) -> bool:
        return self._client is not None and self.failure is None and not self._ended

    async def send(self, pcm: bytes) -> None:
        if not self.alive or not pcm:
            return
        assert self._client is not None
        chunk = AudioChunk(
            rate=RATE,
            width=2,
            channels=1,
            audio=pcm,
            timestamp=self._sent_samples * 1000 // RATE,
        )
        self._sent_samples += len(pcm) // 2
        try:
            await self._client.write_event(chunk.event())
        except (OSError, ConnectionError) as err:
            self._fail(ServiceUnavailable(SERVICE, f"lost the wake service: {err}"))

    async def end(self, wait_seconds: float = 10.0) -> None:
        """End the stream; returns once every detection of it has been delivered."""
        if not self.alive:
            return
        assert self._client is not None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._synced.append(waiter)
        self._ended = True
        try:
            await self._client.write_event(AudioStop().event())
            await self._client.write_event(Describe().event())
            await asyncio.wait_for(asyncio.shield(waiter), wait_seconds)
        except (TimeoutError, OSError, ConnectionError) as err:
            self._fail(ServiceUnavailable(SERVICE, f"the wake service did not answer: {err}"))

    async def close(self) -> None:
        client, self._client = self._client, None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if client is not None and not self._ended:
            with contextlib.suppress(OSError, ConnectionError):
                await client.write_event(AudioStop().event())
            with contextlib.suppress(OSError, ConnectionError):
                await client.disconnect()
        self._release_waiters()

    async def _read(self, client: AsyncTcpClient) -> None:
        try:
            while True:
                event = await client.read_event()
                if event is None:
                    self._fail(ServiceUnavailable(SERVICE, "the wake service hung up"))
                    return
                if Detection.is_type(event.type):
                    detection = Detection.from_event(event)
                    self._on_detection(
                        WakeDetection(detection.name or "", int(detection.timestamp or 0))
                    )
                elif Info.is_type(event.type):
                    if self._synced:
                        waiter = self._synced.pop(0)
                        if not waiter.done():
                            waiter.set_result(None)
                elif Error.is_type(event.type):
                    error = Error.from_event(event)
                    self._fail(ServiceError(SERVICE, error.code or "wake_failed", error.text))
                    return
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as err:
            self._fail(ServiceUnavailable(SERVICE, f"lost the wake service: {err}"))

    def _fail(self, failure: ServiceError) -> None:
        if self.failure is None:
            self.failure = failure
            _LOGGER.warning("Wake word stream stopped: %s", failure.message)
        self._release_waiters()

    def _release_waiters(self) -> None:
        for waiter in self._synced:
            if not waiter.done():
                waiter.set_result(None)
        self._synced.clear()


# ---- which engine serves the wake word -------------------------------------------------------


@dataclass(frozen=True)
class InstalledWakeWord:
    name: str  # model name, e.g. hey_jarvis
    phrase: str  # e.g. "hey jarvis"


@dataclass(frozen=True)
class EngineChoice:
    engine: EngineName
    wake_word: str  # the configured word
    model: str | None  # the kiwi-wake model name for openwakeword
    reason: str


def normalize_word(text: str) -> str:
    """`Hey_Jarvis_v0.1` and "hey jarvis!" both become "hey jarvis"."""
    text = re.sub(r"_v\d[\d.]*$", "", text.strip().lower())
    return " ".join(re.sub(r"[^\w\s]|_", " ", text).split())


async def installed_wake_words(uri: str, wait_seconds: float = 5.0) -> list[InstalledWakeWord]:
    """The wake word models kiwi-wake has loaded (describe → info)."""
    answer = await exchange(uri, SERVICE, [Describe().event()], "info", read_timeout=wait_seconds)
    info = Info.from_event(answer)
    return [
        InstalledWakeWord(model.name, model.phrase or model.name.replace("_", " "))
        for program in info.wake
        for model in program.models
        if model.installed
    ]


def choose_engine(
    setting: str, wake_word: str, installed: list[InstalledWakeWord] | None
) -> EngineChoice:
    """`setting` is auto, openwakeword or text; `installed` None: kiwi-wake could not be asked."""
    wanted = normalize_word(wake_word)
    model = next(
        (
            word.name
            for word in installed or []
            if wanted in (normalize_word(word.name), normalize_word(word.phrase))
        ),
        None,
    )
    if setting == "text":
        return EngineChoice("text", wake_word, None, "wake_word_engine is text")
    if model is not None:
        return EngineChoice("openwakeword", wake_word, model, f"kiwi-wake has the model {model}")
    if setting == "openwakeword":
        # Asked for explicitly: keep it, kiwi-wake reports the missing model as an error.
        why = "kiwi-wake did not answer" if installed is None else "no such model installed"
        return EngineChoice("openwakeword", wake_word, wake_word, f"requested ({why})")
    why = "kiwi-wake did not answer" if installed is None else "no model for it in kiwi-wake"
    return EngineChoice("text", wake_word, None, f"{why}; matching transcribed speech instead")


def text_matches_wake_word(transcript: str, wake_word: str) -> str | None:
    """When `transcript` contains the wake word, the text after it (maybe ""); else None."""
    words = normalize_word(transcript).split()
    wanted = normalize_word(wake_word).split()
    if not wanted:
        return None
    for start in range(len(words) - len(wanted) + 1):
        if words[start : start + len(wanted)] == wanted:
            return " ".join(words[start + len(wanted) :])
    return None
