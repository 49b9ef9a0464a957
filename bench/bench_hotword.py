"""Which wake word Kiwi should listen for by default, decided by figures (docs/wake-word.md).

Run it with `python -m bench hotword --update`; it writes the section `wakeword`. (The module's
name holds no "wake", so `python -m bench wake` runs only bench_wake, not this half hour.)

Three candidates, each run as Kiwi (or Home Assistant) would run it:
- `kiwi`, the text engine: the hub cuts speech into utterances with its own endpointer
  (kiwi_voice.hub.pipeline.vad, webrtcvad, 0.8 s of silence ends one), kiwi-stt transcribes each
  with Whisper base int8, and the word is matched in the transcript (`text_matches_wake_word`);
- `hey_jarvis`: openWakeWord's .onnx model in kiwi-wake (threshold 0.5, trigger level 1,
  refractory 2 s), over Wyoming;
- `okay_nabu`: only shipped as .tflite (pyopen-wakeword 1.1.0, what Home Assistant's openWakeWord
  add-on runs); kiwi-wake cannot run .tflite yet, so it runs on pyopen-wakeword itself in that
  package's own venv (bench/peers.py), scored with kiwi-wake's rules. hey_jarvis.tflite runs
  there too, as a check that both runtimes agree.

Figures:
- hits: the share of positive clips that wake it: 24 voices (20 espeak-ng variants, three
  festival voices, piper joe) each saying the wake phrase inside a sentence;
- false wakes: detections in one stream of at least 10 minutes of ordinary speech (sentences by
  the same voices, none with a wake phrase, and every pocketsphinx human clip), per hour;
- CPU seconds per hour of audio: the CPU time of the processes doing the work (kiwi-stt plus the
  endpointer for the text engine, kiwi-wake, the pyopen-wakeword process) over that stream.
  The stream is all speech, the text engine's worst case: over silence it only runs webrtcvad.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

from bench.peers import peer_python
from tests.support import real_models
from tests.support.speech import human_speech_clips
from tests.support.voices import synthetic_voice
from tests.support.wyoming_process import start_service

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work" / "hotword"
RATE = 16_000
CHUNK = 1280 * 2  # 80 ms of s16, what openWakeWord scores at a time
NEGATIVE_SECONDS = 620.0  # at least 10 minutes
THRESHOLD = 0.5
REFRACTORY_FRAMES = 25  # 2 s of 80 ms frames, kiwi-wake's default
VOICES = (
    *(
        f"espeak:en-us+{variant}"
        for variant in (
            [
                "m1",
                "m2",
                "m3",
                "m4",
                "m5",
                "m6",
                "m7",
                "f1",
                "f2",
                "f3",
                "f4",
                "f5",
                "klatt",
                "klatt2",
                "Andy",
                "Annie",
                "linda",
                "benjamin",
            ]
        )
    ),
    "espeak:en-gb-x-rp+m3",
    "espeak:en-gb+f2",
    "festival:kal_diphone",
    "festival:ked_diphone",
    "festival:cmu_us_slt_arctic_hts",
    "piper:joe",
)
# The wake phrase at the start and inside a sentence.
CARRIERS = (
    "{w}, turn on the kitchen light.",
    "{w}, what is the weather like tomorrow?",
    "Excuse me, {w}, could you lock the front door?",
    "Well, {w}, please play some quiet music in the living room.",
)
WAKE_PHRASES = {"kiwi": "Kiwi", "hey_jarvis": "Hey Jarvis", "okay_nabu": "Okay Nabu"}
ORDINARY = (
    "I will be home a little late tonight, so start dinner without me.",
    "The bus was crowded this morning and it rained the whole way.",
    "Did you remember to buy milk, eggs and a loaf of bread?",
    "We should paint the spare bedroom before your parents visit.",
    "My phone battery is almost empty again.",
    "The football match starts at eight on Saturday evening.",
    "She told me the new bakery on the corner is very good.",
    "Can you help me carry these boxes up the stairs?",
    "The garden needs watering because it has been dry all week.",
    "I think the cat is hiding under the sofa again.",
    "Let us go for a walk along the beach after lunch.",
    "The meeting moved to Thursday afternoon at three.",
    "He fixed the bicycle chain with an old screwdriver.",
    "Our flight leaves early, so we need to pack tonight.",
    "This soup is too salty, but the bread is lovely.",
    "The children are building a castle out of cardboard.",
    "Please close the window, it is getting cold in here.",
    "I read that the museum has a new dinosaur exhibition.",
    "Turn left at the petrol station and then go straight on.",
    "The doctor said I should drink more water every day.",
    "We watched an old film about sailors and a storm.",
    "The neighbours are having a party on Friday night.",
    "Could you pass me the salt and pepper, please?",
    "I lost my keys somewhere between the car and the door.",
    "The printer in the office has run out of paper.",
    "Tomorrow will be sunny with a light wind from the west.",
    "They planted apple trees along the edge of the field.",
    "My brother is learning to play the guitar.",
    "The library closes early on public holidays.",
    "Remember to switch off the oven when the timer rings.",
    "The train was cancelled, so we shared a taxi.",
    "Grandma makes the best pancakes on Sunday mornings.",
)


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (RATE, 2, 1)
        return wav.readframes(wav.getnframes())


def positive_clips(wake_word: str) -> list[tuple[str, Path]]:
    """(voice, clip) of every voice saying the wake phrase inside one of the carriers."""
    phrase = WAKE_PHRASES[wake_word]
    return [
        (voice, synthetic_voice(voice, CARRIERS[index % len(CARRIERS)].format(w=phrase)))
        for index, voice in enumerate(VOICES)
    ]


def negative_stream() -> tuple[bytes, int]:
    """At least NEGATIVE_SECONDS of ordinary speech in one stream, and how many clips made it."""
    clips = [path for group in human_speech_clips().values() for path in group]
    index = 0
    seconds = sum(len(_pcm(p)) / 2 / RATE for p in clips)
    while seconds < NEGATIVE_SECONDS:
        voice = VOICES[index % len(VOICES)]
        sentence = ORDINARY[(index * 7) % len(ORDINARY)]
        clip = synthetic_voice(voice, sentence)
        clips.append(clip)
        seconds += len(_pcm(clip)) / 2 / RATE
        index += 1
    return b"".join(_pcm(p) for p in clips), len(clips)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the text engine -----------------------------------------------------------------


def utterances(pcm: bytes) -> tuple[list[bytes], float]:
    """The hub's endpointer over `pcm`: each utterance with speech, and the CPU time it took."""
    from kiwi_voice.hub.pipeline.vad import Endpointer, EndpointSettings

    settings = EndpointSettings(silence_seconds=0.8, max_seconds=15.0, start_timeout_seconds=None)
    started = time.process_time()
    found: list[bytes] = []
    position = 0
    while position < len(pcm):
        endpointer = Endpointer(settings)
        result = None
        fed = position
        while result is None and fed < len(pcm):
            result = endpointer.add(pcm[fed : fed + CHUNK])
            fed += CHUNK
        if result is None:
            result = endpointer.finish()
            position = len(pcm)
        else:
            position += max(result.end_offset, 2)
        if result.had_speech:
            found.append(result.pcm)
    return found, time.process_time() - started


async def _transcribe(port: int, pcm: bytes) -> str:
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for offset in range(0, len(pcm), 3200):
            await client.write_event(AudioChunk(RATE, 2, 1, pcm[offset : offset + 3200]).event())
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            if event.type == "transcript":
                return str(event.data.get("text", ""))
            if event.type == "error":
                raise RuntimeError(event.data)
    raise RuntimeError("kiwi-stt closed the connection")


def _text_engine(positives: list[tuple[str, Path]], negative: bytes, work: Path) -> dict[str, Any]:
    from kiwi_voice.hub.pipeline.wake import text_matches_wake_word

    stt = start_service(
        "kiwi-stt",
        [
            "--data-dir",
            str(real_models.whisper_dir()),
            "--model",
            real_models.WHISPER_MODEL,
            "--compute-type",
            "int8",
            "--language",
            "en",
        ],
        work / "kiwi-stt.log",
    )
    missed: list[str] = []
    false_texts: list[str] = []
    try:

        async def heard(pcm: bytes) -> list[str]:
            segments, _cpu = utterances(pcm)
            return [await _transcribe(stt.port, segment) for segment in segments]

        async def measure() -> tuple[int, int, float, float, int]:
            hits = 0
            for voice, clip in positives:
                texts = await heard(_pcm(clip))
                if any(text_matches_wake_word(t, "kiwi") is not None for t in texts):
                    hits += 1
                else:
                    missed.append(f"{voice}: {' | '.join(texts)!r}")
            cpu_before = _cpu_seconds(stt.process.pid)
            segments, vad_cpu = utterances(negative)
            wakes = 0
            for segment in segments:
                text = await _transcribe(stt.port, segment)
                if text_matches_wake_word(text, "kiwi") is not None:
                    wakes += 1
                    false_texts.append(text)
            stt_cpu = _cpu_seconds(stt.process.pid) - cpu_before
            return hits, wakes, stt_cpu, vad_cpu, len(segments)

        hits, wakes, stt_cpu, vad_cpu, segments = asyncio.run(measure())
    finally:
        stt.stop()
    return {
        "hits": hits,
        "missed": missed,
        "false_wakes": wakes,
        "false_wake_transcripts": false_texts,
        "cpu_seconds": stt_cpu + vad_cpu,
        "cpu_note": f"kiwi-stt {stt_cpu:.1f} s + endpointer {vad_cpu:.1f} s, {segments} utterances",
    }


# -- openWakeWord in kiwi-wake (onnx) ------------------------------------------------


async def _detections(port: int, pcm: bytes, name: str) -> int:
    """Stream `pcm` to kiwi-wake; the number of detections once every frame is scored."""
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe
    from wyoming.wake import Detect

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=[name]).event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for offset in range(0, len(pcm), CHUNK):
            await client.write_event(AudioChunk(RATE, 2, 1, pcm[offset : offset + CHUNK]).event())
        await client.write_event(AudioStop().event())
        # kiwi-wake scores every frame before it answers audio-stop; describe marks the end.
        await client.write_event(Describe().event())
        count = 0
        while (event := await client.read_event()) is not None:
            if event.type == "detection":
                count += 1
            elif event.type == "info":
                return count
            elif event.type == "error":
                raise RuntimeError(event.data)
    raise RuntimeError("kiwi-wake closed the connection")


def _kiwi_wake(
    name: str, positives: list[tuple[str, Path]], negative: bytes, work: Path
) -> dict[str, Any]:
    wake = start_service(
        "kiwi-wake",
        [
            "--data-dir",
            str(real_models.openwakeword_dir()),
            "--no-download",
            "--threshold",
            str(THRESHOLD),
            "--refractory-seconds",
            "2",
        ],
        work / f"kiwi-wake-{name}.log",
    )
    missed: list[str] = []
    try:

        async def measure() -> tuple[int, int, float]:
            hits = 0
            for voice, clip in positives:
                if await _detections(wake.port, _pcm(clip), name):
                    hits += 1
                else:
                    missed.append(voice)
            before = _cpu_seconds(wake.process.pid)
            wakes = await _detections(wake.port, negative, name)
            return hits, wakes, _cpu_seconds(wake.process.pid) - before

        hits, wakes, cpu = asyncio.run(measure())
    finally:
        wake.stop()
    return {"hits": hits, "missed": missed, "false_wakes": wakes, "cpu_seconds": cpu}


# -- openWakeWord on pyopen-wakeword (tflite) ----------------------------------------

_TFLITE_SCRIPT = """
import json, sys, time, wave
from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures, Model

name, positives, negative = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
threshold, refractory = float(sys.argv[4]), int(sys.argv[5])
model = OpenWakeWord.from_builtin(Model(name))
features = OpenWakeWordFeatures.from_builtin()

def detections(pcm):
    model.reset(); features.reset()
    count, quiet = 0, 0
    for offset in range(0, len(pcm), 2560):
        for embedding in features.process_streaming(pcm[offset:offset + 2560]):
            for probability in model.process_streaming(embedding):
                if quiet:
                    quiet -= 1
                elif probability >= threshold:
                    count += 1
                    quiet = refractory
    return count

missed = []
for voice, path in positives:
    with wave.open(path, "rb") as wav:
        if not detections(wav.readframes(wav.getnframes())):
            missed.append(voice)
pcm = open(negative, "rb").read()
started = time.process_time()
wakes = detections(pcm)
print(json.dumps({"hits": len(positives) - len(missed), "missed": missed,
                  "false_wakes": wakes, "cpu_seconds": time.process_time() - started}))
"""


def _pyopen_wakeword(
    name: str, positives: list[tuple[str, Path]], negative: Path
) -> dict[str, Any]:
    python = peer_python("wyoming-openwakeword")  # its venv holds pyopen-wakeword 1.1.0
    clips = json.dumps([[voice, str(path)] for voice, path in positives])
    result = subprocess.run(
        [
            str(python),
            "-c",
            _TFLITE_SCRIPT,
            name,
            clips,
            str(negative),
            str(THRESHOLD),
            str(REFRACTORY_FRAMES),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# -- entry point ---------------------------------------------------------------------


def run(results: dict[str, Any]) -> None:
    section: dict[str, Any] = {"notes": []}
    results["wakeword"] = section
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    negative, negative_clips = negative_stream()
    negative_path = WORK_DIR / "negative.pcm"
    negative_path.write_bytes(negative)
    hours = len(negative) / 2 / RATE / 3600
    section["negative_minutes"] = round(hours * 60, 1)
    section["negative_clips"] = negative_clips
    section["positive_voices"] = len(VOICES)
    engines: dict[str, dict[str, Any]] = {}
    engines["kiwi (text engine, Whisper base int8)"] = _text_engine(
        positive_clips("kiwi"), negative, WORK_DIR
    )
    engines["hey_jarvis (onnx, kiwi-wake)"] = _kiwi_wake(
        "hey_jarvis", positive_clips("hey_jarvis"), negative, WORK_DIR
    )
    engines["okay_nabu (tflite, pyopen-wakeword)"] = _pyopen_wakeword(
        "okay_nabu", positive_clips("okay_nabu"), negative_path
    )
    engines["hey_jarvis (tflite, pyopen-wakeword)"] = _pyopen_wakeword(
        "hey_jarvis", positive_clips("hey_jarvis"), negative_path
    )
    table: dict[str, Any] = {}
    for name, figures in engines.items():
        table[name] = {
            "hit_rate_percent": round(100 * figures["hits"] / len(VOICES), 1),
            "false_wakes": figures["false_wakes"],
            "false_wakes_per_hour": round(figures["false_wakes"] / hours, 2),
            "cpu_seconds_per_audio_hour": round(figures["cpu_seconds"] / hours, 1),
        }
        if figures["missed"]:
            section["notes"].append(f"{name} missed: " + "; ".join(figures["missed"])[:600])
        if figures.get("false_wake_transcripts"):
            section["notes"].append(
                f"{name} woke on: " + "; ".join(figures["false_wake_transcripts"])[:600]
            )
        if figures.get("cpu_note"):
            section["notes"].append(f"{name} CPU: {figures['cpu_note']}")
    section["engines"] = table
    section["notes"].insert(
        0,
        f"{len(VOICES)} voices say each wake phrase once inside a sentence; false wakes over "
        f"{section['negative_minutes']} min of ordinary speech ({negative_clips} clips, all "
        "pocketsphinx human clips among them); threshold 0.5, refractory 2 s; CPU seconds of "
        "the processes doing the work, per hour of that speech",
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    measured: dict[str, Any] = {}
    run(measured)
    print(json.dumps(measured, indent=2))
