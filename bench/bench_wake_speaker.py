"""Wake and speaker services under load, on this machine.

Wake: how many live 16 kHz streams one `kiwi-wake` process keeps up with, against the latest
wyoming-openwakeword from PyPI (installed into a throwaway venv under bench/work/, given the
same openWakeWord 0.5.1 models in the .tflite form it runs). Each level opens N connections
that stream in real time (an 80 ms chunk every 80 ms): ~4 s of speech, then "hey jarvis".
A level is sustained when every stream gets its `detection` no later than `LAG_LIMIT_S` after
the audio of the wake word was sent. The server's CPU time during a level gives the cost of
one stream, and from it the streams the machine's cores could carry.

The speaker half moved to bench_speaker.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support import offline_models
from tests.support.ports import free_port
from tests.support.speech import espeak_pcm
from tests.support.wyoming_process import describe, start_service

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work"
RATE = 16000
CHUNK_BYTES = 2560  # 80 ms of 16 kHz s16 mono
CHUNK_S = 0.08
LAG_LIMIT_S = 0.5
LEVELS = (1, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
WOWW_VERSION = "1.8.2"  # the newest wyoming-openwakeword on PyPI when this was written
WOWW_REQUIREMENTS = ("wyoming==1.2.0", "tflite-runtime==2.14.0", "numpy<2")


# -- a Wyoming client light enough to drive hundreds of streams from one loop ----------------


def _frame(event_type: str, data: dict[str, Any], payload: bytes = b"") -> bytes:
    header: dict[str, Any] = {"type": event_type, "version": "1.2.0"}
    body = json.dumps(data).encode() if data else b""
    if body:
        header["data_length"] = len(body)
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + body + payload


async def _read_events(reader: asyncio.StreamReader) -> Any:
    while line := await reader.readline():
        header = json.loads(line)
        data = header.get("data") or {}
        if header.get("data_length"):
            data.update(json.loads(await reader.readexactly(header["data_length"])))
        if header.get("payload_length"):
            await reader.readexactly(header["payload_length"])
        yield header["type"], data


async def _live_stream(port: int, audio: bytes, word_end_s: float, start_at: float) -> float | None:
    """Stream `audio` in real time from `start_at`; the detection's lag after the word's end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    detected: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        async for event_type, _data in _read_events(reader):
            if event_type == "detection" and not detected.done():
                detected.set_result(time.monotonic())

    listener = asyncio.create_task(listen())
    try:
        fmt = {"rate": RATE, "width": 2, "channels": 1}
        writer.write(_frame("detect", {"names": ["hey_jarvis"]}) + _frame("audio-start", fmt))
        for index, offset in enumerate(range(0, len(audio), CHUNK_BYTES)):
            await asyncio.sleep(max(0.0, start_at + index * CHUNK_S - time.monotonic()))
            chunk = {**fmt, "timestamp": index * 80}
            writer.write(_frame("audio-chunk", chunk, audio[offset : offset + CHUNK_BYTES]))
            await writer.drain()
        writer.write(_frame("audio-stop", {}))
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(detected, timeout=10) - (start_at + word_end_s)
        return None
    finally:
        listener.cancel()
        writer.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _level(port: int, pid: int, streams: int, audio: bytes, word_end_s: float) -> dict:
    start_at = time.monotonic() + 0.5
    cpu_before = _cpu_seconds(pid)
    # Streams start spread over one chunk period, as independent microphones would.
    lags = await asyncio.gather(
        *(
            _live_stream(port, audio, word_end_s, start_at + CHUNK_S * i / streams)
            for i in range(streams)
        )
    )
    wall = time.monotonic() - start_at
    cpu = _cpu_seconds(pid) - cpu_before
    found = sorted(lag for lag in lags if lag is not None)
    p95 = found[min(len(found) - 1, int(0.95 * len(found)))] if found else None
    return {
        "streams": streams,
        "detected": len(found),
        "lag_p50_s": round(statistics.median(found), 3) if found else None,
        "lag_p95_s": round(p95, 3) if p95 is not None else None,
        "server_cpu_cores": round(cpu / wall, 3),
        "machine_load_1min": round(os.getloadavg()[0], 1),
        "sustained": len(found) == streams and p95 is not None and p95 <= LAG_LIMIT_S,
    }


def _wait_idle(pid: int, limit_s: float = 15.0) -> None:
    """Let a server finish any backlog of the previous level before the next one starts."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _cpu_seconds(pid)
        time.sleep(0.5)
        if _cpu_seconds(pid) - before < 0.05:
            return


def _ramp(servers: dict[str, tuple[int, int]]) -> dict[str, dict]:
    """Raise the stream count for every server, level by level, interleaved.

    Interleaving gives each server the same background load of this shared machine; a server
    leaves the ramp at its first level that is not sustained.
    """
    preroll = espeak_pcm("the weather is nice today and I would like to go for a walk outside")
    clip = espeak_pcm("hey jarvis")
    audio = preroll + clip
    word_end_s = (len(preroll) + len(clip) - 2 * RATE) / (2 * RATE)  # clip ends with 1 s pad
    levels: dict[str, list[dict]] = {name: [] for name in servers}
    running = set(servers)
    for streams in LEVELS:
        for name in [n for n in servers if n in running]:
            port, pid = servers[name]
            _wait_idle(pid)
            result = asyncio.run(_level(port, pid, streams, audio, word_end_s))
            _LOGGER.info("%s: %s", name, result)
            levels[name].append(result)
            if not result["sustained"]:
                running.discard(name)
        if not running:
            break
    return {name: _summary(results) for name, results in levels.items()}


def _summary(levels: list[dict]) -> dict[str, Any]:
    sustained = [lvl for lvl in levels if lvl["sustained"]]
    best = max(sustained, key=lambda lvl: lvl["streams"]) if sustained else None
    summary: dict[str, Any] = {
        "max_sustained_streams": best["streams"] if best else 0,
        "levels": {str(lvl["streams"]): lvl for lvl in levels},
    }
    if best and best["streams"] >= 8:
        # CPU per stream from the busiest sustained level: independent of the other load.
        per_stream = best["server_cpu_cores"] / best["streams"]
        summary["cpu_cores_per_stream"] = round(per_stream, 4)
        summary["streams_per_cpu_core_if_idle"] = round(1 / per_stream) if per_stream else None
    return summary


# -- the servers --------------------------------------------------------------------------------


@contextlib.contextmanager
def _kiwi_wake(log_dir: Path) -> Iterator[tuple[int, int]]:
    workers = str(os.cpu_count() or 2)
    models = offline_models.openwakeword_models_dir()
    args = ["--data-dir", str(models), "--wake-word", "hey_jarvis", "--no-download"]
    service = start_service("kiwi-wake", [*args, "--workers", workers], log_dir / "kiwi-wake.log")
    try:
        yield service.port, service.process.pid
    finally:
        service.stop()


def _install_woww(venv: Path) -> Path:
    uv = Path(__file__).resolve().parents[1] / ".tools" / "bin" / "uv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([str(uv), "venv", "-q", "--python", "python3.11", str(venv)], check=True)
    # Its declared tflite-runtime-nightly has no wheel for this Python; tflite-runtime does.
    install = [str(uv), "pip", "install", "-q", "--python", str(python)]
    subprocess.run([*install, "--no-deps", f"wyoming-openwakeword=={WOWW_VERSION}"], check=True)
    subprocess.run([*install, *WOWW_REQUIREMENTS], check=True)
    return python


def _tflite_models(target: Path) -> Path:
    """The 0.5.1 wheel's .tflite files: the same models as the ONNX ones kiwi-wake runs."""
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(offline_models.openwakeword_wheel()) as wheel:
        for name in ("melspectrogram", "embedding_model", "hey_jarvis_v0.1"):
            member = f"openwakeword/resources/models/{name}.tflite"
            (target / f"{name}.tflite").write_bytes(wheel.read(member))
    return target


@contextlib.contextmanager
def _wyoming_openwakeword(python: Path, models: Path, log: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    command = [str(python), "-m", "wyoming_openwakeword", "--uri", f"tcp://127.0.0.1:{port}"]
    command += ["--models-dir", str(models), "--preload-model", "hey_jarvis"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"wyoming-openwakeword exited: {log.read_text()[-2000:]}")
            try:
                describe(port, timeout_s=2)
                break
            except (OSError, ValueError, RuntimeError):
                if time.monotonic() > deadline:
                    raise TimeoutError(log.read_text()[-2000:]) from None
                time.sleep(0.2)
        yield port, process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- entry point ------------------------------------------------------------------------------


def _guarded(notes: list[str], label: str, work: Callable[[], Any]) -> Any:
    try:
        return work()
    except Exception as err:  # say why in the results instead of losing the other numbers
        _LOGGER.exception("%s failed", label)
        notes.append(f"{label}: {type(err).__name__}: {err}"[:500])
        return None


def run(results: dict) -> None:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    notes: list[str] = [
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
        "(a shared machine: other work competes for the cores, see machine_load_1min)",
        f"a level is sustained when every stream's detection arrives <= {LAG_LIMIT_S} s "
        "after its wake word was sent, streams paced in real time from one client process",
        "kiwi-wake runs the ONNX models; wyoming-openwakeword the .tflite twins of the same "
        "openWakeWord 0.5.1 models (it cannot run ONNX)",
    ]
    section: dict[str, Any] = {"notes": notes}
    results["wake_speaker"] = section

    with contextlib.ExitStack() as servers:
        targets = {"kiwi_wake": servers.enter_context(_kiwi_wake(WORK_DIR))}

        def start_competitor() -> None:
            python = _install_woww(WORK_DIR / "wyoming-openwakeword-venv")
            tflite = _tflite_models(WORK_DIR / "wyoming-openwakeword-models")
            log = WORK_DIR / "wyoming-openwakeword.log"
            targets["wyoming_openwakeword"] = servers.enter_context(
                _wyoming_openwakeword(python, tflite, log)
            )

        _guarded(notes, "wyoming-openwakeword", start_competitor)
        section.update(_ramp(targets))
    if "wyoming_openwakeword" in section:
        section["wyoming_openwakeword"]["version"] = WOWW_VERSION
        theirs = section["wyoming_openwakeword"]["max_sustained_streams"]
        if theirs:
            ours = section["kiwi_wake"]["max_sustained_streams"]
            section["sustained_streams_ratio_kiwi_over_woww"] = round(ours / theirs, 2)
