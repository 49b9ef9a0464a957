"""Wake word service against Home Assistant's openWakeWord add-on (wyoming-openwakeword 2.1.0).

In one run, on the same machine and the same hey_jarvis model:

- **Sustained streams**: how many live 16 kHz streams one process keeps up with. Each level
  opens N connections that stream in real time (an 80 ms chunk every 80 ms): a sentence, then
  "hey jarvis". A level is sustained when every stream gets its `detection` no later than
  `LAG_LIMIT_S` after the wake word's audio was sent. The servers take turns level by level, so
  both see the same background load of this shared machine.
- **Streams per core**: the server CPU time that 16 streams' audio costs once all of it is
  scored, per second of one stream: robust to the machine's other load, which starves real-time
  levels of CPU share but does not add CPU time to the server.
- **Connection cost**: Home Assistant opens a new connection for every pipeline run. Connect,
  `detect`, 1 s of audio sent at once, `audio-stop` -> the answer, on a new connection each
  time against the same on a connection already open; the difference is what a connection
  costs (wyoming-openwakeword builds its models per connection).
- **Detection latency**: end of the phrase -> `detection`, p50/p95 over 13 spoken "hey jarvis"
  (piper joe, espeak-ng voices) after 3 s of silence, each streamed in real time to every
  server at the same moment.
- **Look-alikes** (kiwi-wake's engine on the same models, offline): hits on varied positives
  and wakes on look-alike phrases, with the plain threshold and with the second look.

Servers: kiwi-wake on the .onnx hey_jarvis (its default; batched) and on the very .tflite file
wyoming-openwakeword 2.1.0 runs (pyopen-wakeword 1.1.0's), and wyoming-openwakeword 2.1.0 in
its own venv (bench/peers.py).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.peers import peer_python
from tests.support.ports import free_port
from tests.support.real_models import openwakeword_dir
from tests.support.speech import espeak_pcm
from tests.support.wake_phrases import positives
from tests.support.wyoming_process import start_service

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work"
RATE = 16000
CHUNK_BYTES = 2560  # 80 ms of 16 kHz s16 mono
CHUNK_S = 0.08
LAG_LIMIT_S = 0.5
LEVELS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 448, 512)
PEER = "wyoming-openwakeword"
PEER_VERSION = "2.1.0"
CONNECTION_SAMPLES = 15  # connections per server for the connection cost
CAPACITY_STREAMS = 16  # streams sent at once for the CPU cost per stream


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


async def _open_stream(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent `detect` and had it handled (a `describe` answered after it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_frame("detect", {"names": ["hey_jarvis"]}) + _frame("describe", {}))
    await writer.drain()
    async for event_type, _data in _read_events(reader):
        if event_type == "info":
            return reader, writer
    raise ConnectionError("the server closed the connection before answering describe")


GROUPS = 4  # streams start in this many groups spread over one chunk period


async def _stream_all(
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    audio: bytes,
    word_end_s: float,
    start_at: float,
) -> tuple[list[float | None], float]:
    """Stream `audio` to every connection in real time; each one's detection lag, and how late
    the client itself was at worst (its own pacing, on this loaded machine).

    One pacing loop serves all streams and every chunk's bytes are encoded once, so the client
    costs little per stream; streams are spread over one chunk period in `GROUPS` groups, as
    independent microphones would be.
    """
    fmt = {"rate": RATE, "width": 2, "channels": 1}
    chunks = [
        _frame("audio-chunk", {**fmt, "timestamp": i * 80}, audio[offset : offset + CHUNK_BYTES])
        for i, offset in enumerate(range(0, len(audio), CHUNK_BYTES))
    ]
    loop = asyncio.get_running_loop()
    detected: list[asyncio.Future[float]] = [loop.create_future() for _ in connections]

    async def listen(reader: asyncio.StreamReader, found: asyncio.Future[float]) -> None:
        async for event_type, _data in _read_events(reader):
            if event_type == "detection" and not found.done():
                found.set_result(time.monotonic())

    listeners = [
        asyncio.create_task(listen(reader, found))
        for (reader, _writer), found in zip(connections, detected, strict=True)
    ]
    groups = [connections[g::GROUPS] for g in range(GROUPS)]
    offsets = [CHUNK_S * g / GROUPS for g in range(GROUPS)]
    late = 0.0
    try:
        for _reader, writer in connections:
            writer.write(_frame("audio-start", fmt))
        for index, chunk in enumerate(chunks):
            for group, offset in zip(groups, offsets, strict=True):
                due = start_at + offset + index * CHUNK_S
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                late = max(late, time.monotonic() - due)
                for _reader, writer in group:
                    writer.write(chunk)
        stop = _frame("audio-stop", {})
        for _reader, writer in connections:
            writer.write(stop)
        await asyncio.gather(*(writer.drain() for _reader, writer in connections))
        lags: list[float | None] = []
        for i, found in enumerate(detected):
            planned = offsets[i % GROUPS]
            with contextlib.suppress(TimeoutError):
                at = await asyncio.wait_for(asyncio.shield(found), timeout=10)
                lags.append(at - (start_at + planned + word_end_s))
                continue
            lags.append(None)
        return lags, late
    finally:
        for listener in listeners:
            listener.cancel()
        for _reader, writer in connections:
            writer.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _level(port: int, pid: int, streams: int, audio: bytes, word_end_s: float) -> dict:
    # Connections are opened first (their cost is measured on its own): a level measures
    # streaming, which is what a server must keep up with while microphones listen.
    connections = await asyncio.gather(*(_open_stream(port) for _ in range(streams)))
    start_at = time.monotonic() + 0.2
    cpu_before = _cpu_seconds(pid)
    lags, client_late = await _stream_all(connections, audio, word_end_s, start_at)
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
        "client_late_max_s": round(client_late, 3),
        "sustained": len(found) == streams and p95 is not None and p95 <= LAG_LIMIT_S,
    }


def _speech_end_s(pcm: bytes) -> float:
    """Where the last word ends: the end of the last 10 ms above 5 % of the clip's peak level."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    windows = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((windows**2).mean(axis=1))
    loud = np.nonzero(rms > 0.05 * rms.max())[0]
    return float((loud[-1] + 1) * 160 / RATE)


async def _capacity(port: int, pid: int, streams: int, audio: bytes) -> dict[str, Any]:
    """Server CPU seconds per second of one stream's audio, all of it scored (waits for idle).

    CPU time counts only while the server runs, so this holds on a loaded machine where
    real-time levels fail for want of a CPU share: 1 / it is the streams one idle core carries.
    """
    connections = await asyncio.gather(*(_open_stream(port) for _ in range(streams)))
    cpu_before = _cpu_seconds(pid)
    lags, _late = await _stream_all(connections, audio, _speech_end_s(audio), time.monotonic())
    await asyncio.to_thread(_wait_idle, pid, 180.0)
    cpu = _cpu_seconds(pid) - cpu_before
    per_stream_second = cpu / (streams * len(audio) / (2 * RATE))
    return {
        "streams": streams,
        "detected": sum(lag is not None for lag in lags),
        "cpu_s_per_stream_s": round(per_stream_second, 5),
        "streams_per_idle_core": round(1 / per_stream_second, 1),
        "machine_load_1min": round(os.getloadavg()[0], 1),
    }


async def _latencies(ports: dict[str, int], clips: list[bytes]) -> dict[str, dict[str, Any]]:
    """End of phrase -> `detection` for each clip streamed in real time, p50/p95 per server.

    Every server gets the same clip at the same moment (one stream each), clip after clip, so
    the machine's load falls on all of them alike.
    """
    lags: dict[str, list[float]] = {name: [] for name in ports}
    missed: dict[str, int] = dict.fromkeys(ports, 0)
    for clip in clips:
        end = _speech_end_s(clip)
        names = list(ports)
        connections = await asyncio.gather(*(_open_stream(ports[name]) for name in names))
        start_at = time.monotonic() + 0.2
        results = await asyncio.gather(
            *(_stream_all([connection], clip, end, start_at) for connection in connections)
        )
        for name, (found, _late) in zip(names, results, strict=True):
            if found[0] is None:
                missed[name] += 1
            else:
                lags[name].append(found[0])
    summary: dict[str, dict[str, Any]] = {}
    for name, values in lags.items():
        values.sort()
        summary[name] = {
            "clips": len(clips),
            "missed": missed[name],
            "p50_ms": _ms(statistics.median(values)) if values else None,
            "p95_ms": _ms(values[min(len(values) - 1, int(0.95 * len(values)))])
            if values
            else None,
        }
    return summary


def _wait_idle(pid: int, limit_s: float = 15.0) -> None:
    """Let a server finish any backlog of the previous level before the next one starts."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _cpu_seconds(pid)
        time.sleep(0.5)
        if _cpu_seconds(pid) - before < 0.05:
            return


def _ramp(servers: dict[str, tuple[int, int]], audio: bytes) -> dict[str, dict]:
    """Raise the stream count for every server, level by level, interleaved.

    Interleaving gives each server the same background load of this shared machine; a server
    leaves the ramp at its first level that is not sustained.
    """
    word_end_s = _speech_end_s(audio)
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


# -- connection cost ----------------------------------------------------------------------------


async def _one_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, audio: bytes
) -> None:
    """detect, the audio at once, audio-stop; returns at the answer (detection / not-detected)."""
    fmt = {"rate": RATE, "width": 2, "channels": 1}
    frames = [_frame("detect", {"names": ["hey_jarvis"]}), _frame("audio-start", fmt)]
    for index, offset in enumerate(range(0, len(audio), CHUNK_BYTES)):
        chunk = {**fmt, "timestamp": index * 80}
        frames.append(_frame("audio-chunk", chunk, audio[offset : offset + CHUNK_BYTES]))
    frames.append(_frame("audio-stop", {}))
    writer.write(b"".join(frames))
    await writer.drain()
    async for event_type, _data in _read_events(reader):
        if event_type in ("detection", "not-detected"):
            return
    raise ConnectionError("the server closed the connection without an answer")


async def _connection_cost(port: int, audio: bytes) -> dict[str, float]:
    """Median ms of a stream on a new connection and on one already open (same audio)."""
    new: list[float] = []
    for _ in range(CONNECTION_SAMPLES):
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _one_stream(reader, writer, audio)
        new.append((time.perf_counter() - started) * 1000)
        writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _one_stream(reader, writer, audio)  # the connection's own setup, not counted
    warm: list[float] = []
    for _ in range(CONNECTION_SAMPLES):
        started = time.perf_counter()
        await _one_stream(reader, writer, audio)
        warm.append((time.perf_counter() - started) * 1000)
    writer.close()
    new_ms, warm_ms = statistics.median(new), statistics.median(warm)
    return {
        "new_connection_ms": round(new_ms, 1),
        "open_connection_ms": round(warm_ms, 1),
        "connection_cost_ms": round(max(new_ms - warm_ms, 0.0), 1),
    }


# -- the servers --------------------------------------------------------------------------------


@contextlib.contextmanager
def _kiwi_wake(name: str, data_dir: Path, log_dir: Path) -> Iterator[tuple[int, int]]:
    workers = str(os.cpu_count() or 2)
    args = ["--data-dir", str(data_dir), "--wake-word", "hey_jarvis", "--no-download"]
    service = start_service("kiwi-wake", [*args, "--workers", workers], log_dir / f"{name}.log")
    try:
        yield service.port, service.process.pid
    finally:
        service.stop()


def _tflite_only_dir(target: Path) -> Path:
    """kiwi-wake's feature models and only the .tflite hey_jarvis that the peer runs."""
    models = openwakeword_dir()
    (target / "tflite").mkdir(parents=True, exist_ok=True)
    links = {
        "melspectrogram.onnx": models / "melspectrogram.onnx",
        "embedding_model.onnx": models / "embedding_model.onnx",
        "tflite/hey_jarvis.tflite": models / "tflite" / "hey_jarvis.tflite",
    }
    for name, source in links.items():
        link = target / name
        link.unlink(missing_ok=True)
        link.symlink_to(source)
    return target


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{PEER} exited: {log.read_text()[-2000:]}")
        try:
            with contextlib.closing(__import__("socket").create_connection(("127.0.0.1", port))):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(log.read_text()[-2000:]) from None
            time.sleep(0.2)


@contextlib.contextmanager
def _wyoming_openwakeword(python: Path, log: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    command = [str(python), "-m", "wyoming_openwakeword", "--uri", f"tcp://127.0.0.1:{port}"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(port, process, log)
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


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


def run(results: dict) -> None:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    notes: list[str] = [
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
        "(a shared, loaded machine: other work competes for the cores, see machine_load_1min "
        "per level; compare the ratios, measured in this one run)",
        f"a level is sustained when every stream's detection arrives <= {LAG_LIMIT_S} s "
        "after its wake word was sent, streams paced in real time from one client process",
        f"{PEER} {PEER_VERSION} (pyopen-wakeword 1.1.0, its .tflite hey_jarvis); kiwi-wake on "
        "the .onnx hey_jarvis (default, batched) and kiwi_wake_tflite on that same .tflite file",
    ]
    section: dict[str, Any] = {"notes": notes}
    results["wake"] = section
    preroll = espeak_pcm("the weather is nice today and I would like to go for a walk outside")
    clip = espeak_pcm("hey jarvis")

    with contextlib.ExitStack() as servers:
        targets = {
            "kiwi_wake": servers.enter_context(
                _kiwi_wake("kiwi-wake", openwakeword_dir(), WORK_DIR)
            ),
            "kiwi_wake_tflite": servers.enter_context(
                _kiwi_wake("kiwi-wake-tflite", _tflite_only_dir(WORK_DIR / "wake-tflite"), WORK_DIR)
            ),
        }

        def start_peer() -> None:
            python = peer_python(PEER)
            targets[PEER.replace("-", "_")] = servers.enter_context(
                _wyoming_openwakeword(python, WORK_DIR / f"{PEER}.log")
            )

        _guarded(notes, PEER, start_peer)
        silence = b"\0\0" * RATE  # 1 s: both engines score at least one frame of it
        for name, (port, _pid) in targets.items():
            cost = _guarded(
                notes,
                f"{name} connection cost",
                lambda p=port: asyncio.run(_connection_cost(p, silence)),
            )
            section.setdefault(name, {})["connection"] = cost
        for name, summary in _ramp(targets, preroll + clip).items():
            section[name].update(summary)
        # A microphone streams before anyone speaks: 3 s of silence lead into each phrase.
        lead_in = b"\0\0" * 3 * RATE
        clips = [lead_in + pcm for _label, pcm in positives()[::2]]
        latencies = _guarded(
            notes,
            "latency",
            lambda: asyncio.run(_latencies({n: port for n, (port, _) in targets.items()}, clips)),
        )
        for name, latency in (latencies or {}).items():
            section[name]["latency"] = latency
        for name, (port, pid) in targets.items():
            _wait_idle(pid)
            section[name]["capacity"] = _guarded(
                notes,
                f"{name} capacity",
                lambda p=port, i=pid: asyncio.run(
                    _capacity(p, i, CAPACITY_STREAMS, preroll + clip)
                ),
            )
    _guarded(notes, "look-alikes", lambda: section.update(look_alikes=_look_alikes()))
    _compare(section)


def _look_alikes() -> dict[str, Any]:
    """Hits and look-alike wakes of hey_jarvis without and with a second look (engine, offline)."""
    from kiwi_voice.wake.classifiers import load_classifier
    from kiwi_voice.wake.engine import DetectionSettings, WakeEngine
    from kiwi_voice.wake.features import FeatureModels
    from tests.support.wake_phrases import look_alikes

    models = openwakeword_dir()
    features = FeatureModels(models / "melspectrogram.onnx", models / "embedding_model.onnx")
    jarvis = load_classifier("hey_jarvis", models / "hey_jarvis_v0.1.onnx")
    real, fake = positives(), look_alikes()

    def first_hits(settings: DetectionSettings, clips: list[tuple[str, bytes]]) -> list[int | None]:
        engine = WakeEngine(features, {"hey_jarvis": jarvis}, settings)
        found: list[int | None] = []
        for _label, pcm in clips:
            stream = engine.open_stream(["hey_jarvis"])
            stream.add_audio(pcm)
            audio = stream.take_frames(10_000)
            hits = stream.score(audio) if audio is not None else []
            found.append(hits[0].stream_ms if hits else None)
        return found

    result: dict[str, Any] = {"positives": len(real), "look_alike_clips": len(fake)}
    plain_real = first_hits(DetectionSettings(), real)
    for name, settings in {
        "plain": DetectionSettings(),
        "trigger_level_2": DetectionSettings(trigger_level=2),
        "second_look_2": DetectionSettings(second_look_frames=2),
    }.items():
        hits = first_hits(settings, real)
        wakes = sum(ms is not None for ms in first_hits(settings, fake))
        delays = [b - a for a, b in zip(plain_real, hits, strict=True) if a and b]
        result[name] = {
            "hit_rate": round(sum(ms is not None for ms in hits) / len(real), 3),
            "look_alike_wake_rate": round(wakes / len(fake), 3),
            "look_alike_wakes": wakes,
            "added_latency_ms_median": statistics.median(delays) if delays else None,
        }
    plain_wakes = result["plain"]["look_alike_wakes"]
    if plain_wakes:
        result["second_look_wakes_over_plain"] = round(
            result["second_look_2"]["look_alike_wakes"] / plain_wakes, 2
        )
    return result


def _compare(section: dict[str, Any]) -> None:
    peer = section.get(PEER.replace("-", "_"))
    kiwi = section["kiwi_wake"]
    if not peer or not peer.get("max_sustained_streams"):
        return
    ratio = kiwi["max_sustained_streams"] / peer["max_sustained_streams"]
    section["sustained_streams_ratio_kiwi_over_peer"] = round(ratio, 2)
    tflite = section.get("kiwi_wake_tflite", {})
    if tflite.get("max_sustained_streams"):
        section["sustained_streams_ratio_kiwi_tflite_over_peer"] = round(
            tflite["max_sustained_streams"] / peer["max_sustained_streams"], 2
        )
    kiwi_latency, peer_latency = kiwi.get("latency") or {}, peer.get("latency") or {}
    name = f"{PEER} {PEER_VERSION}"
    kiwi_capacity = (kiwi.get("capacity") or {}).get("streams_per_idle_core")
    peer_capacity = (peer.get("capacity") or {}).get("streams_per_idle_core")
    if kiwi_capacity and peer_capacity:
        section["streams_per_core_ratio_kiwi_over_peer"] = round(kiwi_capacity / peer_capacity, 2)
    comparisons = [
        ("live streams sustained (this loaded machine)", kiwi["max_sustained_streams"],
         peer["max_sustained_streams"], False),
        ("streams one core carries (CPU per stream)", kiwi_capacity, peer_capacity, False),
        ("new connection, connect -> first answer (ms)",
         (kiwi.get("connection") or {}).get("new_connection_ms"),
         (peer.get("connection") or {}).get("new_connection_ms"), True),
        ("detection latency p50, end of phrase -> detection (ms)", kiwi_latency.get("p50_ms"),
         peer_latency.get("p50_ms"), True),
        ("detection latency p95, end of phrase -> detection (ms)", kiwi_latency.get("p95_ms"),
         peer_latency.get("p95_ms"), True),
    ]  # fmt: skip
    section["comparisons"] = [
        {"name": label, "kiwi": ours, "baseline": theirs, "baseline_name": name,
         "lower_is_better": lower}
        for label, ours, theirs, lower in comparisons
    ]  # fmt: skip
