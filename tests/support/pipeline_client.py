"""Test clients of the hub's voice pipeline: an /api/audio WebSocket that records every frame
(JSON and binary, in arrival order) and an /api/events listener.

    async with AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client:
        await client.send({"type": "text_input", "text": "hello"})
        end = await client.wait_frame("end")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

WAIT_S = 15.0


@dataclass
class Received:
    """One frame as it arrived: JSON (`frame`) or binary audio (`audio`)."""

    index: int
    frame: dict[str, Any] | None = None
    audio: bytes | None = None


@dataclass
class AudioClient:
    ws: aiohttp.ClientWebSocketResponse
    received: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, session: aiohttp.ClientSession, url: str, hello: dict[str, Any] | None = None
    ) -> AsyncIterator[AudioClient]:
        """Connect; with `hello` (may be {}) the handshake is done before this yields."""
        ws = await session.ws_connect(url, max_msg_size=8 * 1024 * 1024)
        client = cls(ws)
        client._reader = asyncio.create_task(client._read())
        try:
            if hello is not None:
                await client.send({"type": "hello", **hello})
                await client.wait_frame("hello_ack")
            yield client
        finally:
            client._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client._reader
            await ws.close()

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                item = Received(len(self.received), frame=json.loads(message.data))
            elif message.type == aiohttp.WSMsgType.BINARY:
                item = Received(len(self.received), audio=message.data)
            else:
                continue
            async with self._changed:
                self.received.append(item)
                self._changed.notify_all()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def send_audio(self, pcm: bytes, chunk_bytes: int = 3200, pace_s: float = 0.0) -> None:
        """Send PCM as binary frames (optionally paced like a live microphone)."""
        for offset in range(0, len(pcm), chunk_bytes):
            await self.ws.send_bytes(pcm[offset : offset + chunk_bytes])
            if pace_s:
                await asyncio.sleep(pace_s)

    async def wait(self, predicate: Callable[[Received], bool], wait_s: float = WAIT_S) -> Received:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: any(predicate(r) for r in self.received)), wait_s
            )
            return next(r for r in self.received if predicate(r))

    async def wait_frame(
        self, frame_type: str, wait_s: float = WAIT_S, **match: Any
    ) -> dict[str, Any]:
        def wanted(item: Received) -> bool:
            frame = item.frame
            return (
                frame is not None
                and frame.get("type") == frame_type
                and all(frame.get(k) == v for k, v in match.items())
            )

        item = await self.wait(wanted, wait_s)
        assert item.frame is not None
        return item.frame

    def frames(self, frame_type: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [
            r.frame
            for r in self.received
            if r.frame is not None
            and (frame_type is None or r.frame.get("type") == frame_type)
            and all(r.frame.get(k) == v for k, v in match.items())
        ]

    def audio_bytes(self) -> int:
        return sum(len(r.audio) for r in self.received if r.audio is not None)

    def index_of(self, frame_type: str, **match: Any) -> int:
        return next(
            r.index
            for r in self.received
            if r.frame is not None
            and r.frame.get("type") == frame_type
            and all(r.frame.get(k) == v for k, v in match.items())
        )


@dataclass
class EventLog:
    """Everything published on /api/events while connected."""

    ws: aiohttp.ClientWebSocketResponse
    events: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, session: aiohttp.ClientSession, url: str) -> AsyncIterator[EventLog]:
        ws = await session.ws_connect(url)
        log = cls(ws)
        hello = json.loads((await ws.receive()).data)
        assert hello["event"] == "hello"
        reader = asyncio.create_task(log._read())
        try:
            yield log
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                async with self._changed:
                    self.events.append(json.loads(message.data))
                    self._changed.notify_all()

    async def wait(self, event: str, wait_s: float = WAIT_S, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in self.events
                    if e.get("event") == event
                    and all(e["data"].get(k) == v for k, v in match.items())
                ),
                None,
            )

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), wait_s)
        result = found()
        assert result is not None
        return result

    def names(self) -> list[str]:
        return [e["event"] for e in self.events if "seq" in e]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e.get("event") == event]


def is_subsequence(wanted: list[str], actual: list[str]) -> bool:
    """Whether `wanted` appears in `actual` in this order (other items may come between)."""
    remaining = iter(actual)
    return all(any(item == name for item in remaining) for name in wanted)


@contextlib.contextmanager
def background_browser(url: str) -> Iterator[None]:
    """An /api/audio client that stays connected (handshake done) in a thread of its own, for
    synchronous tests: the hub has somewhere to play (POST /api/tts/test answers 503
    `no_audio_output` while nothing is connected). It reads and drops whatever it is sent."""
    connected = threading.Event()
    failed: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = loop.create_future()

    async def run() -> None:
        try:
            async with (
                aiohttp.ClientSession() as session,
                AudioClient.connect(session, url, hello={}),
            ):
                connected.set()
                await stop
        except BaseException as err:  # reported by the waiting test thread
            failed.append(err)
            connected.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        if not connected.wait(WAIT_S) or failed:
            raise RuntimeError(f"the background browser did not connect: {failed}")
        yield
    finally:
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        thread.join(WAIT_S)
        loop.close()
