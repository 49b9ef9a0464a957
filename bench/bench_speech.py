"""Speech services: what Wyoming costs over the bare engines, and how soon TTS audio starts.

- STT: faster-whisper called in this process vs the same model through `kiwi-stt` over TCP
  (a 3 s espeak-ng clip; the Wyoming time runs from the first event sent to `transcript`).
- TTS: piper called in this process vs `kiwi-tts` over TCP for a 3-sentence text: time to the
  first audio and to the end, and the same request against wyoming-piper 2.5.2 (from PyPI,
  installed into a throwaway venv under bench/work/) serving the same voice file.

STT runs on the tiny offline Whisper model (tests/support/offline_models.py), so its numbers show
the service's own overhead. TTS runs on the benchmark piper voice, which costs about what a real
"medium" piper voice costs per phoneme on a CPU (real-time factor near 0.06), so first-audio
latency shows what sentence streaming buys. One CPU thread per engine; medians of `ROUNDS` warm
runs in which the contenders alternate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.support import offline_models
from tests.support.ports import free_port
from tests.support.speech import espeak_pcm
from tests.support.wyoming_process import describe, start_service

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work"
REPO_ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 30
WARMUP = 3
WYOMING_PIPER_VERSION = "2.5.2"
VOICE = Path(offline_models.piper_bench_voice_path()).stem
THREE_SENTENCES = (
    "The kitchen light is now on. The living room is still dark. Shall I turn that on as well?"
)
STT_CLIP_TEXT = "turn on the kitchen light and close the blinds"


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 2)


async def _interleaved(contenders: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, list[Any]]:
    """Run each contender once per round, alternating, so machine noise hits all alike."""
    results: dict[str, list[Any]] = {name: [] for name in contenders}
    for round_index in range(WARMUP + ROUNDS):
        for name, measure in contenders.items():
            result = await measure()
            if round_index >= WARMUP:
                results[name].append(result)
    return results


# -- STT -----------------------------------------------------------------------------


def _bare_stt(model_dir: Path, pcm: bytes) -> Callable[[], Awaitable[float]]:
    import numpy as np
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", cpu_threads=1)
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0

    async def transcribe() -> float:
        started = time.perf_counter()
        segments, _info = model.transcribe(
            audio, language="en", beam_size=1, condition_on_previous_text=False
        )
        "".join(s.text for s in segments)
        return time.perf_counter() - started

    return transcribe


def _wyoming_stt(port: int, pcm: bytes) -> Callable[[], Awaitable[tuple[float, float]]]:
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    async def round_trip() -> tuple[float, float]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            started = time.perf_counter()
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            for offset in range(0, len(pcm), 3200):
                audio = pcm[offset : offset + 3200]
                await client.write_event(AudioChunk(16000, 2, 1, audio).event())
            await client.write_event(AudioStop().event())
            sent = time.perf_counter()
            while (event := await client.read_event()) is not None:
                if event.type == "transcript":
                    done = time.perf_counter()
                    return done - started, done - sent
                if event.type == "error":
                    raise RuntimeError(event.data)
        raise RuntimeError("kiwi-stt closed the connection")

    return round_trip


# -- TTS -----------------------------------------------------------------------------


def _bare_tts(voice_path: Path) -> Callable[[], Awaitable[tuple[float, float]]]:
    from piper import PiperVoice

    voice = PiperVoice.load(voice_path)

    async def synthesize() -> tuple[float, float]:
        started = time.perf_counter()
        first = 0.0
        for index, _chunk in enumerate(voice.synthesize(THREE_SENTENCES)):
            if index == 0:
                first = time.perf_counter() - started
        return first, time.perf_counter() - started

    return synthesize


def _wyoming_tts(port: int) -> Callable[[], Awaitable[tuple[float, float, int]]]:
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize

    async def round_trip() -> tuple[float, float, int]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            started = time.perf_counter()
            await client.write_event(Synthesize(text=THREE_SENTENCES).event())
            first: float | None = None
            audio_bytes = 0
            while (event := await client.read_event()) is not None:
                if event.type == "audio-chunk":
                    audio_bytes += len(event.payload or b"")
                    if first is None:
                        first = time.perf_counter() - started
                elif event.type == "audio-stop":
                    assert first is not None
                    return first, time.perf_counter() - started, audio_bytes
                elif event.type == "error":
                    raise RuntimeError(event.data)
        raise RuntimeError("the TTS server closed the connection")

    return round_trip


def _tts_summary(results: list[tuple[float, float, int]]) -> dict[str, float]:
    return {
        "first_audio_ms": _median_ms([r[0] for r in results]),
        "total_ms": _median_ms([r[1] for r in results]),
        "audio_seconds": round(results[-1][2] / 32000, 2),
    }


def _install_wyoming_piper(venv: Path) -> Path:
    uv = REPO_ROOT / ".tools" / "bin" / "uv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([str(uv), "venv", "-q", "--python", "python3.11", str(venv)], check=True)
    requirement = f"wyoming-piper=={WYOMING_PIPER_VERSION}"
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(python), requirement],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return python


def _start_wyoming_piper(
    python: Path, voice_dir: Path, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """wyoming-piper's own server; ready once its describe answers (it logs no port)."""
    port = free_port()
    command = [str(python), "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}"]
    command += ["--data-dir", str(voice_dir), "--voice", VOICE, "--local-files-only"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            describe(port, timeout_s=2)
            return process, port
        except (OSError, ValueError, RuntimeError):
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError(
                    f"wyoming-piper did not start: {log.read_text()[-2000:]}"
                ) from None
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# -- entry point ---------------------------------------------------------------------


def _run_stt(section: dict[str, Any], models: Path, work: Path) -> None:
    pcm = espeak_pcm(STT_CLIP_TEXT)
    section["stt_clip_seconds"] = round(len(pcm) / 32000, 2)
    model = offline_models.WHISPER_MODEL_NAME
    stt = start_service(
        "kiwi-stt",
        ["--data-dir", str(models / "whisper"), "--model", model, "--cpu-threads", "1"],
        work / "kiwi-stt.log",
    )
    try:
        contenders = {
            "bare": _bare_stt(models / "whisper" / model, pcm),
            "kiwi": _wyoming_stt(stt.port, pcm),
        }
        results = asyncio.run(_interleaved(contenders))
    finally:
        stt.stop()
    section["stt_bare_transcribe_ms"] = _median_ms(results["bare"])
    section["stt_kiwi_round_trip_ms"] = _median_ms([r[0] for r in results["kiwi"]])
    section["stt_kiwi_audio_stop_to_transcript_ms"] = _median_ms([r[1] for r in results["kiwi"]])
    section["stt_wyoming_overhead_ms"] = round(
        section["stt_kiwi_audio_stop_to_transcript_ms"] - section["stt_bare_transcribe_ms"], 2
    )


def _run_tts(section: dict[str, Any], notes: list[str], work: Path) -> None:
    voice_dir = work / "bench-voice"
    voice_dir.mkdir(parents=True, exist_ok=True)
    source = offline_models.piper_bench_voice_path()
    for file in (source, source.with_name(source.name + ".json")):
        target = voice_dir / file.name
        target.unlink(missing_ok=True)  # it may point at an older build of the voice
        target.symlink_to(file)
    tts = start_service(
        "kiwi-tts", ["--data-dir", str(voice_dir), "--voice", VOICE], work / "kiwi-tts.log"
    )
    reference: subprocess.Popen[bytes] | None = None
    contenders: dict[str, Callable[[], Awaitable[Any]]] = {
        "bare": _bare_tts(voice_dir / f"{VOICE}.onnx"),
        "kiwi": _wyoming_tts(tts.port),
    }
    try:
        try:
            python = _install_wyoming_piper(WORK_DIR / "wyoming-piper-venv")
            reference, port = _start_wyoming_piper(python, voice_dir, work / "wyoming-piper.log")
            contenders["wyoming_piper"] = _wyoming_tts(port)
        except (subprocess.SubprocessError, OSError, RuntimeError) as err:
            notes.append(f"wyoming-piper {WYOMING_PIPER_VERSION} could not be measured: {err}")
            _LOGGER.warning("wyoming-piper not measured: %s", err)
        results = asyncio.run(_interleaved(contenders))
    finally:
        tts.stop()
        if reference is not None:
            _stop(reference)
    section["tts_bare_first_sentence_ms"] = _median_ms([r[0] for r in results["bare"]])
    section["tts_bare_total_ms"] = _median_ms([r[1] for r in results["bare"]])
    section["tts_kiwi"] = _tts_summary(results["kiwi"])
    if "wyoming_piper" in results:
        section[f"tts_wyoming_piper_{WYOMING_PIPER_VERSION}"] = _tts_summary(
            results["wyoming_piper"]
        )
        kiwi_first = section["tts_kiwi"]["first_audio_ms"]
        reference_first = _median_ms([r[0] for r in results["wyoming_piper"]])
        section["tts_first_audio_ratio_kiwi_to_wyoming_piper"] = round(
            kiwi_first / reference_first, 3
        )


def run(results: dict[str, Any]) -> None:
    section: dict[str, Any] = results.setdefault("speech", {})
    notes: list[str] = section.setdefault("notes", [])
    notes.append(
        "STT on the tiny offline model; TTS on the benchmark voice (real-time factor ~0.06); "
        f"1 CPU thread per engine, medians of {ROUNDS} warm rounds in which the contenders "
        "alternate; Wyoming numbers include connecting over TCP on 127.0.0.1"
    )
    work = WORK_DIR / "speech"
    models = work / "models"
    offline_models.populate_models_dir(models)
    _run_stt(section, models, work)
    _run_tts(section, notes, work)


if __name__ == "__main__":
    import json

    logging.basicConfig(level=logging.WARNING)
    measured: dict[str, Any] = {}
    run(measured)
    print(json.dumps(measured, indent=2))
