"""Load on a running hub: N live /api/audio microphones and M /api/events listeners at once.

Used by tests/addon/test_faults_load.py (short) and bench/bench_load.py (60 s). Each microphone
streams PCM in real time (100 ms frames) and says "hey jarvis, <command>" on a schedule: one
utterance every `gap_s` seconds, round-robin over the microphones, so turns keep coming and
some barge in on others (Kiwi is one voice: a new wake word interrupts the turn speaking).
Each listener records every event's seq. The resident memory (VmRSS) of the given processes
is sampled twice a second.

What counts as an error: an `error` frame on a microphone, an ERROR event, a socket the hub
closed, or a listener that did not get every event exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

FRAME_BYTES = 3200  # 100 ms of 16 kHz s16 mono
FRAME_S = 0.1
DRAIN_LIMIT_S = 90.0  # after the load: turns still under way get this long to end
LEAD_IN_S = 0.5  # silence before the first utterance


def utterance_gap(seconds: float, microphones: int, utterance: bytes) -> float:
    """The gap between utterances that lets every microphone speak once within `seconds`."""
    return max(0.1, (seconds - LEAD_IN_S - len(utterance) / 32000) / microphones)


def trimmed_utterance(pcm: bytes, lead_in_s: float = 0.2) -> bytes:
    """espeak clips carry 1 s of silence at each end: keep `lead_in_s` before the speech, all
    the silence after it (it lets Kiwi hear the end of the utterance)."""
    return pcm[int((1.0 - lead_in_s) * 16000) * 2 :]


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Microphone:
    index: int
    utterances_sent: int = 0
    listening: int = 0
    ended: int = 0
    interrupted: int = 0
    audio_bytes: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    closed_by_hub: bool = False


@dataclass
class Listener:
    seqs: list[int] = field(default_factory=list)
    first_seq: int | None = None
    closed_by_hub: bool = False
    error_events: list[dict[str, Any]] = field(default_factory=list)
    turn_metrics: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LoadResult:
    seconds: float
    microphones: list[Microphone]
    listeners: list[Listener]
    final_seq: int
    rss_samples_mb: dict[str, list[float]]
    drained: bool

    def errors(self) -> list[str]:
        problems: list[str] = []
        for mic in self.microphones:
            problems += [f"microphone {mic.index}: error frame {e}" for e in mic.errors]
            if mic.closed_by_hub:
                problems.append(f"microphone {mic.index}: the hub closed the socket")
        for number, listener in enumerate(self.listeners):
            if listener.closed_by_hub:
                problems.append(f"listener {number}: the hub closed the socket")
            problems += [f"listener {number}: ERROR {e}" for e in listener.error_events[:3]]
            expected = list(range((listener.first_seq or 0) + 1, self.final_seq + 1))
            if listener.seqs != expected:
                problems.append(
                    f"listener {number}: {len(listener.seqs)} events, expected {len(expected)} "
                    "each exactly once and in order"
                )
        if not self.drained:
            problems.append("turns were still under way after the drain limit")
        return problems

    def completed_turn_metrics(self) -> list[dict[str, Any]]:
        """TURN_METRICS of the turns that were not interrupted (as the first listener saw them)."""
        metrics = self.listeners[0].turn_metrics if self.listeners else []
        return [m for m in metrics if not m["interrupted"] and m.get("first_audio_ms")]

    def summary(self) -> dict[str, Any]:
        mics = self.microphones
        completed = self.completed_turn_metrics()
        return {
            "seconds": round(self.seconds, 1),
            "audio_sessions": len(mics),
            "event_clients": len(self.listeners),
            "utterances_sent": sum(m.utterances_sent for m in mics),
            "wake_words_detected": sum(m.listening for m in mics),
            "turns_ended": sum(m.ended for m in mics),
            "turns_interrupted_by_barge_in": sum(m.interrupted for m in mics),
            "tts_audio_seconds_sent": round(sum(m.audio_bytes for m in mics) / 32000, 1),
            "events_per_client": len(self.listeners[0].seqs) if self.listeners else 0,
            "completed_turns_first_audio_ms_median": _median(
                [m["first_audio_ms"] for m in completed]
            ),
            "completed_turns_total_ms_median": _median([m["total_ms"] for m in completed]),
            "errors": len(self.errors()),
            "rss_mb": {
                name: {
                    "start": round(samples[0], 1),
                    "peak": round(max(samples), 1),
                    "end": round(samples[-1], 1),
                }
                for name, samples in self.rss_samples_mb.items()
                if samples
            },
        }


async def run_load(
    ws_url: str,
    token: str,
    utterance: bytes,
    pids: Mapping[str, int],
    *,
    seconds: float,
    microphones: int = 10,
    listeners: int = 100,
    gap_s: float = 1.0,
) -> LoadResult:
    """Run the load against the hub at `ws_url` (ws://host:port) for `seconds`."""
    connector = aiohttp.TCPConnector(limit=0)  # 110 sockets: more than aiohttp's default 100
    rss: dict[str, list[float]] = {name: [] for name in pids}
    async with aiohttp.ClientSession(connector=connector) as http:
        events = [Listener() for _ in range(listeners)]
        sockets = [
            await http.ws_connect(f"{ws_url}/api/events?token={token}", max_msg_size=0)
            for _ in events
        ]
        readers = [
            asyncio.create_task(_listen(ws, lst)) for ws, lst in zip(sockets, events, strict=True)
        ]
        mics = [Microphone(i) for i in range(microphones)]
        stop_at = time.monotonic() + seconds
        sampler = asyncio.create_task(_sample_rss(pids, rss))
        started = time.monotonic()
        drained = await _speak(
            http, f"{ws_url}/api/audio?token={token}", mics, utterance, stop_at=stop_at, gap_s=gap_s
        )
        elapsed = time.monotonic() - started
        async with http.get(
            f"{ws_url.replace('ws', 'http', 1)}/api/status",
            headers={"Authorization": f"Bearer {token}"},
        ) as answer:
            final_seq = int((await answer.json())["event_seq"])
        deadline = time.monotonic() + 15
        while any((lst.seqs[-1] if lst.seqs else lst.first_seq or 0) < final_seq for lst in events):
            if time.monotonic() > deadline:
                break  # not drained in time is a result the benchmark reports, not a failure
            await asyncio.sleep(0.05)  # polls the listeners' progress until the deadline
        sampler.cancel()
        for task in readers:
            task.cancel()
        await asyncio.gather(sampler, *readers, return_exceptions=True)
        for ws in sockets:
            await ws.close()
    return LoadResult(elapsed, mics, events, final_seq, rss, drained)


async def _sample_rss(pids: Mapping[str, int], rss: dict[str, list[float]]) -> None:
    while True:
        for name, pid in pids.items():
            value = rss_mb(pid)
            if value is not None:
                rss[name].append(value)
        await asyncio.sleep(0.5)  # the sampling period


async def _listen(ws: aiohttp.ClientWebSocketResponse, listener: Listener) -> None:
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        frame = json.loads(message.data)
        if frame["event"] == "hello":
            listener.first_seq = frame["data"]["seq"]
        elif "seq" in frame:
            listener.seqs.append(frame["seq"])
            if frame["event"] == "ERROR":
                listener.error_events.append(frame["data"])
            elif frame["event"] == "TURN_METRICS":
                listener.turn_metrics.append(frame["data"])
    listener.closed_by_hub = True


async def _speak(
    http: aiohttp.ClientSession,
    url: str,
    mics: list[Microphone],
    utterance: bytes,
    *,
    stop_at: float,
    gap_s: float,
) -> bool:
    """Stream every microphone until `stop_at`, then silence until every turn has ended."""
    sockets = [await http.ws_connect(url) for _ in mics]
    for ws in sockets:
        await ws.send_str(json.dumps({"type": "hello", "client": "load"}))
    pairs = list(zip(sockets, mics, strict=True))
    readers = [asyncio.create_task(_mic_frames(ws, mic)) for ws, mic in pairs]
    period = gap_s * len(mics)
    start = time.monotonic()
    streams = [
        asyncio.create_task(
            _stream(
                ws,
                mic,
                utterance,
                first_at=start + LEAD_IN_S + mic.index * gap_s,
                period=period,
                stop_at=stop_at,
            )
        )
        for ws, mic in pairs
    ]
    await asyncio.gather(*streams)
    drain_until = time.monotonic() + DRAIN_LIMIT_S
    silence = b"\x00" * FRAME_BYTES
    drained = False
    while time.monotonic() < drain_until:
        if all(m.ended >= m.listening for m in mics):
            drained = True
            break
        for ws in sockets:  # trailing silence lets each capture end (end of speech)
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(silence)
        await asyncio.sleep(FRAME_S)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws in sockets:
        await ws.close()
    return drained


async def _stream(
    ws: aiohttp.ClientWebSocketResponse,
    mic: Microphone,
    utterance: bytes,
    *,
    first_at: float,
    period: float,
    stop_at: float,
) -> None:
    """Real-time PCM: silence, and `utterance` starting at first_at, first_at + period, ..."""
    silence = b"\x00" * FRAME_BYTES
    next_utterance = first_at
    tape = b""
    tick = time.monotonic()
    while tick < stop_at:
        if (
            not tape
            and tick >= next_utterance
            and next_utterance + len(utterance) / 32000 < stop_at
        ):
            tape = utterance
            mic.utterances_sent += 1
            next_utterance += period
        frame, tape = (tape[:FRAME_BYTES], tape[FRAME_BYTES:]) if tape else (silence, b"")
        await ws.send_bytes(frame.ljust(FRAME_BYTES, b"\x00"))
        tick += FRAME_S
        await asyncio.sleep(max(0.0, tick - time.monotonic()))


async def _mic_frames(ws: aiohttp.ClientWebSocketResponse, mic: Microphone) -> None:
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            mic.audio_bytes += len(message.data)
            continue
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        frame = json.loads(message.data)
        kind = frame.get("type")
        if kind == "listening":
            mic.listening += 1
        elif kind == "end":
            mic.ended += 1
            mic.interrupted += bool(frame.get("interrupted"))
        elif kind == "error":
            mic.errors.append(frame)
    mic.closed_by_hub = True
