"""Real speech for tests, made offline: espeak-ng clips and the pocketsphinx human recordings.

Clips are 16 kHz mono signed 16-bit WAV files, cached by a hash of what makes them, and
byte-identical on every run (`sox -D` turns dither off). See /work/shared/TESTDATA.md for
what the engines make of them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import wave
from pathlib import Path

from tests.support.cache import cached_file

SAMPLE_RATE = 16000
PAD_SECONDS = 1.0
POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")
# Bump when the way clips are made changes, so cached clips are made again.
_RECIPE = "espeak-ng|sox -D|16000 Hz mono s16|pad 1 1|v1"


def _to_kiwi_format(source: Path, target: Path, *, raw_input: bool = False) -> None:
    """Convert to 16 kHz mono s16 WAV with sox; no dither, so the bytes are reproducible."""
    source_format = ["-t", "raw", "-r", "16000", "-e", "signed-integer", "-b", "16", "-c", "1"]
    command = ["sox", "-D", *(source_format if raw_input else []), str(source)]
    command += ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer"]
    command += ["-t", "wav", str(target)]
    if not raw_input:
        command += ["pad", str(PAD_SECONDS), str(PAD_SECONDS)]
    subprocess.run(command, check=True, capture_output=True)


def espeak_wav(
    text: str, voice: str = "en-us+m3", speed: int = 150, pitch: int | None = None
) -> Path:
    """espeak-ng saying `text`, as a 16 kHz mono s16 WAV with 1 s of silence at both ends.

    `voice` is an espeak-ng voice with an optional variant (`en-us+f2`); variants sound like
    different speakers to resemblyzer. `pitch` is espeak's -p (0-99, default 50).
    """
    recipe: list[object] = [_RECIPE, text, voice, speed]
    if pitch is not None:  # keys of clips made without a pitch stay as they were
        recipe.append(pitch)
    key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:20]
    pitch_args = ["-p", str(pitch)] if pitch is not None else []

    def synthesize(target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="espeak.") as work_dir:
            spoken = Path(work_dir) / "espeak.wav"
            # A WAV written to a file, not a pipe: a piped header carries a bogus length.
            command = ["espeak-ng", "-v", voice, "-s", str(speed), *pitch_args]
            subprocess.run(
                [*command, "-w", str(spoken), "--stdin"],
                input=text.encode(),
                check=True,
                capture_output=True,
            )
            _to_kiwi_format(spoken, target)

    return cached_file(f"speech/{key}.wav", synthesize)


def wav_pcm(path: Path) -> bytes:
    """The raw PCM frames of a WAV file (what Wyoming `audio-chunk` events carry)."""
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes())


def espeak_pcm(text: str, voice: str = "en-us+m3", speed: int = 150) -> bytes:
    """`wav_pcm(espeak_wav(...))`: 16 kHz mono s16 PCM of espeak-ng saying `text`."""
    return wav_pcm(espeak_wav(text, voice, speed))


def human_speech_clips() -> dict[str, list[Path]]:
    """Real human recordings from Debian's pocketsphinx-testdata (BSD-2), grouped by speaker.

    `librivox` (one reader, 5 clips), `cards` (another speaker, 5 clips) and `raw` (four
    headerless recordings, likely a third speaker, converted to WAV and cached). All 16 kHz mono.
    """
    if not POCKETSPHINX_DATA.is_dir():
        raise FileNotFoundError(f"{POCKETSPHINX_DATA} missing: install pocketsphinx-testdata")
    raw_sources = sorted(POCKETSPHINX_DATA.rglob("*.raw"))

    def converted(source: Path) -> Path:
        def convert(target: Path) -> None:
            _to_kiwi_format(source, target, raw_input=True)

        return cached_file(f"speech/pocketsphinx-{source.stem}.wav", convert)

    return {
        "librivox": sorted((POCKETSPHINX_DATA / "librivox").glob("*.wav")),
        "cards": sorted((POCKETSPHINX_DATA / "cards").glob("*.wav")),
        "raw": [converted(source) for source in raw_sources],
    }
