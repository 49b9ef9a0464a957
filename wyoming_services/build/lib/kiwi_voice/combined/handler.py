"""One client connection of the combined endpoint, proxied to the backend its requests belong to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler

from kiwi_voice.common.errors import ErrorCode

from .info import InfoCollector
from .routing import DEFERRED_EVENTS, Mode, mode_opened_by

_LOGGER = logging.getLogger(__name__)

BACKEND_CONNECT_TIMEOUT_S = 5.0
# Not one of the services' own codes: only the combined endpoint can fail to reach a service.
SERVICE_UNAVAILABLE = "service_unavailable"


class _Backend:
    """An open connection to one backend service and the task that copies its events back."""

    def __init__(self, mode: Mode, client: AsyncClient, pump: asyncio.Task[None]) -> None:
        self.mode = mode
        self.client = client
        self.pump = pump

    async def close(self) -> None:
        self.pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.pump
        with contextlib.suppress(OSError):
            await self.client.disconnect()


class CombinedEventHandler(AsyncEventHandler):
    """Routes a connection's events: `describe` and `ping` answered here, the rest proxied.

    The first request event of a kind (`transcribe`, `synthesize*`, `detect`) opens a connection to
    that backend; events that carry no mode of their own (audio-*) follow the open one. A request of
    another kind on the same connection closes the old backend connection and opens the new one.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        backends: Mapping[Mode, str],
        info: InfoCollector,
    ) -> None:
        super().__init__(reader, writer)
        self._backends = backends
        self._info = info
        self._backend: _Backend | None = None
        self._deferred: list[Event] = []
        self._write_lock = asyncio.Lock()
        self._reported_unrouted = False

    async def write_event(self, event: Event) -> None:
        # The backend pump and this handler both write to the client.
        async with self._write_lock:
            await super().write_event(event)

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event((await self._info.merged_info()).event())
            return True
        if Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
            return True
        if event.type in DEFERRED_EVENTS:
            self._deferred.append(event)
            return True

        mode = mode_opened_by(event.type)
        switching = self._backend is None or self._backend.mode != mode
        if mode is not None and switching and not await self._open(mode):
            return True
        backend = self._backend
        if backend is None:
            await self._report_unrouted(event)
            return True
        try:
            await backend.client.write_event(event)
        except OSError as err:
            _LOGGER.warning(
                "Lost the %s service while forwarding %s: %s", backend.mode, event.type, err
            )
            await self._close_backend()
            await self.write_event(
                Error(
                    text=f"Kiwi's {backend.mode} service went away", code=SERVICE_UNAVAILABLE
                ).event()
            )
        return True

    async def disconnect(self) -> None:
        await self._close_backend()

    async def _open(self, mode: Mode) -> bool:
        await self._close_backend()
        uri = self._backends[mode]
        client = AsyncClient.from_uri(uri, connect_timeout=BACKEND_CONNECT_TIMEOUT_S)
        try:
            await client.connect()
            for held in self._deferred:
                await client.write_event(held)
        except (OSError, TimeoutError) as err:
            _LOGGER.warning("The %s service at %s is not reachable: %s", mode, uri, err)
            with contextlib.suppress(OSError):
                await client.disconnect()
            # The audio that follows the failed request is dropped without an error per chunk.
            self._reported_unrouted = True
            await self.write_event(
                Error(
                    text=f"Kiwi's {mode} service is not reachable; is it running?",
                    code=SERVICE_UNAVAILABLE,
                ).event()
            )
            return False
        self._deferred.clear()
        pump = asyncio.create_task(self._pump(client), name=f"combined {mode} pump")
        self._backend = _Backend(mode, client, pump)
        return True

    async def _pump(self, client: AsyncClient) -> None:
        """Copy the backend's events to the client until the backend closes."""
        try:
            while (event := await client.read_event()) is not None:
                await self.write_event(event)
        except OSError as err:
            _LOGGER.debug("Backend connection ended: %s", err)
        finally:
            # The backend hung up: the next request of its kind opens a fresh connection.
            if self._backend is not None and self._backend.client is client:
                self._backend = None
                with contextlib.suppress(OSError):
                    await client.disconnect()

    async def _close_backend(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    async def _report_unrouted(self, event: Event) -> None:
        # Once per connection: a client streaming audio with no request would otherwise get one
        # error per chunk.
        if self._reported_unrouted:
            return
        self._reported_unrouted = True
        await self.write_event(
            Error(
                text=f"'{event.type}' before any transcribe, synthesize or detect request",
                code=str(ErrorCode.UNEXPECTED_EVENT),
            ).event()
        )
