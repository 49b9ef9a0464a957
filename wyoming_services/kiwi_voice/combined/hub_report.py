"""What the combined endpoint tells the hub about Assist turns (POST /api/assist/events), and
the speaker identification it runs on the STT audio.

Home Assistant's Assist pipeline uses Kiwi's services through this endpoint without the hub:
without these reports the hub would never hear of such a turn. Reports go out in order, one
queue per endpoint, each with a short time limit; when the hub is down or slow they are
dropped (logged once) and the Wyoming services work on exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import aiohttp
from wyoming.client import AsyncClient
from wyoming.event import Event

from kiwi_voice.speaker import protocol as speaker_protocol

_LOGGER = logging.getLogger(__name__)
REPORT_TIMEOUT = aiohttp.ClientTimeout(total=3, connect=1)
QUEUE_LIMIT = 256  # a hub that does not keep up loses reports, never holds up the audio
IDENTIFY_TIMEOUT_S = 30.0


class HubReporter:
    """Sends reports to the hub in order; never raises, never blocks the caller."""

    def __init__(self, hub_url: str, token_file: Path | None) -> None:
        self._url = hub_url.rstrip("/") + "/api/assist/events"
        self._token_file = token_file
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._worker: asyncio.Task[None] | None = None
        self._failing = False

    def report(self, event: str, client: str, **fields: Any) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._send_all(), name="kiwi hub reports")
        try:
            self._queue.put_nowait({"event": event, "client": client, **fields})
        except asyncio.QueueFull:
            _LOGGER.debug("Hub report queue full: dropped %s", event)

    def _token(self) -> str | None:
        # Read each time: the hub writes its token on its first start, maybe after this one.
        if self._token_file is None:
            return None
        with contextlib.suppress(OSError):
            return self._token_file.read_text(encoding="utf-8").strip() or None
        return None

    async def _send_all(self) -> None:
        async with aiohttp.ClientSession(timeout=REPORT_TIMEOUT) as session:
            while True:
                report = await self._queue.get()
                await self._send(session, report)

    async def _send(self, session: aiohttp.ClientSession, report: dict[str, Any]) -> None:
        token = self._token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with session.post(self._url, json=report, headers=headers) as answer:
                if answer.status != 200:
                    raise aiohttp.ClientResponseError(
                        answer.request_info, (), status=answer.status, message=await answer.text()
                    )
        except (TimeoutError, aiohttp.ClientError) as err:
            if not self._failing:  # once per outage, not once per report
                _LOGGER.warning("The hub does not take Assist reports (%s): going on without", err)
            self._failing = True
            return
        if self._failing:
            _LOGGER.info("The hub takes Assist reports again")
        self._failing = False

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


class SpeakerTee:
    """One identification on kiwi-speaker, fed the same audio as the STT service."""

    def __init__(self, uri: str) -> None:
        self._client = AsyncClient.from_uri(uri, connect_timeout=2.0)
        self._connected: asyncio.Task[bool] = asyncio.create_task(self._connect())

    async def _connect(self) -> bool:
        try:
            await self._client.connect()
            await self._client.write_event(Event(speaker_protocol.IDENTIFY, {}))
        except (OSError, TimeoutError) as err:
            _LOGGER.debug("kiwi-speaker is not reachable: %s", err)
            return False
        return True

    async def feed(self, event: Event) -> bool:
        """Pass one audio event on; False when the speaker service is not there."""
        if not await self._connected:
            return False
        try:
            await self._client.write_event(event)
        except OSError:
            return False
        return True

    async def result(self) -> dict[str, Any] | None:
        """The identification (after audio-stop was fed), or None when there is none."""
        try:
            if not await self._connected:
                return None
            async with asyncio.timeout(IDENTIFY_TIMEOUT_S):
                while (event := await self._client.read_event()) is not None:
                    if event.type == speaker_protocol.IDENTIFIED:
                        return dict(event.data)
                    if event.type == "error":
                        _LOGGER.debug("kiwi-speaker could not identify: %s", event.data)
                        return None
        except (OSError, TimeoutError) as err:
            _LOGGER.debug("No identification from kiwi-speaker: %s", err)
        finally:
            await self.close()
        return None

    async def close(self) -> None:
        if not self._connected.done():
            self._connected.cancel()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self._client.disconnect()
