"""Browser tests of the dashboard: Debian's chromium driven by playwright, behind a fake HA Ingress.

`IngressProxy` is a small aiohttp reverse proxy (a `BackgroundServer` thread) that serves the
hub under `/api/hassio_ingress/<id>/` and adds the `X-Ingress-Path` header, as Home Assistant's
Supervisor does; it forwards WebSockets too and records the query of each one (tests check
`since`).
`launch_chromium` starts the browser with the flags the machine needs, optionally with a WAV file
as the microphone.

Add-on env only (aiohttp, playwright).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from tests.support.cache import REPO_ROOT
from tests.support.threaded_server import BackgroundServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
SCREENSHOTS_DIR = REPO_ROOT / "artifacts" / "screenshots"
DOCS_IMAGE = REPO_ROOT / "docs" / "images" / "dashboard.png"

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)
_WS_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)


@dataclass
class IngressProxy:
    """HA Ingress in miniature: http://127.0.0.1:<port>/api/hassio_ingress/<id>/ → the hub."""

    upstream: str  # http://127.0.0.1:<hub port>
    ingress_id: str = "XYZ"
    websocket_queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _server: BackgroundServer | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def prefix(self) -> str:
        return f"/api/hassio_ingress/{self.ingress_id}"

    @property
    def url(self) -> str:
        """The page's address, with the trailing slash Ingress always uses."""
        assert self._server is not None, "start() first"
        return f"{self._server.url}{self.prefix}/"

    def start(self) -> IngressProxy:
        self._server = BackgroundServer(self._app)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", self.prefix + "/{tail:.*}", self._forward)
        app.on_startup.append(self._open_session)
        app.on_cleanup.append(self._close_session)
        return app

    async def _open_session(self, _app: web.Application) -> None:
        self._session = aiohttp.ClientSession()

    async def _close_session(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _target(self, request: web.Request) -> str:
        tail = request.match_info["tail"]
        query = f"?{request.query_string}" if request.query_string else ""
        return f"{self.upstream}/{tail}{query}"

    def _headers(self, request: web.Request, *, websocket: bool) -> CIMultiDict[str]:
        skip = _HOP_BY_HOP | (_WS_HANDSHAKE if websocket else frozenset())
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in skip)
        headers["X-Ingress-Path"] = self.prefix
        return headers

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_websocket(request)
        assert self._session is not None
        async with self._session.request(
            request.method,
            self._target(request),
            headers=self._headers(request, websocket=False),
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            headers = CIMultiDict(
                (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            )
            return web.Response(status=upstream.status, headers=headers, body=body)

    async def _forward_websocket(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        self.websocket_queries.append((request.match_info["tail"], dict(request.query)))
        try:
            hub_side = await self._session.ws_connect(
                self._target(request),
                headers=self._headers(request, websocket=True),
                max_msg_size=0,
            )
        except aiohttp.ClientError:
            return web.Response(status=502, text="the add-on is not answering")  # as HA does
        browser_side = web.WebSocketResponse(max_msg_size=0)
        await browser_side.prepare(request)
        async with hub_side:
            to_hub = asyncio.create_task(_pump(browser_side, hub_side))
            to_browser = asyncio.create_task(_pump(hub_side, browser_side))
            await asyncio.wait({to_hub, to_browser}, return_when=asyncio.FIRST_COMPLETED)
            for task in (to_hub, to_browser):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
            # Pass the close code on (4401 unauthorized, 1001 hub stopping, ...).
            code = hub_side.close_code or browser_side.close_code or 1000
            reason = b"hub closed" if hub_side.close_code else b""
            await hub_side.close()
        if not browser_side.closed:
            await browser_side.close(code=code, message=reason)
        return browser_side


async def _pump(source: Any, sink: Any) -> None:
    async for message in source:
        if message.type == WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
            break


@contextlib.contextmanager
def ingress_proxy(upstream: str) -> Iterator[IngressProxy]:
    proxy = IngressProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def chromium_args(microphone_wav: Path | None = None, *, loop_audio: bool = True) -> list[str]:
    """Flags for Debian's chromium; with a WAV, that file is the (fake) microphone."""
    args = list(CHROMIUM_ARGS)
    if microphone_wav is not None:
        suffix = "" if loop_audio else "%noloop"
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone_wav}{suffix}",
            "--autoplay-policy=no-user-gesture-required",
        ]
    return args


def update_docs_image() -> bool:
    """Whether to (re)write docs/images/dashboard.png: when missing, or when asked to
    (KIWI_UPDATE_DOCS_IMAGES=1), so ordinary test runs leave the committed picture alone."""
    return not DOCS_IMAGE.exists() or os.environ.get("KIWI_UPDATE_DOCS_IMAGES") == "1"


def screenshot_path(name: str) -> Path:
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS_DIR / f"{name}.png"
