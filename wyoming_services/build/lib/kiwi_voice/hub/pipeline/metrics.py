"""Per-turn timings: measured along the turn, published as TURN_METRICS, shown in /api/status.

All times are milliseconds. The reference point is the end of speech (for a typed turn, the
moment the text arrived): `first_audio_ms` is what a user waits for, the others say where
that time went. A stage that did not run is null.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kiwi_voice.hub.protocol import TurnMetrics


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass
class TurnTimer:
    """Stamps taken during one turn (time.perf_counter seconds)."""

    turn_id: str
    clock: Callable[[], float] = time.perf_counter
    speech_ended: float = field(default=0.0)
    stt_seconds: float | None = None
    speaker_seconds: float | None = None
    route_started: float | None = None
    route: str | None = None
    first_token: float | None = None
    first_sentence: float | None = None  # first complete sentence handed to TTS
    tts_first_audio_seconds: float | None = None  # TTS service time for the first sentence
    first_audio: float | None = None  # first audio byte handed to the sink
    ended: float | None = None

    def __post_init__(self) -> None:
        if not self.speech_ended:
            self.speech_ended = self.clock()

    def now(self) -> float:
        return self.clock()

    def mark_first_token(self) -> None:
        if self.first_token is None:
            self.first_token = self.clock()

    def mark_first_sentence(self) -> None:
        if self.first_sentence is None:
            self.first_sentence = self.clock()

    def mark_first_audio(self) -> None:
        if self.first_audio is None:
            self.first_audio = self.clock()

    def payload(self, interrupted: bool) -> TurnMetrics:
        if self.ended is None:
            self.ended = self.clock()
        start = self.speech_ended

        def since_start(stamp: float | None) -> float | None:
            return None if stamp is None else _ms(stamp - start)

        def since_route(stamp: float | None) -> float | None:
            if stamp is None or self.route_started is None:
                return None
            return _ms(stamp - self.route_started)

        return {
            "turn_id": self.turn_id,
            "stt_ms": _ms(self.stt_seconds),
            "speaker_ms": _ms(self.speaker_seconds),
            "llm_first_token_ms": since_route(self.first_token),
            "first_audio_ms": since_start(self.first_audio),
            "total_ms": _ms(self.ended - start),
            "route": self.route,
            "route_first_sentence_ms": since_route(self.first_sentence),
            "tts_first_audio_ms": _ms(self.tts_first_audio_seconds),
            "interrupted": interrupted,
        }
