"""Ending at the pause (`vad_end_on_sentence`): how often it would cut a speaker off.

The hub's own Endpointer (webrtcvad, 30 ms frames, early STT 0.25 s into a pause) runs on
real speech and kiwi-stt's engine (Whisper base, int8, fitted window) transcribes each pause's
utterance so far, in process; the listener's rule decides: a pause that lasted
EARLY_END_SILENCE_SECONDS (0.5 s) ends the utterance when its transcript is a whole sentence
with at least EARLY_END_MIN_VOICED_SECONDS of speech. Sets, each with pauses of 0.4 s (a
hesitation shorter than the rule's pause) and 0.6 s (longer):

- `hesitations_*`: a whole sentence with the pause put into it at its quietest point between a
  third and two thirds of the way (the voice goes on as before the pause), six sentences in
  three espeak-ng voices: an early end there cuts the speaker off;
- `fragment_pauses_*`: the same sentences split mid-way and said as two parts with the pause
  between ("Turn on the kitchen lights" … "and set the thermostat to twenty one degrees."):
  each part ends as a sentence ends, so this is the worst case;
- `real_clips`: the STT benchmark's 28 clips and the four raw human recordings of
  pocketsphinx-testdata, each followed by 1 s of silence: an early end at a pause that is not
  the last is a cut;
- `sentence_pauses`: two whole sentences with 0.6 s between: an early end after the first is
  the designed behaviour (the speaker is answered after the first sentence), counted as such.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from bench.speech_corpus import stt_clips
from tests.support import real_models
from tests.support.speech import espeak_wav, human_speech_clips
from tests.support.voices import TEST_SENTENCES

RATE = 16_000
FRAME_BYTES = 960
PAUSES_S = (0.4, 0.6)  # a hesitation shorter than EARLY_END_SILENCE_SECONDS, and a longer one
VOICES = ("en-us+m3", "en-us+f2", "en-gb-x-rp+m2")
VOICED = 300  # a sample louder than this is speech (espeak pads its clips with zeros)


def _pcm(path: Path) -> bytes:
    with wave.open(str(path)) as clip:
        return clip.readframes(clip.getnframes())


def _words_only(pcm: bytes) -> bytes:
    """The clip without the silence espeak-ng puts around it."""
    samples = np.frombuffer(pcm, np.int16)
    loud = np.flatnonzero(np.abs(samples) > VOICED)
    return samples[loud[0] : loud[-1] + 1].tobytes()


def _said(text: str, voice: str) -> bytes:
    return _words_only(_pcm(espeak_wav(text, voice=voice)))


def _hesitating(pcm: bytes, pause_s: float) -> bytes:
    """`pcm` with `pause_s` of silence at its quietest 30 ms in the middle third."""
    samples = np.frombuffer(pcm, np.int16).astype(np.float64)
    frames = len(samples) // 480
    energy = [float(np.mean(samples[i * 480 : (i + 1) * 480] ** 2)) for i in range(frames)]
    middle = range(frames // 3, 2 * frames // 3)
    cut = 2 * 480 * min(middle, key=energy.__getitem__)
    return _with_pause(pcm[:cut], pcm[cut:], pause_s)


def _with_pause(first: bytes, second: bytes, pause_s: float) -> bytes:
    silence = bytes(2 * int(pause_s * RATE))
    return silence + first + silence + second + bytes(2 * RATE)


class _Judge:
    """The listener's rule on each pause of an utterance, with Whisper in process."""

    def __init__(self) -> None:
        from kiwi_voice.common.model_store import ModelStore
        from kiwi_voice.stt.engine import WhisperEngine, WhisperSettings

        settings = WhisperSettings(
            model=real_models.WHISPER_MODEL,
            language="en",
            beam_size=1,
            device="cpu",
            compute_type="int8",
            cpu_threads=0,
            initial_prompt=None,
            vad_filter=False,
            workers=1,
        )
        store = ModelStore([real_models.whisper_dir()], real_models.whisper_dir())
        self._engine = WhisperEngine(settings, store)
        self._engine.load()

    def _text(self, pcm: bytes) -> str:
        from kiwi_voice.stt.engine import Segment

        audio = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
        parts = self._engine.transcribe(audio, "en")
        return "".join(p.text for p in parts if isinstance(p, Segment)).strip()

    def early_ends(self, pcm: bytes) -> list[str]:
        """The transcripts at which the utterance would have ended before its last pause."""
        from kiwi_voice.hub.pipeline.listener import (
            EARLY_END_SILENCE_SECONDS,
            EARLY_STT_SILENCE_SECONDS,
            ends_at_pause,
        )
        from kiwi_voice.hub.pipeline.stt import Transcript
        from kiwi_voice.hub.pipeline.vad import Endpointer, EndpointSettings

        endpointer = Endpointer(
            EndpointSettings(
                silence_seconds=0.8,
                speculate_seconds=EARLY_STT_SILENCE_SECONDS,
                start_timeout_seconds=None,
            )
        )
        long_pauses = []  # tentative cuts whose pause reached EARLY_END_SILENCE_SECONDS
        current = None
        for offset in range(0, len(pcm), FRAME_BYTES):
            ended = endpointer.add(pcm[offset : offset + FRAME_BYTES])
            if endpointer.tentative is not None:
                current, endpointer.tentative = endpointer.tentative, None
            if (
                current is not None
                and endpointer.paused_since_tentative
                and endpointer.silence_seconds >= EARLY_END_SILENCE_SECONDS
            ):
                long_pauses.append(current)
                current = None
            if ended is not None:
                break
        final = endpointer.result or endpointer.finish()
        cuts = []
        for pause in long_pauses:
            if pause.pcm == final.pcm:
                continue
            if ends_at_pause(Transcript(text := self._text(pause.pcm), "en"), pause):
                cuts.append(text)
        return cuts


def _split(sentence: str) -> tuple[str, str]:
    words = sentence.split()
    middle = len(words) // 2
    return " ".join(words[:middle]), " ".join(words[middle:])


def run(results: dict[str, Any]) -> None:
    judge = _Judge()
    section: dict[str, Any] = {"notes": []}
    results["endpoint"] = section

    examples = []
    for pause_s in PAUSES_S:
        hesitations = hesitation_cut = fragments = cut = 0
        for voice in VOICES:
            for sentence in TEST_SENTENCES:
                hesitations += 1
                if found := judge.early_ends(_hesitating(_said(sentence, voice), pause_s)):
                    hesitation_cut += 1
                    examples.append(f"{voice} hesitating {pause_s} s: {found[0]!r}")
                first, second = _split(sentence)
                fragments += 1
                said = _with_pause(_said(first, voice), _said(second, voice), pause_s)
                if found := judge.early_ends(said):
                    cut += 1
                    examples.append(f"{voice} {pause_s} s after {first!r}: {found[0]!r}")
        section[f"hesitations_{pause_s}s"] = {"utterances": hesitations, "cut_off": hesitation_cut}
        section[f"fragment_pauses_{pause_s}s"] = {"utterances": fragments, "cut_off": cut}

    clips = [c.path for c in stt_clips()] + human_speech_clips()["raw"]
    real_cut = []
    for path in clips:
        if found := judge.early_ends(_pcm(path) + bytes(2 * RATE)):
            real_cut.append(f"{path.name}: {found[0]!r}")
    section["real_clips"] = {"utterances": len(clips), "cut_off": len(real_cut)}

    pairs = answered_early = 0
    for voice in VOICES:
        for index in range(0, len(TEST_SENTENCES), 2):
            pairs += 1
            first = _said(TEST_SENTENCES[index], voice)
            second = _said(TEST_SENTENCES[index + 1], voice)
            answered_early += bool(judge.early_ends(_with_pause(first, second, max(PAUSES_S))))
    section["sentence_pauses"] = {"utterances": pairs, "ended_after_first": answered_early}

    section["notes"].append(
        "Whisper base int8 fitted window; the listener's rule on each pause that lasted "
        "EARLY_END_SILENCE_SECONDS (0.5 s): a whole sentence and enough speech; sentence_pauses "
        f"with {max(PAUSES_S)} s between the sentences"
    )
    if examples or real_cut:
        section["notes"].append("cut off: " + "; ".join([*examples, *real_cut][:8]))
