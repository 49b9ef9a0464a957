"""Distinct real voices for speaker identification, made offline and cached.

Four sources (see /work/shared/TESTDATA.md):
- espeak-ng variants (`espeak:en-us+m3`): formant synthesis, one synthesiser, many settings;
- Debian festival voices (`festival:kal_diphone`): recordings of real people (diphone and HTS
  voices), English text read with each voice's own language rules;
- piper's `en_US-joe-medium` (`piper:joe`): a neural voice trained on one real speaker;
- pocketsphinx-testdata's human readers (`human:librivox`, `human:cards`).

Synthetic clips are 16 kHz mono s16 WAVs converted by `sox -D` (no dither) and cached by what
makes them; espeak and festival are deterministic, and piper is made so by turning its noise off.
The enrolment and test sentences are different sentences. `scripts/build_speaker_cohort.py`
uses other voices of the same synthesisers (`cohort_voices`) to build Kiwi's background cohort:
no voice of the evaluation set is in it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.support.cache import cached_file
from tests.support.real_models import joe_voice_path
from tests.support.speech import _to_kiwi_format, espeak_wav, human_speech_clips

ENROL_SENTENCES = (
    "Hello Kiwi, this is my voice, and I would like you to learn how I sound.",
    "Yesterday we walked along the river and watched the boats drift slowly by.",
    "Please remember that my favourite colour is green and I love fresh bread.",
)
TEST_SENTENCES = (
    "Turn on the kitchen lights and set the thermostat to twenty one degrees.",
    "What is the weather going to be like tomorrow morning in the city?",
    "Could you play some quiet music in the living room while I read?",
    "Remind me to call my sister after dinner on Sunday evening.",
    "How long does it take to drive from here to the airport today?",
    "Lock the front door and switch off every light on the ground floor.",
)
# Sentences for the background cohort only (scripts/build_speaker_cohort.py).
COHORT_SENTENCES = (
    "The museum opens at nine and closes late on the first Friday of the month.",
    "She packed two sandwiches, an apple and a flask of tea for the long journey.",
    "Our neighbours planted tomatoes, beans and sunflowers along the garden fence.",
    "If the train is late again, we will take a taxi straight to the concert hall.",
)
# The evaluation set of tests/addon/test_speaker_open_set.py and bench/bench_speaker.py.
# espeak variants are from different identity groups (no two closer than 0.95 cosine);
# the background cohort holds none of these voices nor any voice that close to them.
ENROLLED_VOICES = (
    "espeak:en-us+m3",
    "espeak:en-us+m7",
    "espeak:en-us+f2",
    "espeak:en-us+f4",
    "espeak:en-us+klatt",
    "espeak:en-us+Andy",
    "festival:kal_diphone",
    "festival:cmu_us_slt_arctic_hts",
    "festival:czech_ph",
    "festival:lp_diphone",
    "piper:joe",
    "human:librivox",
    "human:raw",
)
NEVER_ENROLLED_VOICES = (
    "espeak:en-us+m2",
    "espeak:en-us+linda",
    "espeak:en-us+Annie",
    "espeak:en-us+benjamin",
    "espeak:en-us+Denis",
    "festival:ked_diphone",
    "festival:suo_fi_lj_diphone",
    "festival:czech_dita",
    "human:cards",
)
FESTIVAL_VOICES = (
    "kal_diphone",
    "ked_diphone",
    "cmu_us_slt_arctic_hts",
    "upc_ca_ona_hts",
    "czech_dita",
    "czech_krb",
    "czech_machac",
    "czech_ph",
    "hy_fi_mv_diphone",
    "suo_fi_lj_diphone",
    "lp_diphone",
    "pc_diphone",
)
_FESTIVAL_RECIPE = "festival text2wave|sox -D|16000 Hz mono s16|pad 1 1|v1"
_PIPER_RECIPE = "piper joe medium|noise 0|sox -D|16000 Hz mono s16|pad 1 1|v1"


@dataclass(frozen=True)
class VoiceClips:
    """One voice: the clips it enrols with and the (different) clips it is tested with."""

    name: str
    enrol: tuple[Path, ...]
    test: tuple[Path, ...]


def festival_wav(text: str, voice: str) -> Path:
    """festival's `voice` saying `text`, as a 16 kHz mono s16 WAV with 1 s of silence around."""
    key = hashlib.sha256(json.dumps([_FESTIVAL_RECIPE, text, voice]).encode()).hexdigest()[:20]

    def synthesize(target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="festival.") as work_dir:
            spoken = Path(work_dir) / "festival.wav"
            subprocess.run(
                ["text2wave", "-eval", f"(voice_{voice})", "-o", str(spoken)],
                input=text.encode(),
                check=True,
                capture_output=True,
                timeout=120,
            )
            _to_kiwi_format(spoken, target)

    return cached_file(f"speech/festival-{key}.wav", synthesize)


def joe_model() -> Path:
    """piper's en_US-joe-medium from Kiwi's model pack (`make setup` installs it)."""
    return joe_voice_path()


@cache
def _joe_voice() -> object:
    from piper import PiperVoice

    return PiperVoice.load(joe_model())


def joe_wav(text: str) -> Path:
    """piper joe saying `text` (noise scales 0: the same bytes every run)."""
    key = hashlib.sha256(json.dumps([_PIPER_RECIPE, text]).encode()).hexdigest()[:20]

    def synthesize(target: Path) -> None:
        from piper import SynthesisConfig

        config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        with tempfile.TemporaryDirectory(prefix="piper.") as work_dir:
            spoken = Path(work_dir) / "piper.wav"
            with wave.open(str(spoken), "wb") as wav:
                _joe_voice().synthesize_wav(text, wav, syn_config=config)  # type: ignore[attr-defined]
            _to_kiwi_format(spoken, target)

    return cached_file(f"speech/piper-joe-{key}.wav", synthesize)


def synthetic_voice(name: str, text: str) -> Path:
    """A clip of `name` (`espeak:<voice>`, `festival:<voice>` or `piper:joe`) saying `text`."""
    source, _, voice = name.partition(":")
    if source == "espeak":
        return espeak_wav(text, voice=voice)
    if source == "festival":
        return festival_wav(text, voice)
    if source == "piper" and voice == "joe":
        return joe_wav(text)
    raise ValueError(f"unknown voice {name!r}")


def voice_clips(name: str) -> VoiceClips:
    """Enrolment and test clips of one voice; humans use their own recordings."""
    if name.startswith("human:"):
        group = human_speech_clips()[name.removeprefix("human:")]
        # The longest three enrol; the rest test (different recordings, different sentences).
        by_length = sorted(group, key=lambda p: (-p.stat().st_size, p.name))
        return VoiceClips(name, tuple(by_length[:3]), tuple(sorted(by_length[3:])))
    return VoiceClips(
        name,
        tuple(synthetic_voice(name, text) for text in ENROL_SENTENCES),
        tuple(synthetic_voice(name, text) for text in TEST_SENTENCES),
    )


def wav_samples(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (16000, 2, 1)
        return wav.readframes(wav.getnframes())
