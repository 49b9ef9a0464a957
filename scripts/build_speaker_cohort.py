"""Build Kiwi's background cohort for speaker identification (reproducibly, offline).

    .venv-addon/bin/python scripts/build_speaker_cohort.py [--out PATH] [--weights pretrained.pt]

writes `wyoming_services/kiwi_voice/speaker/data/background_cohort.npz`: one embedding per
background voice (the normalised mean over four sentences that no test uses), the voice names,
and the encoder's probe embedding (see kiwi_voice/speaker/cohort.py).

The voices are synthetic speakers Kiwi can make offline: every espeak-ng variant (en-us) and
five Debian festival voices (recordings of five real people). Voices of the evaluation set
(tests/support/voices.py) are left out, and so is every espeak variant within 0.95 cosine of one
of them (espeak variants that close are the same voice under another name), so the tests and
the bench measure voices the cohort has never heard. Clips are made with `sox -D` and cached
like the tests' clips, so the same system packages give the same file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "wyoming_services"))

from kiwi_voice.speaker.cohort import COHORT_PATH  # noqa: E402
from kiwi_voice.speaker.encoder import VoiceEncoder, bundled_weights  # noqa: E402
from tests.support.voices import (  # noqa: E402
    COHORT_SENTENCES,
    ENROLLED_VOICES,
    FESTIVAL_VOICES,
    NEVER_ENROLLED_VOICES,
    synthetic_voice,
    voice_clips,
    wav_samples,
)

SAME_VOICE = 0.95  # espeak variants closer than this to an evaluation voice are that voice
EVALUATION = (*ENROLLED_VOICES, *NEVER_ENROLLED_VOICES)


def espeak_variants() -> list[str]:
    listing = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    header, *lines = listing.splitlines()
    start, end = header.index("File"), header.index("Other Languages")
    files = [line[start:end].strip() for line in lines if line.strip()]
    # The file column is `!v/<name>`; names with a space cannot be given as `voice+variant`.
    return sorted(f"espeak:en-us+{f.removeprefix('!v/')}" for f in files if " " not in f)


def _embedding(encoder: VoiceEncoder, path: Path) -> np.ndarray:
    samples = np.frombuffer(wav_samples(path), dtype="<i2").astype(np.float32) / 32768
    return encoder.embed(samples).embedding


def voice_embedding(encoder: VoiceEncoder, name: str, sentences: tuple[str, ...]) -> np.ndarray:
    """The normalised mean embedding of `name` saying `sentences`."""
    mean = np.mean([_embedding(encoder, synthetic_voice(name, s)) for s in sentences], axis=0)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


def evaluation_embeddings(encoder: VoiceEncoder) -> np.ndarray:
    rows = []
    for name in EVALUATION:
        clips = voice_clips(name)
        mean = np.mean([_embedding(encoder, p) for p in (*clips.enrol, *clips.test)], axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows)


def background_voices(encoder: VoiceEncoder) -> list[str]:
    evaluation = evaluation_embeddings(encoder)
    festival = [f"festival:{v}" for v in FESTIVAL_VOICES if f"festival:{v}" not in EVALUATION]
    espeak = []
    for name in espeak_variants():
        if name in EVALUATION:
            continue
        closest = float(np.max(evaluation @ voice_embedding(encoder, name, COHORT_SENTENCES)))
        if closest < SAME_VOICE:
            espeak.append(name)
    return festival + espeak


def build(weights: Path, out: Path) -> int:
    encoder = VoiceEncoder(weights)
    probe = encoder.warm_up()
    voices = background_voices(encoder)
    embeddings = np.stack([voice_embedding(encoder, name, COHORT_SENTENCES) for name in voices])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_suffix(".tmp.npz")
    np.savez(staging, embeddings=embeddings, voices=np.array(voices), probe=probe)
    staging.replace(out)
    return len(voices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=COHORT_PATH)
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    weights = args.weights or REPO_ROOT / "models" / "resemblyzer" / "pretrained.pt"
    if not weights.is_file():
        weights = bundled_weights()
    if weights is None:
        parser.error("no pretrained.pt: pass --weights")
    count = build(weights, args.out)
    print(f"{args.out}: {count} background voices")


if __name__ == "__main__":
    main()
