"""The hub's client of kiwi-tts: text in, a stream of PCM chunks out (Wyoming `synthesize`),
and which of kiwi-tts's voices speaks a language (`VoiceChooser`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from .errors import service_refused
from .wyoming_client import ServiceUnavailable, tcp_client

SERVICE = "tts"
SYNTHESIS_FIELD = "synthesis"  # kiwi-tts's addition to `synthesize`: per-request piper scales


@dataclass(frozen=True)
class InstalledVoice:
    name: str
    languages: tuple[str, ...]  # piper codes, e.g. en_US

    def speaks(self, language: str) -> bool:
        wanted = base_language(language)
        return any(base_language(code) == wanted for code in self.languages)


def base_language(code: str) -> str:
    """`de_DE`, `de-de`, `de` -> `de`."""
    return code.replace("-", "_").split("_")[0].lower()


class TtsClient:
    def __init__(self, uri: str, read_timeout: float = 30.0) -> None:
        self.uri = uri
        self._read_timeout = read_timeout

    async def installed_voices(self) -> list[str]:
        """Names of the voices kiwi-tts has on disk (what a voice switch can pick without a
        download); empty when the service cannot be asked right now."""
        return sorted(voice.name for voice in await self.voices() or ())

    async def voices(self) -> list[InstalledVoice] | None:
        """The voices kiwi-tts has on disk with their languages; None when it cannot be asked."""
        client = tcp_client(self.uri, SERVICE, 2.0, 5.0)
        try:
            await client.connect()
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    info = Info.from_event(event)
                    return [
                        InstalledVoice(voice.name, tuple(voice.languages or ()))
                        for program in info.tts
                        for voice in program.voices
                        if voice.installed
                    ]
        except (TimeoutError, OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError, ConnectionError):
                await client.disconnect()
        return None

    async def synthesize(
        self,
        text: str,
        voice: str | None = None,
        *,
        language: str | None = None,
        length_scale: float | None = None,
    ) -> AsyncIterator[AudioChunk]:
        """Yield the audio of `text` chunk by chunk, as the service produces it.

        `voice` None with a `language`: kiwi-tts picks its default voice if it speaks the
        language, else an installed voice that does. `length_scale` is piper's speed (below 1
        is faster)."""
        client = tcp_client(self.uri, SERVICE, 3.0, self._read_timeout)
        try:
            await client.connect()
        except (TimeoutError, OSError) as err:
            raise ServiceUnavailable(
                SERVICE, f"cannot reach the TTS service at {self.uri}: {err}"
            ) from err
        try:
            wanted = None
            if voice or language:
                wanted = SynthesizeVoice(name=voice or None, language=None if voice else language)
            event = Synthesize(text=text, voice=wanted).event()
            if length_scale is not None:
                data: dict[str, Any] = dict(event.data or {})
                data[SYNTHESIS_FIELD] = {"length_scale": length_scale}
                event = Event(event.type, data)
            await client.write_event(event)
            started = False
            while True:
                event = await client.read_event()
                if event is None:
                    raise ServiceUnavailable(SERVICE, "the TTS service hung up mid-answer")
                if Error.is_type(event.type):
                    error = Error.from_event(event)
                    raise service_refused(SERVICE, error.code or "tts_failed", error.text)
                if AudioStart.is_type(event.type):
                    started = True
                elif AudioChunk.is_type(event.type) and started:
                    yield AudioChunk.from_event(event)
                elif AudioStop.is_type(event.type) and started:
                    return
        except TimeoutError as err:
            raise ServiceUnavailable(SERVICE, "the TTS service did not answer in time") from err
        # A service killed mid-event leaves a torn frame: wyoming raises IncompleteReadError.
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as err:
            raise ServiceUnavailable(SERVICE, f"lost the TTS service: {err}") from err
        finally:
            with contextlib.suppress(OSError, ConnectionError):
                await client.disconnect()


@dataclass(frozen=True)
class VoiceChoice:
    """What to ask kiwi-tts for: a voice by name, or (name None) a voice of `language`."""

    name: str | None
    language: str | None = None
    speaks_language: bool = True  # False: no installed voice speaks the language


class VoiceChooser:
    """Picks the voice that speaks the turn's language: the preferred one (the soul's, else
    `tts_voice`) when it does, else an installed voice that does. With none, the preferred voice
    speaks on and `speaks_language` says so. kiwi-tts's list is asked at most every `ttl`."""

    def __init__(
        self, tts: TtsClient, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tts = tts
        self._ttl = ttl
        self._clock = clock
        self._cached: tuple[float, list[InstalledVoice]] | None = None

    async def installed(self, *, fresh: bool = False) -> list[InstalledVoice] | None:
        now = self._clock()
        if not fresh and self._cached is not None and now - self._cached[0] < self._ttl:
            return self._cached[1]
        voices = await self._tts.voices()
        if voices is not None:
            self._cached = (now, voices)
        return voices

    async def choose(
        self, preferred: str | None, language: str, *, fresh: bool = False
    ) -> VoiceChoice:
        voices = await self.installed(fresh=fresh)
        if voices is None:  # kiwi-tts cannot be asked: no better choice to make
            return VoiceChoice(preferred)
        speaking = [voice for voice in voices if voice.speaks(language)]
        if preferred and any(voice.name == preferred for voice in speaking):
            return VoiceChoice(preferred)
        if not speaking:
            return VoiceChoice(preferred, speaks_language=False)
        if preferred is None:
            return VoiceChoice(None, language=base_language(language))
        return VoiceChoice(speaking[0].name)
