"""What the real-speech tier (tests/ha/real_speech) and bench/bench_e2e.py share: clips of real
voices, Kiwi's services on the real models, a Wyoming client for them, and word error rate.

- `joe_clips(texts)`: piper's en_US-joe-medium saying each text (deterministic, cached). piper is
  an add-on env library, so from the HA env the clips are made by the add-on env's Python.
- `real_service_starters(log_dir)`: kiwi-stt (Whisper base), kiwi-tts (joe), kiwi-wake
  (hey_jarvis) and kiwi-speaker on the models `make setup` installed (tests/support/real_models).
- `transcribe(uri, pcm)` / `synthesize(uri, text)`: one Wyoming request each.
- `normalize(text)` and `wer(reference, hypothesis)`: numbers as words, British spellings as
  American, no punctuation or case, then the word-level edit distance over the reference length.

Standard library, aiohttp-free and wyoming only, so both test environments use it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import struct
import subprocess
import sys
import wave
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from tests.support import real_models
from tests.support.cache import REPO_ROOT
from tests.support.hub_process import start_speaker_service
from tests.support.pipeline_stack import WAKE_WORD, hub_env
from tests.support.speech import POCKETSPHINX_DATA
from tests.support.wyoming_process import ServiceProcess, start_service

REQUEST_TIMEOUT_S = 400.0  # a 28 s batch on two cores shared with other jobs is slow
START_TIMEOUT_S = 240.0  # four services loading real models at once on two busy cores
ADDON_PYTHON = REPO_ROOT / ".venv-addon" / "bin" / "python"


def real_service_starters(log_dir: Path) -> dict[str, Callable[[], ServiceProcess]]:
    """How to start each Wyoming service on Kiwi's default real models."""
    stt_args = ["--model", real_models.WHISPER_MODEL, "--data-dir", str(real_models.whisper_dir())]
    tts_args = ["--voice", real_models.PIPER_VOICE, "--data-dir", str(real_models.piper_dir())]
    wake_args = ["--data-dir", str(real_models.openwakeword_dir()), "--no-download"]
    wake_args += ["--wake-word", WAKE_WORD]
    wait = START_TIMEOUT_S
    return {
        "stt": lambda: start_service(
            "kiwi-stt", stt_args, log_dir / "kiwi-stt.log", timeout_s=wait
        ),
        "tts": lambda: start_service(
            "kiwi-tts", tts_args, log_dir / "kiwi-tts.log", timeout_s=wait
        ),
        "wake": lambda: start_service(
            "kiwi-wake", wake_args, log_dir / "kiwi-wake.log", timeout_s=wait
        ),
        "speaker": lambda: start_speaker_service(log_dir / "speaker-data", log_dir),
    }


def real_hub_env(services: Mapping[str, ServiceProcess], **extra: str) -> dict[str, str]:
    """`hub_env` in front of the tier's real services (its voices are not enrolled)."""
    return hub_env(services["stt"].uri, services["wake"].uri, **extra)


# ---- clips ------------------------------------------------------------------------------------


def joe_clips(texts: Sequence[str]) -> list[Path]:
    """piper joe saying each of `texts` (16 kHz mono s16 WAVs with 1 s of silence around)."""
    try:
        import piper  # noqa: F401 (only to know which environment this is)
    except ImportError:
        script = (
            "import json, sys; from tests.support.voices import joe_wav; "
            "print(json.dumps([str(joe_wav(t)) for t in json.loads(sys.argv[1])]))"
        )
        done = subprocess.run(
            [str(ADDON_PYTHON), "-c", script, json.dumps(list(texts))],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        return [Path(p) for p in json.loads(done.stdout.splitlines()[-1])]
    from tests.support.voices import joe_wav

    return [joe_wav(text) for text in texts]


def librivox_clips() -> list[tuple[Path, str]]:
    """The human reader's clips of pocketsphinx-testdata with their reference transcripts."""
    folder = POCKETSPHINX_DATA / "librivox"
    references = {}
    for line in (folder / "transcription").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"<s>(.*)</s> \((.*)\)", line.strip())
        if match:
            references[match.group(2)] = match.group(1).strip()
    return [(folder / f"{name}.wav", text) for name, text in sorted(references.items())]


# ---- Wyoming requests -------------------------------------------------------------------------


async def transcribe(uri: str, pcm: bytes, rate: int = 16_000, language: str = "en") -> str:
    """kiwi-stt's transcript of `pcm` (mono s16 at `rate`)."""
    host, port = _host_port(uri)
    async with asyncio.timeout(REQUEST_TIMEOUT_S), AsyncTcpClient(host, port) as client:
        await client.write_event(Transcribe(language=language).event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        for offset in range(0, len(pcm), 3200):
            chunk = AudioChunk(rate=rate, width=2, channels=1, audio=pcm[offset : offset + 3200])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        while True:
            event = await client.read_event()
            assert event is not None, "kiwi-stt closed the connection"
            assert event.type != "error", event.data
            if Transcript.is_type(event.type):
                return str(Transcript.from_event(event).text)


async def synthesize(uri: str, text: str) -> tuple[bytes, int]:
    """kiwi-tts speaking `text`: (mono s16 PCM, its rate)."""
    host, port = _host_port(uri)
    audio = bytearray()
    rate = 0
    async with asyncio.timeout(REQUEST_TIMEOUT_S), AsyncTcpClient(host, port) as client:
        await client.write_event(Synthesize(text=text).event())
        while True:
            event = await client.read_event()
            assert event is not None, "kiwi-tts closed the connection"
            assert event.type != "error", event.data
            if AudioStart.is_type(event.type):
                rate = AudioStart.from_event(event).rate
            elif AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                assert (chunk.width, chunk.channels) == (2, 1)
                audio += chunk.audio
            elif AudioStop.is_type(event.type):
                return bytes(audio), rate


def write_wav(path: Path, pcm: bytes, rate: int = 16_000) -> Path:
    """`pcm` (mono s16) as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return path


def batches(
    clips: Sequence[tuple[bytes, str]], max_seconds: float = 28.0
) -> list[tuple[bytes, str]]:
    """Clips (16 kHz mono s16, reference) joined into requests of at most `max_seconds`.

    Whisper encodes a 30 s window whatever the audio's length, so five 4 s clips in one request
    cost about a fifth of five requests; each batch's reference is its clips' in order."""
    joined: list[tuple[bytes, str]] = []
    pcm, texts = b"", []
    for clip, text in clips:
        if pcm and (len(pcm) + len(clip)) / 32_000 > max_seconds:
            joined.append((pcm, " ".join(texts)))
            pcm, texts = b"", []
        pcm, texts = pcm + clip, [*texts, text]
    if pcm:
        joined.append((pcm, " ".join(texts)))
    return joined


def _host_port(uri: str) -> tuple[str, int]:
    host, _, port = uri.removeprefix("tcp://").rpartition(":")
    return host, int(port)


def rms(pcm: bytes) -> float:
    """Root mean square of s16 samples, 0..32768."""
    count = len(pcm) // 2
    if not count:
        return 0.0
    samples = struct.unpack(f"<{count}h", pcm[: 2 * count])
    return math.sqrt(sum(s * s for s in samples) / count)


# ---- word error rate --------------------------------------------------------------------------

_ONES = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# British spellings (the test sentences', the readers') as Whisper's American ones.
_SPELLING = {
    "colour": "color",
    "favourite": "favorite",
    "neighbours": "neighbors",
    "neighbour": "neighbor",
    "mr": "mister",
    "mrs": "missus",
    "ok": "okay",
}


def number_words(number: int) -> str:
    """English words for a number ("21" -> "twenty one"); a million and more digit by digit."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if number < 1_000_000:
        thousands, rest = divmod(number, 1000)
        head = number_words(thousands) + " thousand"
        return head + ("" if rest == 0 else " " + number_words(rest))
    return " ".join(_ONES[int(d)] for d in str(number))


def normalize(text: str) -> list[str]:
    """Words to compare: lower case, digits spelled out, hyphens split, no punctuation."""
    text = text.lower().replace("-", " ").replace("\u2019", "'")
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text)
    words = re.sub(r"[^a-z' ]+", " ", text).replace("'", "").split()
    return [_SPELLING.get(word, word) for word in words]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words) after `normalize`: substitutions + deletions + insertions."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1], len(ref)


def wer(pairs: Sequence[tuple[str, str]]) -> float:
    """Word error rate over (reference, hypothesis) pairs: all edits over all reference words."""
    edits = words = 0
    for reference, hypothesis in pairs:
        e, n = word_errors(reference, hypothesis)
        edits, words = edits + e, words + n
    return edits / max(words, 1)


if __name__ == "__main__":  # `python -m tests.support.real_speech TEXT...`: make joe clips
    print("\n".join(str(p) for p in joe_clips(sys.argv[1:])))
