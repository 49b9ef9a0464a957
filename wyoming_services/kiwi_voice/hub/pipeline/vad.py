"""End of speech: webrtcvad decides, 30 ms frame by 30 ms frame, when an utterance is over.

An `Endpointer` eats 16 kHz mono s16 audio in pieces of any size and answers once: speech ended
(after `silence_seconds` without speech), the utterance reached `max_seconds`, or no speech began
within `start_timeout_seconds`. The utterance it hands back starts a little before the first
voiced frame (so the first syllable is not clipped) and ends a little after the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import webrtcvad

RATE = 16_000
FRAME_MS = 30
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2  # 480 samples of s16
# Voiced frames in a row before we believe speech started (one click is not speech).
_START_FRAMES = 3
_PRE_ROLL_FRAMES = 10  # 300 ms kept before the first voiced frame
_TAIL_FRAMES = 7  # 210 ms of the trailing silence kept after the last voiced frame


class EndReason(StrEnum):
    SILENCE = "silence"  # the speaker stopped talking
    MAX_LENGTH = "max_length"  # the utterance hit the configured limit
    NO_SPEECH = "no_speech"  # nothing was said before the start timeout
    END_OF_INPUT = "end_of_input"  # the source stopped (end of a file, push-to-talk released)


@dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    silence_seconds: float = 0.8
    max_seconds: float = 15.0
    start_timeout_seconds: float | None = 5.0  # None: wait for speech forever
    aggressiveness: int = 2  # webrtcvad mode 0 (least) to 3 (most aggressive filtering)
    # After this much silence the utterance so far is offered as `tentative`, so it can be
    # transcribed while the endpointer waits out the rest of `silence_seconds` (None: never).
    # At least the kept tail (_TAIL_FRAMES), so the tentative audio is what a final cut at the
    # same pause would hand back.
    speculate_seconds: float | None = None


@dataclass(frozen=True)
class Utterance:
    pcm: bytes  # 16 kHz mono s16
    reason: EndReason
    had_speech: bool
    # Offset (in bytes of the audio given to this endpointer) where `pcm` ends; audio after it
    # was not used and may hold the start of the next utterance.
    end_offset: int
    voiced_seconds: float = 0.0  # how much of it webrtcvad heard as speech

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * RATE)


class Endpointer:
    """One utterance's worth of voice activity detection (make a new one per utterance)."""

    def __init__(self, settings: EndpointSettings) -> None:
        self._settings = settings
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self._pending = b""  # less than one frame, waiting for the rest
        self._frames: list[bytes] = []  # every whole frame seen so far
        self._consumed = 0  # bytes of input turned into frames
        self._voiced_run = 0
        self._voiced_frames = 0  # every voiced frame so far, speech or not
        self._speech_start: int | None = None  # frame index
        self._last_voiced: int | None = None
        self._offered: int | None = None  # the last voiced frame of the last tentative cut
        self.result: Utterance | None = None
        # The utterance up to the current pause, once it lasted `speculate_seconds`; the
        # listener takes it (and sets it back to None).
        self.tentative: Utterance | None = None

    @property
    def speech_started(self) -> bool:
        return self._speech_start is not None

    def add(self, pcm: bytes) -> Utterance | None:
        """Feed audio; returns the utterance once it ended (and then always the same one)."""
        if self.result is not None:
            return self.result
        data = self._pending + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = data[whole:]
        for offset in range(0, whole, FRAME_BYTES):
            self._consumed += FRAME_BYTES
            if self._on_frame(data[offset : offset + FRAME_BYTES]):
                break
        return self.result

    @property
    def silence_seconds(self) -> float:
        """Silence since the last voiced frame (0 before anything was voiced)."""
        if self._last_voiced is None:
            return 0.0
        return (len(self._frames) - 1 - self._last_voiced) * FRAME_MS / 1000

    @property
    def paused_since_tentative(self) -> bool:
        """No speech since the last tentative cut was offered: that cut still ends the
        utterance as heard so far."""
        return self._offered is not None and self._offered == self._last_voiced

    def end_at(self, tentative: Utterance) -> Utterance:
        """End the utterance at a tentative cut (the listener judged the pause to be the end)."""
        if self.result is None:
            self.result = tentative
        return self.result

    def finish(self) -> Utterance:
        """The input ended: whatever was heard is the utterance."""
        if self.result is None:
            self.result = self._utterance(EndReason.END_OF_INPUT, trim=False)
        return self.result

    def _on_frame(self, frame: bytes) -> bool:
        index = len(self._frames)
        self._frames.append(frame)
        settings = self._settings
        if self._vad.is_speech(frame, RATE):
            self._voiced_run += 1
            self._voiced_frames += 1
            self._last_voiced = index
            self.tentative = None  # the pause was not the end: that cut is stale
            if self._speech_start is None and self._voiced_run >= _START_FRAMES:
                self._speech_start = index - _START_FRAMES + 1
        else:
            self._voiced_run = 0
        seconds = len(self._frames) * FRAME_MS / 1000
        if self._speech_start is None:
            timeout = settings.start_timeout_seconds
            if timeout is not None and seconds >= timeout:
                self.result = self._utterance(EndReason.NO_SPEECH, trim=False)
        elif self._last_voiced is not None:
            silent = (index - self._last_voiced) * FRAME_MS / 1000
            if silent >= settings.silence_seconds:
                self.result = self._utterance(EndReason.SILENCE, trim=True)
            elif (
                settings.speculate_seconds is not None
                and silent >= max(settings.speculate_seconds, _TAIL_FRAMES * FRAME_MS / 1000)
                and self._offered != self._last_voiced
            ):
                self._offered = self._last_voiced
                self.tentative = self._utterance(EndReason.SILENCE, trim=True)
        if self.result is None and self._speech_seconds() >= settings.max_seconds:
            self.result = self._utterance(EndReason.MAX_LENGTH, trim=False)
        return self.result is not None

    def _speech_seconds(self) -> float:
        start = self._speech_start if self._speech_start is not None else len(self._frames)
        return (len(self._frames) - max(0, start - _PRE_ROLL_FRAMES)) * FRAME_MS / 1000

    def _utterance(self, reason: EndReason, *, trim: bool) -> Utterance:
        had_speech = self._speech_start is not None
        if not had_speech:
            return Utterance(b"", reason, False, self._consumed)
        first = max(0, self._speech_start - _PRE_ROLL_FRAMES)  # type: ignore[operator]
        last = len(self._frames)
        if trim and self._last_voiced is not None:
            last = min(last, self._last_voiced + 1 + _TAIL_FRAMES)
        voiced = self._voiced_frames * FRAME_MS / 1000
        return Utterance(b"".join(self._frames[first:last]), reason, True, self._consumed, voiced)
