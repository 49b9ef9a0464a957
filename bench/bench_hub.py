"""Event fan-out of the hub: events/s and delivery latency to 100 WebSocket clients while one
more client has stopped reading (it must be cut off without slowing anyone).

A child process runs the real hub (kiwi_voice.hub: context, bus, SQLite replay log, aiohttp app)
and publishes CONTEXT_RESET events on its bus on command; this process holds the clients. Latency
is a frame's arrival time minus the `timestamp` the bus stamped on it (same machine clock).
- throughput: BURST events published back to back; events/s = BURST / time until every healthy
  client has all of them (each event is one frame to each of the 100 clients).
- latency: RATE events/s for LATENCY_EVENTS events; p50/p99/max over every client's frames.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

CLIENTS = 100
BURST = 5_000
RATE = 200
LATENCY_EVENTS = 2_000


# ---- child: the hub plus a publisher ------------------------------------------------------------


def _hub_main(data_dir: str, port: int, conn: Connection) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_hub_serve(Path(data_dir), port, conn))


async def _hub_serve(data_dir: Path, port: int, conn: Connection) -> None:
    from aiohttp import web

    from kiwi_voice.hub.app import build_app
    from kiwi_voice.hub.context import build_context
    from kiwi_voice.hub.event_payloads import EventType, context_reset
    from kiwi_voice.hub.options import HubOptions
    from kiwi_voice.hub.voice.setup import build_pipeline

    options = HubOptions(host="127.0.0.1", port=port, data_dir=data_dir, souls_dir=None)
    context = build_context(options, {})
    # The pipeline's controls, not started: this benchmark measures the event stream alone.
    runner = web.AppRunner(
        build_app(context, build_pipeline(context, {}).controls), access_log=None
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    loop = asyncio.get_running_loop()
    conn.send(("ready", context.token))
    while True:
        command, count, rate = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        interval = 1.0 / rate if rate else 0.0
        started = time.perf_counter()
        for index in range(count):
            context.bus.publish(EventType.CONTEXT_RESET, context_reset(), "bench")
            if interval:
                delay = started + (index + 1) * interval - time.perf_counter()
                await asyncio.sleep(max(delay, 0))
            elif index % 50 == 49:
                await asyncio.sleep(0)  # let the per-client pumps run, as a real loop would
        conn.send(("published", time.perf_counter() - started, context.bus.subscriber_count))
    await runner.cleanup()
    await context.close()


# ---- this process: the clients ------------------------------------------------------------------


def _stalled_client(port: int, token: str) -> socket.socket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /api/events?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    raw.sendall(request.encode())
    return raw  # never read again


class _Client:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last_seq = 0
        self.target = 0
        self.reached = asyncio.Event()

    def expect(self, seq: int) -> None:
        self.target = seq
        self.latencies = []
        self.reached.clear()
        if self.last_seq >= seq:
            self.reached.set()

    async def read(self, ws: Any) -> None:
        import json

        async for message in ws:
            frame = json.loads(message.data)
            if "seq" not in frame:
                continue
            self.latencies.append(time.time() - frame["timestamp"])
            if frame["seq"] != self.last_seq + 1 and self.last_seq:
                raise AssertionError(f"gap: {self.last_seq} -> {frame['seq']}")
            self.last_seq = frame["seq"]
            if self.last_seq >= self.target:
                self.reached.set()


async def _measure(port: int, token: str, conn: Connection) -> dict[str, Any]:
    import aiohttp

    loop = asyncio.get_running_loop()
    stalled = _stalled_client(port, token)
    async with aiohttp.ClientSession() as session:
        sockets = [
            await session.ws_connect(f"http://127.0.0.1:{port}/api/events", params={"token": token})
            for _ in range(CLIENTS)
        ]
        clients = [_Client() for _ in sockets]
        readers = [asyncio.create_task(c.read(ws)) for c, ws in zip(clients, sockets, strict=True)]
        seq = 0

        async def publish(count: int, rate: int) -> tuple[float, float, int]:
            nonlocal seq
            seq += count
            for client in clients:
                client.expect(seq)
            started = time.perf_counter()
            conn.send(("publish", count, rate))
            await asyncio.wait_for(asyncio.gather(*(c.reached.wait() for c in clients)), 300)
            delivered = time.perf_counter() - started
            _reply, publish_seconds, subscribers = await loop.run_in_executor(None, conn.recv)
            return delivered, publish_seconds, subscribers

        await publish(200, 0)  # warm-up
        delivered, publish_seconds, subscribers = await publish(BURST, 0)
        latency_delivered, _, _ = await publish(LATENCY_EVENTS, RATE)
        latencies = sorted(x * 1000 for c in clients for x in c.latencies)
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
    stalled.close()
    return {
        "ws_clients": CLIENTS,
        "stalled_clients": 1,
        "burst_events": BURST,
        "throughput_events_per_s": round(BURST / delivered),
        "throughput_frames_per_s": round(BURST * CLIENTS / delivered),
        "publish_events_per_s": round(BURST / publish_seconds),
        "latency_rate_events_per_s": RATE,
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "latency_max_ms": round(latencies[-1], 2),
        "latency_phase_seconds": round(latency_delivered, 2),
        "stalled_client_cut_off": subscribers == CLIENTS,
    }


def run(results: dict[str, Any]) -> None:
    section: dict[str, Any] = results.setdefault("hub", {})
    notes: list[str] = section.setdefault("notes", [])
    from tests.support.ports import free_port

    port = free_port()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    with tempfile.TemporaryDirectory(prefix="kiwi-bench-hub.") as data_dir:
        process = context.Process(target=_hub_main, args=(data_dir, port, child), daemon=True)
        process.start()
        try:
            if not parent.poll(60):
                raise RuntimeError("the hub did not start")
            _ready, token = parent.recv()
            section.update(asyncio.run(_measure(port, token, parent)))
            parent.send(("stop", 0, 0))
        finally:
            process.join(10)
            if process.is_alive():
                process.kill()
    notes.append(
        f"{CLIENTS} WebSocket clients in one process plus 1 that never reads, on 127.0.0.1; "
        "the clients share the CPU with the hub, so throughput is a floor"
    )
    _LOGGER.info("hub: %s", {k: v for k, v in section.items() if k != "notes"})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    collected: dict[str, Any] = {}
    run(collected)
    print(collected)
