"""The hub's client of kiwi-stt: one utterance in, its transcript out (Wyoming `transcribe`)."""

from __future__ import annotations

from dataclasses import dataclass

from wyoming.asr import Transcribe

from kiwi_voice.hub.speakers import PcmAudio
from kiwi_voice.hub.wyoming_client import ServiceProtocolError, exchange

SERVICE = "stt"


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str


class SttClient:
    def __init__(self, uri: str, read_timeout: float = 60.0) -> None:
        self.uri = uri
        self._read_timeout = read_timeout

    async def transcribe(self, audio: PcmAudio, language: str | None) -> Transcript:
        """Transcribe `audio`; `language` None lets the service detect it."""
        requests = [Transcribe(language=language).event(), *audio.events()]
        answer = await exchange(
            self.uri, SERVICE, requests, "transcript", read_timeout=self._read_timeout
        )
        text = answer.data.get("text")
        if not isinstance(text, str):
            raise ServiceProtocolError(SERVICE, "the STT service sent a transcript without text")
        detected = answer.data.get("language")
        return Transcript(
            text=text.strip(),
            language=detected if isinstance(detected, str) and detected else (language or ""),
        )
