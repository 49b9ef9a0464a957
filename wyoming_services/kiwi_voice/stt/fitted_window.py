"""Whisper's encoder run on the utterance, not on a 30 s window that is mostly padding.

faster-whisper pads every window to Whisper's 30 s; on a CPU that encoder pass is most of a short
command's transcription time (about 1.2 s of Whisper base's 1.4 s on two cores, for 2 s of
speech). The encoder itself takes any length, so a `FittedWindowWhisper` encodes only the
audio the window holds. Whisper never saw a window end mid-way in training, and cut there it
does not know it heard everything: it may say the sentence again, placed past the end of the
audio. So the utterance gets `SILENCE_PAD_SECONDS` of real silence after it (Whisper has
learnt that silence ends speech) and `LEAD_SILENCE_SECONDS` before it (without it, a command
cut 0.3 s before its first word, as the hub cuts them, lost its first sound: "Purn on the
kitchen light"), and segments after the first that lie in the silence after the speech or
past the window are dropped (`spoken_segments`). Measured on the benchmark's 28 real clips
and two commands cut as the hub cuts them: 3.33 % WER against 3.94 % for the full window, in
under a third of the time (bench/RESULTS.md, `speech`, has the service-level figures).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 30.0  # Whisper's window; a longer utterance is transcribed window by window
# Silence after the speech: with 1 s Whisper repeated the sentence on 1 clip in 4; from 2 s on
# the transcripts were the full window's.
SILENCE_PAD_SECONDS = 3.0
LEAD_SILENCE_SECONDS = 1.0
# Tokens a window may produce per second of audio: above any speaking rate with timestamps,
# short enough that a decoder repeating itself stops soon.
TOKENS_PER_SECOND = 10
MIN_NEW_TOKENS = 8
MAX_NEW_TOKENS = 440  # Whisper's 448 less the prompt
# A later segment over audio this much quieter than the whole utterance is over silence.
QUIET_FRACTION = 0.1


def fits(seconds: float) -> bool:
    """Whether an utterance this long, with its silence, fits one window."""
    return LEAD_SILENCE_SECONDS + seconds + SILENCE_PAD_SECONDS <= WINDOW_SECONDS


def with_silence(audio: np.ndarray) -> np.ndarray:
    lead = np.zeros(int(LEAD_SILENCE_SECONDS * SAMPLE_RATE), audio.dtype)
    tail = np.zeros(int(SILENCE_PAD_SECONDS * SAMPLE_RATE), audio.dtype)
    return np.concatenate([lead, audio, tail])


def max_new_tokens(seconds: float) -> int:
    return min(MAX_NEW_TOKENS, MIN_NEW_TOKENS + int(TOKENS_PER_SECOND * seconds))


def spoken_segments(
    segments: Iterable[Segment], audio: np.ndarray
) -> Iterator[tuple[str, float, float]]:
    """(text, start, end) of the segments Whisper made of `audio` (16 kHz) after it went
    through `with_silence`, times in the utterance's own clock. The first segment is what
    Whisper heard (its end time may lie anywhere in the window). A later one is a repetition
    when it starts in the silence after the speech or ends past the window, and a hallucination
    ("you") when the stretch it covers is nearly silent: the utterance fitted one window, so a
    later segment can only come from faster-whisper decoding the window's rest again."""
    seconds = len(audio) / SAMPLE_RATE
    speech_end = LEAD_SILENCE_SECONDS + seconds
    window_end = speech_end + SILENCE_PAD_SECONDS
    loudness = _rms(audio)
    for index, segment in enumerate(segments):
        start = max(0.0, segment.start - LEAD_SILENCE_SECONDS)
        end = min(seconds, max(start, segment.end - LEAD_SILENCE_SECONDS))
        if index and (
            segment.start >= speech_end
            or segment.end > window_end + 0.01
            or _rms(audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
            < QUIET_FRACTION * loudness
        ):
            continue
        yield segment.text, start, end


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


class FittedWindowWhisper(WhisperModel):
    """A WhisperModel whose encoder sees only the frames a window holds."""

    def encode(self, features: np.ndarray) -> Any:
        # faster-whisper pads each window's features with zero columns up to 3000 frames
        # (pad_or_trim); a real frame is never all zeros (log-mel is normalised around the
        # loudest frame), so the last non-zero column is where the window's audio ends.
        columns = np.any(features != 0, axis=-2).reshape(-1)
        heard = np.flatnonzero(columns)
        frames = int(heard[-1]) + 1 if heard.size else 2
        frames += frames % 2  # the encoder's stride-2 convolution
        return super().encode(features[..., :frames])
