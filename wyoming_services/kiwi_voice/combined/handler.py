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

from .hub_report import HubReporter, SpeakerTee
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
        *,
        reporter: HubReporter | None = None,
        speaker_uri: str | None = None,
    ) -> None:
        super().__init__(reader, writer)
        self._backends = backends
        self._info = info
        # Assist turns reach the hub through these (hub_report.py); both are optional.
        self._reporter = reporter
        self._speaker_uri = speaker_uri
        self._tee: SpeakerTee | None = None
        self._language: str | None = None
        self._identifications: set[asyncio.Task[None]] = set()
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else "unknown"
        self._client_name = f"wyoming:{host}"
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
            if self._reporter is not None:
                await self._watch_request(backend.mode, event)
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
        if self._tee is not None:
            await self._tee.close()

    # ---- what the hub hears of (hub_report.py) ----------------------------------------------

    async def _watch_request(self, mode: Mode, event: Event) -> None:
        """A client's event on its way to a backend: tee STT audio to kiwi-speaker, report TTS."""
        if mode is Mode.ASR:
            if event.type == "transcribe":
                self._language = event.data.get("language") if event.data else None
                if self._tee is not None:
                    await self._tee.close()
                self._tee = SpeakerTee(self._speaker_uri) if self._speaker_uri else None
            elif event.type.startswith("audio-") and self._tee is not None:
                tee = self._tee
                if not await tee.feed(event):
                    self._tee = None
                elif event.type == "audio-stop":
                    self._tee = None
                    task = asyncio.create_task(self._identified(tee), name="combined identify")
                    self._identifications.add(task)
                    task.add_done_callback(self._identifications.discard)
        elif mode is Mode.TTS and event.type in ("synthesize", "synthesize-start"):
            data = event.data or {}
            voice = data.get("voice") if isinstance(data.get("voice"), dict) else {}
            name = {"voice": voice["name"]} if isinstance(voice.get("name"), str) else {}
            self._report("speaking", text=str(data.get("text") or ""), **name)

    async def _identified(self, tee: SpeakerTee) -> None:
        result = await tee.result()
        if result is not None:
            keys = ("id", "name", "priority", "confidence", "is_blocked", "is_self")
            self._report("speaker", speaker={key: result.get(key) for key in keys})

    def _watch_answer(self, mode: Mode, event: Event) -> None:
        """A backend's event on its way to the client: a wake word, a transcript, TTS done."""
        data = event.data or {}
        if mode is Mode.WAKE and event.type == "detection":
            self._report("wake", text=str(data.get("name") or ""))
        elif mode is Mode.ASR and event.type == "transcript":
            language = data.get("language") or self._language
            fields = {"language": language} if isinstance(language, str) else {}
            self._report("transcript", text=str(data.get("text") or ""), **fields)
        elif mode is Mode.TTS and event.type == "audio-stop":
            self._report("done")

    def _report(self, event: str, **fields: object) -> None:
        if self._reporter is not None:
            self._reporter.report(event, self._client_name, **fields)

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
        pump = asyncio.create_task(self._pump(client, mode), name=f"combined {mode} pump")
        self._backend = _Backend(mode, client, pump)
        return True

    async def _pump(self, client: AsyncClient, mode: Mode) -> None:
        """Copy the backend's events to the client until the backend closes."""
        try:
            while (event := await client.read_event()) is not None:
                await self.write_event(event)
                self._watch_answer(mode, event)
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
