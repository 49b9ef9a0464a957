"""A local server speaking Home Assistant's conversation API the way HA answers it.

`GET /api/` and `POST /api/conversation/process` behind a long-lived token (also under
`/core/...`, the Supervisor proxy's prefix). Answers have HA's real shape
(`ConversationResult.as_dict()` around `IntentResponse.as_dict()`):

    {"response": {"speech": {"plain": {"speech": ..., "extra_data": None}}, "card": {},
                  "language": "en", "response_type": "action_done",
                  "data": {"targets": [], "success": [...], "failed": []}},
     "conversation_id": "...", "continue_conversation": False}

What it answers: a command like "turn on/off (the) X" is an action (`action_done`, "Turned on
the X"), "what is/is the X ..." a `query_answer`, anything else HA's `no_intent_match` error
("Sorry, I couldn't understand that"). Tests can script answers (`answers`) and failures
(`fail_with_status`, `delay_seconds`), and read every request (`requests`).

Actions: `POST /api/services/<domain>/<service>` answers HA's list of changed states and is
recorded in `service_calls` ({"domain", "service", "data"}).

The WebSocket API (`/api/websocket`, `/core/websocket`) is fake_ha_websocket.py's: what Kiwi's
sensitive-action gate asks; `home` is the home it describes.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fake_ha_websocket import FakeHome, serve_websocket
from tests.support.threaded_server import BackgroundServer

_TURN = re.compile(r"\bturn (on|off) (?:the )?(.+?)[.!?]*$", re.IGNORECASE)
_QUERY = re.compile(r"\b(?:what is|is) (?:the )?(.+?)[.!?]*$", re.IGNORECASE)
NOT_UNDERSTOOD = "Sorry, I couldn't understand that"


@dataclass(frozen=True)
class HaAnswer:
    response_type: str  # action_done, query_answer or error
    speech: str
    error_code: str | None = None  # for response_type error, e.g. no_intent_match


def default_answer(text: str) -> HaAnswer:
    if match := _TURN.search(text):
        return HaAnswer("action_done", f"Turned {match.group(1).lower()} the {match.group(2)}")
    if match := _QUERY.search(text):
        return HaAnswer("query_answer", f"The {match.group(1)} is fine")
    return HaAnswer("error", NOT_UNDERSTOOD, "no_intent_match")


def response_body(answer: HaAnswer, language: str, conversation_id: str) -> dict[str, Any]:
    data: dict[str, Any]
    if answer.response_type == "error":
        data = {"code": answer.error_code or "no_intent_match"}
    else:
        data = {"targets": [], "success": [], "failed": []}
    return {
        "response": {
            "speech": {"plain": {"speech": answer.speech, "extra_data": None}},
            "card": {},
            "language": language,
            "response_type": answer.response_type,
            "data": data,
        },
        "conversation_id": conversation_id,
        "continue_conversation": False,
    }


@dataclass
class FakeHomeAssistant:
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    answers: dict[str, HaAnswer] = field(default_factory=dict)  # exact text → scripted answer
    fail_with_status: int | None = None  # answer every request with this HTTP status
    delay_seconds: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    service_calls: list[dict[str, Any]] = field(default_factory=list)
    home: FakeHome = field(default_factory=FakeHome)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.url

    def start(self) -> str:
        """Serve in a background thread; returns the base URL."""
        self._server = BackgroundServer(self.app)
        return self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def texts(self) -> list[str]:
        with self._lock:
            return [str(r.get("text")) for r in self.requests]

    def app(self) -> web.Application:
        app = web.Application()
        for prefix in ("", "/core"):
            app.router.add_get(f"{prefix}/api/", self._api_root)
            app.router.add_post(f"{prefix}/api/conversation/process", self._process)
            app.router.add_post(f"{prefix}/api/services/{{domain}}/{{service}}", self._service)
        app.router.add_get("/api/websocket", self._websocket)
        app.router.add_get("/core/websocket", self._websocket)
        return app

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        return await serve_websocket(request, self.token, self.home)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _api_root(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Invalid access token"}, status=401)
        return web.json_response({"message": "API running."})

    async def _service(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Invalid access token"}, status=401)
        data = await request.json() if request.can_read_body else {}
        call = {
            "domain": request.match_info["domain"],
            "service": request.match_info["service"],
            "data": data,
        }
        with self._lock:
            self.service_calls.append(call)
        entities = data.get("entity_id") or []
        entities = [entities] if isinstance(entities, str) else entities
        return web.json_response(
            [{"entity_id": entity, "state": "on", "attributes": {}} for entity in entities]
        )

    async def _process(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Invalid access token"}, status=401)
        body = await request.json()
        with self._lock:
            self.requests.append(body)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_with_status is not None:
            return web.json_response({"message": "Server error"}, status=self.fail_with_status)
        text = str(body.get("text", ""))
        answer = self.answers.get(text) or default_answer(text)
        conversation_id = body.get("conversation_id") or secrets.token_hex(13).upper()
        language = body.get("language") or "en"
        return web.json_response(response_body(answer, language, conversation_id))
