"""Speech on the real default models: Kiwi's STT and TTS against the Wyoming servers Home
Assistant users run today, in one run, on the same model files.

- STT: word error rate per source (piper joe, six espeak-ng variants, the pocketsphinx human
  clips with their references; bench/speech_corpus.py normalises numbers and spelling) and the
  time from `audio-stop` to `transcript`, for kiwi-stt (int8, its default, and float32) and
  wyoming-faster-whisper 3.8.1, all serving Whisper base from models/whisper/base with beam 1
  and the same CPU threads. Each clip goes to each server in turn, so load hits all alike.
- TTS: first audio and real-time factor (synthesis time / audio time) of en_US-joe-medium for
  a three-sentence answer: kiwi-tts and wyoming-piper 2.5.2 over TCP, and piper's PiperVoice in
  this process (no Wyoming at all).
- A third-party client: wyoming-bench 2026.10.0 (its own venv, bench/peers.py) against
  kiwi-stt, wyoming-faster-whisper, kiwi-tts and wyoming-piper; its summary figures are quoted.

Peers come from bench/peers.py (each in its own venv under bench/work/peers/). The machine is
shared and loaded: compare the ratios, which are measured side by side.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.peers import PEERS, peer_python
from bench.speech_corpus import Clip, stt_clips, wer
from tests.support import real_models
from tests.support.ports import free_port
from tests.support.wyoming_process import ServiceProcess, describe, start_service

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work" / "speech"
CPU_THREADS = 2  # this machine's cores; the same for every STT server
TTS_ROUNDS = 5
TTS_WARMUP = 1
THREE_SENTENCES = (
    "The kitchen light is now on. The living room is still dark. Shall I turn that on as well?"
)
FASTER_WHISPER = "wyoming-faster-whisper"
WYOMING_PIPER = "wyoming-piper"


def _version(peer: str) -> str:
    return PEERS[peer][0].split("==")[1]


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 1)


def _comparison(
    name: str, kiwi: float, baseline: float, baseline_name: str, lower_is_better: bool = True
) -> dict[str, Any]:
    return {
        "name": name,
        "kiwi": kiwi,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "lower_is_better": lower_is_better,
        "ratio": round(kiwi / baseline, 3) if baseline else None,
    }


# -- peer servers --------------------------------------------------------------------


class PeerServer:
    """A peer's Wyoming server in its own venv; ready once `describe` answers."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log
        command = [*argv, "--uri", f"tcp://127.0.0.1:{self.port}"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        deadline = time.monotonic() + 180
        while True:
            try:
                describe(self.port, timeout_s=2)
                return
            except (OSError, ValueError, RuntimeError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.25)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


# -- STT -----------------------------------------------------------------------------


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (16000, 2, 1)
        return wav.readframes(wav.getnframes())


async def _transcribe(port: int, pcm: bytes) -> tuple[str, float]:
    """(transcript, seconds from audio-stop sent to transcript received) over Wyoming."""
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for offset in range(0, len(pcm), 3200):
            await client.write_event(AudioChunk(16000, 2, 1, pcm[offset : offset + 3200]).event())
        await client.write_event(AudioStop().event())
        sent = time.perf_counter()
        while (event := await client.read_event()) is not None:
            if event.type == "transcript":
                return str(event.data.get("text", "")), time.perf_counter() - sent
            if event.type == "error":
                raise RuntimeError(event.data)
    raise RuntimeError("the STT server closed the connection")


def _start_stt_servers(work: Path) -> dict[str, ServiceProcess | PeerServer]:
    model_dir = real_models.whisper_dir() / real_models.WHISPER_MODEL
    servers: dict[str, ServiceProcess | PeerServer] = {}
    common = ["--beam-size", "1", "--cpu-threads", str(CPU_THREADS), "--language", "en"]
    try:
        # int8 is the default; float32 for its WER; the full 30 s window for what the fitted
        # window (stt/fitted_window.py) costs in WER and saves in time.
        for name, compute_type, extra in (
            ("kiwi_int8", "int8", []),
            ("kiwi_float32", "float32", []),
            ("kiwi_int8_full_window", "int8", ["--full-window"]),
        ):
            servers[name] = start_service(
                "kiwi-stt",
                [
                    "--data-dir",
                    str(real_models.whisper_dir()),
                    "--model",
                    real_models.WHISPER_MODEL,
                    "--compute-type",
                    compute_type,
                    *common,
                    *extra,
                ],
                work / f"kiwi-stt-{name}.log",
            )
        python = peer_python(FASTER_WHISPER)
        (work / "wfw-data").mkdir(parents=True, exist_ok=True)
        servers["wyoming_faster_whisper"] = PeerServer(
            FASTER_WHISPER,
            [
                str(python),
                "-m",
                "wyoming_faster_whisper",
                "--model",
                str(model_dir),
                "--data-dir",
                str(work / "wfw-data"),
                "--local-files-only",
                "--compute-type",
                "int8",
                *common,
            ],
            work / "wyoming-faster-whisper.log",
        )
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def _stt_figures(
    clips: list[Clip], heard: dict[str, list[tuple[str, float]]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """WER per source (and espeak variant) and latency per server."""
    sources = sorted({c.source for c in clips}, key=[c.source for c in clips].index)
    wers: dict[str, Any] = {}
    for source in sources:
        row = {}
        for server, results in heard.items():
            pairs = [(c.reference, r[0]) for c, r in zip(clips, results, strict=True)]
            row[server] = wer([p for c, p in zip(clips, pairs, strict=True) if c.source == source])
        wers[source] = row
    wers["all"] = {
        server: wer([(c.reference, r[0]) for c, r in zip(clips, results, strict=True)])
        for server, results in heard.items()
    }
    variants = {c.voice for c in clips if c.source == "espeak"}
    wers["espeak_variants"] = {
        variant: {
            server: wer(
                [
                    (c.reference, r[0])
                    for c, r in zip(clips, results, strict=True)
                    if c.voice == variant
                ]
            )
            for server, results in heard.items()
        }
        for variant in sorted(variants)
    }
    latency = {
        server: {
            "median_ms": _median_ms([r[1] for r in results]),
            "p90_ms": round(1000 * statistics.quantiles([r[1] for r in results], n=10)[-1], 1),
        }
        for server, results in heard.items()
    }
    return wers, latency


def _run_stt(section: dict[str, Any], notes: list[str], work: Path) -> None:
    clips = stt_clips()
    audio_s = sum(len(_pcm(c.path)) / 32000 for c in clips)
    section["stt_clips"] = len(clips)
    section["stt_audio_seconds"] = round(audio_s, 1)
    servers = _start_stt_servers(work)
    heard: dict[str, list[tuple[str, float]]] = {name: [] for name in servers}
    try:

        async def measure() -> None:
            warm = _pcm(clips[0].path)
            for server in servers.values():
                await _transcribe(server.port, warm)
            for clip in clips:
                pcm = _pcm(clip.path)
                for name, server in servers.items():
                    heard[name].append(await _transcribe(server.port, pcm))

        asyncio.run(measure())
        section["wyoming_bench"] = {"stt": _wyoming_bench_stt(clips, servers, work, notes)}
    finally:
        for server in servers.values():
            server.stop()
    wers, latency = _stt_figures(clips, heard)
    section["stt_wer_percent"] = wers
    section["stt_audio_stop_to_transcript"] = latency
    peer = f"{FASTER_WHISPER} {_version(FASTER_WHISPER)} (int8)"
    kiwi_ms = latency["kiwi_int8"]["median_ms"]
    peer_ms = latency["wyoming_faster_whisper"]["median_ms"]
    section["stt_latency_ratio_kiwi_to_wyoming_faster_whisper"] = round(kiwi_ms / peer_ms, 3)
    section["comparisons"] += [
        _comparison("STT: audio-stop to transcript, median (ms)", kiwi_ms, peer_ms, peer),
        _comparison(
            "STT: word error rate, all clips (%)",
            wers["all"]["kiwi_int8"],
            wers["all"]["wyoming_faster_whisper"],
            peer,
        ),
        _comparison(
            "STT: audio-stop to transcript, fitted against full 30 s window, median (ms)",
            kiwi_ms,
            latency["kiwi_int8_full_window"]["median_ms"],
            "kiwi-stt int8 --full-window",
        ),
        _comparison(
            "STT: word error rate, fitted against full 30 s window (%)",
            wers["all"]["kiwi_int8"],
            wers["all"]["kiwi_int8_full_window"],
            "kiwi-stt int8 --full-window",
        ),
        _comparison(
            "STT: word error rate, int8 against float32 (%)",
            wers["all"]["kiwi_int8"],
            wers["all"]["kiwi_float32"],
            "kiwi-stt float32",
        ),
    ]
    misheard = [
        f"{c.voice}: {c.reference!r} -> {r[0]!r}"
        for c, r in zip(clips, heard["kiwi_int8"], strict=True)
        if wer([(c.reference, r[0])]) > 0
    ]
    notes.append(
        f"kiwi-stt int8 misheard {len(misheard)} of {len(clips)} clips: " + "; ".join(misheard[:6])
    )


# -- TTS -----------------------------------------------------------------------------


def _piper_in_process() -> Callable[[], Awaitable[tuple[float, float, float]]]:
    from piper import PiperVoice

    voice = PiperVoice.load(real_models.joe_voice_path())

    async def synthesize() -> tuple[float, float, float]:
        started = time.perf_counter()
        first = 0.0
        samples = 0
        rate = voice.config.sample_rate
        for index, chunk in enumerate(voice.synthesize(THREE_SENTENCES)):
            if index == 0:
                first = time.perf_counter() - started
            samples += len(chunk.audio_int16_bytes) // 2
        return first, time.perf_counter() - started, samples / rate

    return synthesize


def _wyoming_tts(port: int) -> Callable[[], Awaitable[tuple[float, float, float]]]:
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize

    async def round_trip() -> tuple[float, float, float]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            started = time.perf_counter()
            await client.write_event(Synthesize(text=THREE_SENTENCES).event())
            first: float | None = None
            audio_bytes, rate = 0, 22050
            while (event := await client.read_event()) is not None:
                if event.type == "audio-start":
                    rate = int(event.data.get("rate", rate))
                elif event.type == "audio-chunk":
                    audio_bytes += len(event.payload or b"")
                    if first is None:
                        first = time.perf_counter() - started
                elif event.type == "audio-stop":
                    assert first is not None
                    return first, time.perf_counter() - started, audio_bytes / 2 / rate
                elif event.type == "error":
                    raise RuntimeError(event.data)
        raise RuntimeError("the TTS server closed the connection")

    return round_trip


def _tts_summary(results: list[tuple[float, float, float]]) -> dict[str, float]:
    return {
        "first_audio_ms": _median_ms([r[0] for r in results]),
        "total_ms": _median_ms([r[1] for r in results]),
        "audio_seconds": round(results[-1][2], 2),
        "real_time_factor": round(statistics.median(r[1] / r[2] for r in results), 3),
    }


def _run_tts(section: dict[str, Any], notes: list[str], work: Path) -> None:
    voice_dir = real_models.piper_dir()
    kiwi = start_service(
        "kiwi-tts",
        ["--data-dir", str(voice_dir), "--voice", real_models.PIPER_VOICE],
        work / "kiwi-tts.log",
    )
    servers: dict[str, ServiceProcess | PeerServer] = {"kiwi_tts": kiwi}
    try:
        python = peer_python(WYOMING_PIPER)
        servers["wyoming_piper"] = PeerServer(
            WYOMING_PIPER,
            [
                str(python),
                "-m",
                "wyoming_piper",
                "--data-dir",
                str(voice_dir),
                "--voice",
                real_models.PIPER_VOICE,
                "--local-files-only",
            ],
            work / "wyoming-piper.log",
        )
        contenders = {
            "piper_in_process": _piper_in_process(),
            "kiwi_tts": _wyoming_tts(kiwi.port),
            "wyoming_piper": _wyoming_tts(servers["wyoming_piper"].port),
        }

        async def measure() -> dict[str, list[tuple[float, float, float]]]:
            results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in contenders}
            for round_index in range(TTS_WARMUP + TTS_ROUNDS):
                for name, synthesize in contenders.items():
                    result = await synthesize()
                    if round_index >= TTS_WARMUP:
                        results[name].append(result)
            return results

        results = asyncio.run(measure())
        section["wyoming_bench"]["tts"] = _wyoming_bench_tts(servers, work, notes)
    finally:
        for server in servers.values():
            server.stop()
    tts = {name: _tts_summary(rows) for name, rows in results.items()}
    section["tts"] = tts
    peer = f"{WYOMING_PIPER} {_version(WYOMING_PIPER)}"
    for metric, label in (
        ("first_audio_ms", "first audio (ms)"),
        ("real_time_factor", "real-time factor"),
    ):
        for baseline, baseline_name in (
            ("wyoming_piper", peer),
            ("piper_in_process", "PiperVoice in process"),
        ):
            section["comparisons"].append(
                _comparison(
                    f"TTS joe: {label}",
                    tts["kiwi_tts"][metric],
                    tts[baseline][metric],
                    baseline_name,
                )
            )
    section["tts_first_audio_ratio_kiwi_to_wyoming_piper"] = round(
        tts["kiwi_tts"]["first_audio_ms"] / tts["wyoming_piper"]["first_audio_ms"], 3
    )
    section["tts_rtf_ratio_kiwi_to_wyoming_piper"] = round(
        tts["kiwi_tts"]["real_time_factor"] / tts["wyoming_piper"]["real_time_factor"], 3
    )


# -- wyoming-bench (a third-party client) --------------------------------------------

# One row of wyoming-bench's summary table: "  127.0.0.1:1234 (program)  ok  v1 v2 ...".
_SUMMARY_ROW = re.compile(r"^\s+127\.0\.0\.1:(\d+)(?: \([^)]*\))?\s+(\d+)\s+(.*)$")


def _wyoming_bench(args: list[str], log: Path) -> str:
    command = peer_python("wyoming-bench").parent / "wyoming-bench"
    result = subprocess.run(
        [str(command), *args],
        check=False,  # its exit status is checked below, with its output in the error
        capture_output=True,
        text=True,
        timeout=900,
    )
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"wyoming-bench failed ({result.returncode}): {result.stderr[-1000:]}")
    return result.stdout


def _summary(output: str, ports: dict[int, str], columns: list[str]) -> dict[str, Any]:
    """The summary tables of wyoming-bench's output, per mode and server (ms and %)."""
    found: dict[str, Any] = {}
    mode = None
    in_summary = False
    for line in output.splitlines():
        if line.startswith("Summary"):
            in_summary = True
        elif in_summary and (m := re.match(r"^\[(\w+)\]$", line.strip())):
            mode = m.group(1)
        elif in_summary and mode and (row := _SUMMARY_ROW.match(line)):
            name = ports.get(int(row.group(1)), row.group(1))
            values = [v.rstrip("%s") for v in row.group(3).split()]
            parsed: dict[str, Any] = {"ok": int(row.group(2))}
            for column, value in zip(columns, values, strict=False):
                parsed[column] = float(value) if value != "n/a" else None
            found.setdefault(mode, {})[name] = parsed
    return found


def _wyoming_bench_stt(
    clips: list[Clip], servers: dict[str, Any], work: Path, notes: list[str]
) -> dict[str, Any]:
    """wyoming-bench stt on a corpus of one clip per source (wav + txt)."""
    corpus = work / "wyoming-bench-corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    chosen: dict[str, int] = {}
    for index, clip in enumerate(clips):
        if chosen.get(clip.source, 0) < 1:
            chosen[clip.source] = chosen.get(clip.source, 0) + 1
            shutil.copyfile(clip.path, corpus / f"{index:02d}-{clip.voice}.wav")
            (corpus / f"{index:02d}-{clip.voice}.txt").write_text(clip.reference + "\n")
    ports = {
        servers["kiwi_int8"].port: "kiwi_stt",
        servers["wyoming_faster_whisper"].port: "wyoming_faster_whisper",
    }
    args = ["stt", "--corpus", str(corpus), "--mode", "both", "--rounds", "1", "--warmup", "1"]
    args += ["--config", '{"language": "en"}']
    output = _wyoming_bench(
        [*args, *(f"127.0.0.1:{port}" for port in ports)], work / "wyoming-bench-stt.log"
    )
    figures = _summary(
        output, ports, ["wer_pct", "cer_pct", "sar_pct", "total_mean_ms", "ttft_p95_ms", "rtf_mean"]
    )
    figures["clips"] = sum(chosen.values())
    notes.append(
        f"wyoming-bench stt: {sum(chosen.values())} clips (one per source), 1 round per mode; "
        'its WER normalises only case and punctuation ("21" against "twenty one" counts)'
    )
    return figures


def _wyoming_bench_tts(servers: dict[str, Any], work: Path, notes: list[str]) -> dict[str, Any]:
    ports = {servers["kiwi_tts"].port: "kiwi_tts", servers["wyoming_piper"].port: "wyoming_piper"}
    texts = work / "wyoming-bench-texts.txt"
    texts.write_text(THREE_SENTENCES + "\n")
    args = ["tts", "--mode", "both", "--rounds", "3", "--warmup", "1", "--texts-file", str(texts)]
    output = _wyoming_bench(
        [*args, *(f"127.0.0.1:{port}" for port in ports)], work / "wyoming-bench-tts.log"
    )
    notes.append("wyoming-bench tts: the three-sentence answer, 3 rounds per mode")
    return _summary(
        output,
        ports,
        [
            "ttft_mean_ms",
            "ttft_p95_ms",
            "total_mean_ms",
            "rtf_norm",
            "rtf_adj",
            "rtf_act",
            "audio_s",
        ],
    )


# -- entry point ---------------------------------------------------------------------


def run(results: dict[str, Any]) -> None:
    # A fresh section: `--update` starts from the last results, whose notes must not pile up.
    section: dict[str, Any] = {"comparisons": [], "notes": []}
    results["speech"] = section
    notes: list[str] = section["notes"]
    notes.append(
        "Real models: Whisper base (models/whisper/base) and piper en_US-joe-medium; STT "
        f"servers all beam 1, {CPU_THREADS} CPU threads, language en; each clip is sent to "
        "each server in turn; TTS medians of "
        f"{TTS_ROUNDS} rounds after {TTS_WARMUP} warm-up, contenders alternating; Wyoming "
        "times include connecting over TCP on 127.0.0.1"
    )
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    _run_stt(section, notes, WORK_DIR)
    _run_tts(section, notes, WORK_DIR)


if __name__ == "__main__":
    import json

    logging.basicConfig(level=logging.INFO)
    measured: dict[str, Any] = {}
    run(measured)
    print(json.dumps(measured, indent=2))
