"""Real speech with known words, for the speech and wake-word benchmarks, and how to score it.

Sources (all made offline, byte-identical every run; see /work/shared/TESTDATA.md):
- `joe`: piper's en_US-joe-medium saying the six test sentences (tests/support/voices.py);
- `espeak:<variant>`: six espeak-ng variants, two of the test sentences each;
- `librivox`, `cards`: the human recordings of pocketsphinx-testdata with their reference
  transcripts (`transcription` files beside them).

Word error rate is computed as the real-speech tests compute it (tests/support/real_speech.py),
after normalising both texts the same way: lower case, no
punctuation, hyphens and apostrophes dropped, numbers written as words ("21" -> "twenty one"),
British spellings and "mr" read as the reference writes them, since Whisper writes "21" and
"Mr." where the references say "twenty one" and "mister".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.real_speech import wer as fraction_wer
from tests.support.speech import POCKETSPHINX_DATA, espeak_wav, human_speech_clips
from tests.support.voices import TEST_SENTENCES, joe_wav

ESPEAK_VARIANTS = (
    "en-us+m3",
    "en-us+f2",
    "en-us+m7",
    "en-us+f4",
    "en-us+klatt",
    "en-gb-x-rp+m2",
)
SENTENCES_PER_VARIANT = 2


@dataclass(frozen=True)
class Clip:
    source: str  # joe, espeak, librivox, cards
    voice: str  # the espeak variant, or the source again
    path: Path
    reference: str


def wer(pairs: list[tuple[str, str]]) -> float:
    """Pooled word error rate of (reference, hypothesis) pairs, in percent (the tests' rule)."""
    return round(100 * fraction_wer(pairs), 2)


def _references(transcription: Path) -> dict[str, str]:
    """pocketsphinx's `<s> words </s> (clip-id)` lines, by clip id."""
    found = {}
    for line in transcription.read_text().splitlines():
        if match := re.match(r"\s*(.*?)\s*\(([^)]+)\)\s*$", line):
            words = match.group(1).replace("<s>", "").replace("</s>", "")
            found[match.group(2)] = " ".join(words.split())
    return found


def human_clips() -> list[Clip]:
    """The pocketsphinx human clips that have a reference transcript."""
    clips = human_speech_clips()
    references = {
        "librivox": _references(POCKETSPHINX_DATA / "librivox" / "transcription"),
        "cards": _references(POCKETSPHINX_DATA / "cards" / "cards.transcription"),
    }
    return [
        Clip(source, source, path, references[source][path.stem])
        for source in ("librivox", "cards")
        for path in clips[source]
    ]


def stt_clips() -> list[Clip]:
    """Every clip of the STT benchmark: joe, six espeak variants, the human clips."""
    clips = [Clip("joe", "joe", joe_wav(text), text) for text in TEST_SENTENCES]
    for index, variant in enumerate(ESPEAK_VARIANTS):
        for k in range(SENTENCES_PER_VARIANT):
            text = TEST_SENTENCES[(index + 2 * k) % len(TEST_SENTENCES)]
            clips.append(Clip("espeak", variant, espeak_wav(text, voice=variant), text))
    return clips + human_clips()
