"""The hub's event stream (/api/events): connect, resume with ``since``, reconnect with backoff."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

from .client import KiwiClient, connection_reason
from .errors import KiwiAuthenticationError, KiwiConnectionError, KiwiError
from .models import Hello, KiwiEvent

_LOGGER = logging.getLogger(__name__)

# Frames about the connection itself are lower case; hub events are upper case.
HELLO_FRAME = "hello"
REPLAY_GAP_FRAME = "replay_gap"
# Close codes by which the hub refuses a token on an upgraded socket (4000 + HTTP status).
AUTH_CLOSE_CODES = frozenset({1008, 4401, 4403})
CONNECT_TIMEOUT = 10.0
# A WebSocket ping after this long without a frame, answered within half of it: a hub that hangs
# (its process stopped, its sockets still open) is noticed within 1.5x this, and reported lost.
HEARTBEAT_SECONDS = 6.0


class EventStreamListener(Protocol):
    """What the stream tells its owner. Called on the event loop, never concurrently."""

    def on_connected(self, hello: Hello, *, reconnected: bool) -> None:
        """The hub greeted us; replayed and live events follow."""

    def on_event(self, event: KiwiEvent, *, replayed: bool) -> None:
        """One event, in hub order, never twice. ``replayed``: it happened while we were away."""

    def on_disconnected(self, error: KiwiError) -> None:
        """The connection is gone; the stream keeps retrying."""

    def on_auth_failed(self, error: KiwiAuthenticationError) -> None:
        """The hub refused the token; the stream stops retrying."""


@dataclass(slots=True)
class Backoff:
    """Exponential reconnect delays: initial, initial*factor, ... capped at maximum."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    _next: float = 0.0

    def reset(self) -> None:
        """Start over after a successful connection."""
        self._next = self.initial

    def next_delay(self) -> float:
        """The delay to wait before the next attempt."""
        delay = self._next or self.initial
        self._next = min(delay * self.factor, self.maximum)
        return delay


class KiwiEventStream:
    """Keeps one WebSocket to /api/events open for as long as ``run`` runs.

    Every frame's ``seq`` is remembered; a reconnect asks for ``since=<last seq>`` so the hub
    replays what happened in between (also across a hub restart: its log is persistent).
    """

    def __init__(
        self,
        client: KiwiClient,
        listener: EventStreamListener,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        """Prepare the stream; nothing connects until ``connect`` or ``run``."""
        self._client = client
        self._listener = listener
        self._backoff = backoff or Backoff()
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._has_connected = False
        self._replay_until: int | None = None
        self.last_seq: int | None = None
        self.connected = False

    def events_path(self) -> str:
        """Path and query of the stream; the token travels in a header, never in the URL."""
        if self.last_seq is None:
            return "/api/events"
        return f"/api/events?{urlencode({'since': self.last_seq})}"

    async def connect(self) -> Hello:
        """Open the socket and wait for the hub's hello; raises KiwiError on failure."""
        socket = await self._open()
        try:
            hello = await self._receive_hello(socket)
        except BaseException:
            await socket.close()
            raise
        self._socket = socket
        self._backoff.reset()
        self._greeted(hello)
        return hello

    async def run(self) -> None:
        """Read events until cancelled; reconnect with backoff whenever the socket drops."""
        try:
            while True:
                if self._socket is None:
                    try:
                        await self.connect()
                    except KiwiAuthenticationError as err:
                        self._lost(err)
                        self._listener.on_auth_failed(err)
                        return
                    except KiwiError as err:
                        self._lost(err)
                        await asyncio.sleep(self._backoff.next_delay())
                        continue
                error = await self._read_until_closed()
                if isinstance(error, KiwiAuthenticationError):
                    self._lost(error)
                    self._listener.on_auth_failed(error)
                    return
                self._lost(error)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the socket if one is open."""
        socket, self._socket = self._socket, None
        self.connected = False
        if socket is not None and not socket.closed:
            await socket.close()

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        url = f"{self._client.base_url}{self.events_path()}"
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await self._client.session.ws_connect(
                    url, headers=self._client.auth_headers, heartbeat=HEARTBEAT_SECONDS
                )
        except aiohttp.WSServerHandshakeError as err:
            if err.status in (401, 403):
                raise KiwiAuthenticationError("The hub refused the token") from err
            raise KiwiConnectionError(f"Event stream refused: HTTP {err.status}") from err
        except (TimeoutError, aiohttp.ClientError) as err:
            raise KiwiConnectionError(connection_reason(err)) from err

    async def _receive_hello(self, socket: aiohttp.ClientWebSocketResponse) -> Hello:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                message = await socket.receive()
        except TimeoutError as err:
            raise KiwiConnectionError("The hub sent no hello frame") from err
        frame = self._frame(message, socket)
        if isinstance(frame, KiwiError):
            raise frame
        if frame.get("event") != HELLO_FRAME:
            raise KiwiConnectionError("The event stream did not start with a hello frame")
        return Hello.from_dict(frame)

    def _greeted(self, hello: Hello) -> None:
        if (
            hello.last_seq is not None
            and self.last_seq is not None
            and hello.last_seq < self.last_seq
        ):
            # The hub's log starts lower than what we saw: it was reset, nothing to replay.
            self.last_seq = hello.last_seq
        if self.last_seq is None:
            # Resume from here even if the socket drops before the first event arrives.
            self.last_seq = hello.last_seq
        self._replay_until = hello.last_seq
        reconnected = self._has_connected
        self._has_connected = True
        self.connected = True
        self._listener.on_connected(hello, reconnected=reconnected)

    async def _read_until_closed(self) -> KiwiError:
        """Dispatch frames until the socket ends; return why it ended."""
        socket = self._socket
        assert socket is not None
        try:
            while True:
                message = await socket.receive()
                frame = self._frame(message, socket)
                if isinstance(frame, KiwiError):
                    return frame
                self._dispatch(frame)
        finally:
            self._socket = None
            await socket.close()

    def _dispatch(self, frame: dict[str, Any]) -> None:
        name = frame.get("event")
        if name == REPLAY_GAP_FRAME:
            _LOGGER.warning("The hub no longer holds every missed event: %s", frame.get("data"))
            return
        if not isinstance(name, str) or not name.isupper():
            # hello, pong, error (about a frame we sent): the connection's own frames.
            _LOGGER.debug("Ignoring a frame that is not a hub event: %s", frame)
            return
        event = KiwiEvent.from_dict(frame)
        if event.seq is not None:
            if self.last_seq is not None and event.seq <= self.last_seq:
                return
            self.last_seq = event.seq
        replayed = (
            event.seq is not None
            and self._replay_until is not None
            and event.seq <= self._replay_until
        )
        self._listener.on_event(event, replayed=replayed)

    @staticmethod
    def _frame(
        message: aiohttp.WSMessage, socket: aiohttp.ClientWebSocketResponse
    ) -> dict[str, Any] | KiwiError:
        """Decode a text frame, or say why the socket is done."""
        if message.type == aiohttp.WSMsgType.TEXT:
            try:
                frame = json.loads(message.data)
            except ValueError:
                return {}
            return frame if isinstance(frame, dict) else {}
        if message.type == aiohttp.WSMsgType.BINARY:
            return {}
        close_code = socket.close_code
        if message.type == aiohttp.WSMsgType.CLOSE and isinstance(message.data, int):
            close_code = message.data
        if close_code in AUTH_CLOSE_CODES:
            return KiwiAuthenticationError("The hub refused the token")
        return KiwiConnectionError(f"The hub closed the event stream (code {close_code})")

    def _lost(self, error: KiwiError) -> None:
        self.connected = False
        self._listener.on_disconnected(error)
