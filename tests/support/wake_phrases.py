"""Spoken wake phrases and look-alikes for hey_jarvis, made offline (cached like every clip).

Positives: "hey jarvis" by piper's joe (two readings) and by eight espeak-ng voices at three
speeds: 26 clips. Look-alikes: eight "hey <name>" phrases that share sounds with "hey jarvis",
each by joe and the eight espeak-ng voices: 72 clips. Used by tests/addon/test_wake_look_alikes.py
and bench/bench_wake.py, so the test and the published figures count the same clips.
"""

from __future__ import annotations

from tests.support.speech import espeak_pcm, wav_pcm
from tests.support.voices import joe_wav

ESPEAK_VOICES = (
    "en-us+m3",
    "en-us+f2",
    "en-us+m7",
    "en-us+f4",
    "en+m1",
    "en-gb-x-rp+f3",
    "en-us+klatt",
    "en-gb-scotland+m2",
)
SPEEDS = (120, 150, 180)
LOOK_ALIKE_PHRASES = (
    "hey jasmine",
    "hey travis",
    "hey marvin",
    "hey charles",
    "hey darkness",
    "hey harvest",
    "hey garbage",
    "hey service",
)


def positives() -> list[tuple[str, bytes]]:
    """(label, 16 kHz mono s16 PCM) of "hey jarvis", 26 ways."""
    clips = [
        ("joe: Hey Jarvis.", wav_pcm(joe_wav("Hey Jarvis."))),
        ("joe: Hey, Jarvis!", wav_pcm(joe_wav("Hey, Jarvis!"))),
    ]
    for voice in ESPEAK_VOICES:
        for speed in SPEEDS:
            clips.append((f"espeak {voice} @{speed}", espeak_pcm("hey jarvis", voice, speed)))
    return clips


def look_alikes() -> list[tuple[str, bytes]]:
    """(label, PCM) of phrases that are not "hey jarvis" but sound close: 72 clips."""
    clips = []
    for phrase in LOOK_ALIKE_PHRASES:
        clips.append((f"joe: {phrase}", wav_pcm(joe_wav(phrase.capitalize() + "."))))
        for voice in ESPEAK_VOICES:
            clips.append((f"espeak {voice}: {phrase}", espeak_pcm(phrase, voice, 150)))
    return clips
