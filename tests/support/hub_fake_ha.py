"""A local server speaking the part of Home Assistant's REST API that Kiwi uses.

`GET /api/` (the API check) and `POST /api/conversation/process` (the conversation agent), both
behind a long-lived access token, answering in HA's own JSON shapes, and the WebSocket API that
Kiwi's sensitive-action gate reads (fake_ha_websocket.py). Runs on its own thread and event loop
so synchronous fixtures can start it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.support.fake_ha_websocket import FakeHome, serve_websocket
from tests.support.ports import free_port


class FakeHomeAssistant:
    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.commands: list[dict[str, Any]] = []
        self.home = FakeHome()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        from aiohttp import web

        def authorized(request: web.Request) -> bool:
            return request.headers.get("Authorization") == f"Bearer {self.token}"

        async def api_root(request: web.Request) -> web.Response:
            if not authorized(request):
                return web.json_response({"message": "Unauthorized"}, status=401)
            return web.json_response({"message": "API running."})

        async def conversation(request: web.Request) -> web.Response:
            if not authorized(request):
                return web.json_response({"message": "Unauthorized"}, status=401)
            body = await request.json()
            self.commands.append(body)
            language = body.get("language", "en")
            return web.json_response(
                {
                    "response": {
                        "speech": {
                            "plain": {"speech": f"Done: {body['text']}", "extra_data": None}
                        },
                        "card": {},
                        "language": language,
                        "response_type": "action_done",
                        "data": {"targets": [], "success": [], "failed": []},
                    },
                    "conversation_id": "01JKIWITESTCONVERSATION000",
                    "continue_conversation": False,
                }
            )

        async def websocket(request: web.Request) -> web.StreamResponse:
            return await serve_websocket(request, self.token, self.home)

        app = web.Application()
        app.router.add_get("/api/websocket", websocket)
        app.router.add_get("/api/", api_root)
        app.router.add_post("/api/conversation/process", conversation)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
