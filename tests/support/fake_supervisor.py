"""A local server playing the Home Assistant Supervisor for an add-on container.

What an add-on calls, with `Authorization: Bearer <SUPERVISOR_TOKEN>`:
- `POST /discovery` {"service", "config"} → {"result": "ok", "data": {"uuid"}} (recorded in
  `discoveries`);
- `GET /addons/self/info` → the add-on's own info (hostname, slug, version, state);
- the Core API proxy `/core/api/...` and `/core/websocket`: Home Assistant behind it is
  fake_homeassistant.py's, which accepts the Supervisor token (the real proxy swaps it for its own).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fake_homeassistant import FakeHomeAssistant
from tests.support.threaded_server import BackgroundServer


@dataclass
class FakeSupervisor:
    hostname: str
    slug: str = "local_kiwi"
    version: str = "0.1.0"
    homeassistant: FakeHomeAssistant = field(default_factory=FakeHomeAssistant)
    discoveries: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # paths asked without the token
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BackgroundServer | None = None

    @property
    def token(self) -> str:
        return self.homeassistant.token

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.url

    def start(self) -> str:
        self._server = BackgroundServer(self.app)
        return self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def discovered(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.discoveries)

    def app(self) -> web.Application:
        app = self.homeassistant.app()  # serves /core/api/... and /core/websocket too
        app.router.add_post("/discovery", self._discovery)
        app.router.add_get("/addons/self/info", self._self_info)
        return app

    def _authorized(self, request: web.Request) -> bool:
        if request.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        with self._lock:
            self.refused.append(request.path)
        return False

    async def _discovery(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"result": "error", "message": "Unauthorized"}, status=401)
        body = await request.json()
        with self._lock:
            self.discoveries.append(body)
        return web.json_response({"result": "ok", "data": {"uuid": uuid.uuid4().hex}})

    async def _self_info(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"result": "error", "message": "Unauthorized"}, status=401)
        info = {
            "name": "Kiwi",
            "slug": self.slug,
            "hostname": self.hostname,
            "version": self.version,
            "state": "started",
            "ingress": True,
            "homeassistant_api": True,
            "discovery": ["kiwi", "wyoming"],
        }
        return web.json_response({"result": "ok", "data": info})
