"""The hub client library (custom_components/kiwi/api) on its own: no Home Assistant.

Against the real hub where the hub can show the behaviour, and against small local servers
that break the protocol in the ways a client must survive (proxies, old or broken hubs).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.kiwi.api import (
    Backoff,
    Hello,
    KiwiAuthenticationError,
    KiwiClient,
    KiwiConnectionError,
    KiwiError,
    KiwiEvent,
    KiwiEventStream,
    KiwiResponseError,
)
from tests.ha.kiwi_common import hub_client_for
from tests.support.hub_process import HubProcess

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorder:
    """An EventStreamListener that writes down what it is told."""

    events: list[tuple[KiwiEvent, bool]] = field(default_factory=list)
    hellos: list[tuple[Hello, bool]] = field(default_factory=list)
    errors: list[KiwiError] = field(default_factory=list)
    auth_failures: list[KiwiAuthenticationError] = field(default_factory=list)
    told: asyncio.Event = field(default_factory=asyncio.Event)

    def on_connected(self, hello: Hello, *, reconnected: bool) -> None:
        self.hellos.append((hello, reconnected))

    def on_event(self, event: KiwiEvent, *, replayed: bool) -> None:
        self.events.append((event, replayed))
        self.told.set()

    def on_disconnected(self, error: KiwiError) -> None:
        self.errors.append(error)

    def on_auth_failed(self, error: KiwiAuthenticationError) -> None:
        self.auth_failures.append(error)


@pytest.fixture
async def serve(socket_enabled: None) -> AsyncIterator[Callable[..., Awaitable[KiwiClient]]]:
    """Serve handlers on 127.0.0.1; a client pointed at them."""
    servers: list[TestServer] = []
    session = aiohttp.ClientSession()

    async def start(routes: dict[str, Handler], request_timeout: float = 10.0) -> KiwiClient:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_route("*", path, handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return KiwiClient(
            "127.0.0.1", server.port, "token", session, request_timeout=request_timeout
        )

    yield start
    await session.close()
    for server in servers:
        await server.close()


def websocket(*frames: str | bytes, close_code: int = 1000, linger: float = 0) -> Handler:
    """A /api/events that sends `frames`, waits `linger` seconds, then closes."""

    async def handler(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        for frame in frames:
            if isinstance(frame, bytes):
                await socket.send_bytes(frame)
            else:
                await socket.send_str(frame)
        await asyncio.sleep(linger)  # how long the server keeps the socket open: the case
        await socket.close(code=close_code)
        return socket

    return handler


HELLO = json.dumps({"event": "hello", "data": {"seq": 5, "replay": 0, "version": "0.1.0"}})


def frame(event: str, seq: int | None, **data: object) -> str:
    """One event frame."""
    return json.dumps({"event": event, "data": data, "timestamp": 1.0, "source": "t", "seq": seq})


async def run_until(stream: KiwiEventStream, recorder: Recorder, done: Callable[[], bool]) -> None:
    """Run the stream until `done()` holds after an event; then stop it."""
    task = asyncio.create_task(stream.run())
    try:
        async with asyncio.timeout(10):
            while not done():
                await recorder.told.wait()
                recorder.told.clear()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_only_hub_events_reach_the_listener(
    serve: Callable[..., Awaitable[KiwiClient]],
) -> None:
    """Junk, connection frames and repeats are dropped; events come once, in order."""
    client = await serve(
        {
            "/api/events": websocket(
                HELLO,
                "not json",
                "[1, 2]",
                b"\x00\x01",
                json.dumps({"event": "pong"}),
                json.dumps({"data": {}}),
                frame("SOUL_CHANGED", 6, soul="comedian"),
                frame("SOUL_CHANGED", 6, soul="comedian"),
                frame("STATE_CHANGED", 4, new="IDLE"),
                frame("CONTEXT_RESET", None),
                frame("TTS_FINISHED", 7),
                linger=5,
            )
        }
    )
    recorder = Recorder()
    stream = KiwiEventStream(client, recorder)
    await stream.connect()
    await run_until(stream, recorder, lambda: len(recorder.events) == 3)
    assert [(e.event, e.seq) for e, _ in recorder.events] == [
        ("SOUL_CHANGED", 6),
        ("CONTEXT_RESET", None),
        ("TTS_FINISHED", 7),
    ]
    assert stream.last_seq == 7
    assert recorder.hellos == [(Hello(last_seq=5, replay=0, version="0.1.0"), False)]


@pytest.mark.parametrize(
    ("handler", "error", "message"),
    [
        (websocket(frame("SOUL_CHANGED", 1)), KiwiConnectionError, "did not start with a hello"),
        (websocket(close_code=4401), KiwiAuthenticationError, "refused the token"),
        (websocket(close_code=1011), KiwiConnectionError, "code 1011"),
    ],
)
async def test_connect_failures(
    serve: Callable[..., Awaitable[KiwiClient]], handler: Handler, error: type, message: str
) -> None:
    """What the socket says before (or instead of) its hello decides the error."""
    client = await serve({"/api/events": handler})
    with pytest.raises(error, match=message):
        await KiwiEventStream(client, Recorder()).connect()


@pytest.mark.parametrize(
    ("status", "error"), [(401, KiwiAuthenticationError), (502, KiwiConnectionError)]
)
async def test_refused_upgrade(
    serve: Callable[..., Awaitable[KiwiClient]], status: int, error: type
) -> None:
    """A proxy that answers the upgrade with an HTTP error."""

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=status)

    client = await serve({"/api/events": refuse})
    with pytest.raises(error):
        await KiwiEventStream(client, Recorder()).connect()


async def test_no_hello_in_time(
    serve: Callable[..., Awaitable[KiwiClient]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket that stays silent is given up on."""
    monkeypatch.setattr("custom_components.kiwi.api.events.CONNECT_TIMEOUT", 0.2)
    client = await serve({"/api/events": websocket(linger=2)})
    with pytest.raises(KiwiConnectionError, match="no hello"):
        await KiwiEventStream(client, Recorder()).connect()


async def test_unreachable_hub(socket_enabled: None) -> None:
    """Nothing listens: a connection error, for REST and the stream alike."""
    async with aiohttp.ClientSession() as session:
        client = KiwiClient("127.0.0.1", 1, "token", session)
        with pytest.raises(KiwiConnectionError):
            await client.status()
        with pytest.raises(KiwiConnectionError):
            await KiwiEventStream(client, Recorder()).connect()


async def test_rest_answers_a_client_must_not_trust(
    serve: Callable[..., Awaitable[KiwiClient]],
) -> None:
    """Non-JSON, a JSON list, a hub error body, and an answer that never comes."""

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy</html>")

    async def array(request: web.Request) -> web.Response:
        return web.json_response([1])

    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "boom", "message": "it broke"}}, status=500)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)  # an answer later than the client's time limit: the case tested
        return web.json_response({})

    client = await serve(
        {"/api/status": text, "/api/config": array, "/api/souls": failing, "/api/stop": slow},
        request_timeout=0.2,
    )
    with pytest.raises(KiwiResponseError, match="without a JSON object"):
        await client.status()
    with pytest.raises(KiwiResponseError, match="without a JSON object"):
        await client.config()
    with pytest.raises(KiwiResponseError, match="it broke") as raised:
        await client.souls()
    assert (raised.value.status, raised.value.code) == (500, "boom")
    with pytest.raises(KiwiConnectionError, match="no answer in time"):
        await client.stop()


async def test_replay_gap_is_survived(
    start_kiwi_hub: Callable[..., HubProcess], hub_session: aiohttp.ClientSession
) -> None:
    """The hub kept too few events to replay all: the client says so and goes on."""
    hub = start_kiwi_hub(args=["--event-log-size", "1"])
    client = hub_client_for(hub, hub_session)
    recorder = Recorder()
    stream = KiwiEventStream(client, recorder, backoff=Backoff(initial=0.05, maximum=0.1))
    await stream.connect()
    await client.set_soul("comedian")
    await run_until(stream, recorder, lambda: len(recorder.events) == 1)
    await stream.close()

    for soul in ("butler", "storyteller", "default"):
        await client.set_soul(soul)
    await stream.connect()
    await run_until(stream, recorder, lambda: len(recorder.events) >= 2)
    last, replayed = recorder.events[-1]
    assert last.data["soul"] == "default"
    assert replayed is True


async def test_refused_token_stops_the_stream(
    kiwi_hub: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    """The real hub closes the socket with 4401: run() reports it once and ends."""
    client = KiwiClient("127.0.0.1", kiwi_hub.port, "wrong", hub_session)
    recorder = Recorder()
    async with asyncio.timeout(10):
        await KiwiEventStream(client, recorder).run()
    assert len(recorder.auth_failures) == 1


def test_backoff() -> None:
    """Delays double up to the maximum and start over after a success."""
    backoff = Backoff(initial=1, maximum=5)
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next_delay() == 1
