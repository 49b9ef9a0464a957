"""The hub's client of kiwi-tts: text in, a stream of PCM chunks out (Wyoming `synthesize`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from .wyoming_client import ServiceError, ServiceUnavailable, tcp_client

SERVICE = "tts"


class TtsClient:
    def __init__(self, uri: str, read_timeout: float = 30.0) -> None:
        self.uri = uri
        self._read_timeout = read_timeout

    async def installed_voices(self) -> list[str]:
        """Names of the voices kiwi-tts has on disk (what a voice switch can pick without a
        download); empty when the service cannot be asked right now."""
        client = tcp_client(self.uri, SERVICE, 2.0, 5.0)
        try:
            await client.connect()
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    info = Info.from_event(event)
                    return sorted(
                        voice.name
                        for program in info.tts
                        for voice in program.voices
                        if voice.installed
                    )
        except (TimeoutError, OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError, ConnectionError):
                await client.disconnect()
        return []

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """Yield the audio of `text` chunk by chunk, as the service produces it."""
        client = tcp_client(self.uri, SERVICE, 3.0, self._read_timeout)
        try:
            await client.connect()
        except (TimeoutError, OSError) as err:
            raise ServiceUnavailable(
                SERVICE, f"cannot reach the TTS service at {self.uri}: {err}"
            ) from err
        try:
            request = Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None)
            await client.write_event(request.event())
            started = False
            while True:
                event = await client.read_event()
                if event is None:
                    raise ServiceUnavailable(SERVICE, "the TTS service hung up mid-answer")
                if Error.is_type(event.type):
                    error = Error.from_event(event)
                    raise ServiceError(SERVICE, error.code or "tts_failed", error.text)
                if AudioStart.is_type(event.type):
                    started = True
                elif AudioChunk.is_type(event.type) and started:
                    yield AudioChunk.from_event(event)
                elif AudioStop.is_type(event.type) and started:
                    return
        except TimeoutError as err:
            raise ServiceUnavailable(SERVICE, "the TTS service did not answer in time") from err
        except (OSError, ConnectionError) as err:
            raise ServiceUnavailable(SERVICE, f"lost the TTS service: {err}") from err
        finally:
            with contextlib.suppress(OSError, ConnectionError):
                await client.disconnect()
