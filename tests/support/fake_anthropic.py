"""A local server speaking Anthropic's Messages API, streaming included, for the real client.

`POST /v1/messages` checks `x-api-key` and `anthropic-version`, validates the request, and
answers as the API does: a JSON `message`, or with `"stream": true` the SSE sequence
message_start, content_block_start / ping / content_block_delta… / content_block_stop per
block (text_delta for text, input_json_delta for tool_use), message_delta, message_stop.
Errors have the API's shape: `{"type": "error", "error": {"type", "message"}}`, also as an
`error` event in the middle of a stream.

Point `anthropic.AsyncAnthropic(base_url=fake.url)` (or `ANTHROPIC_BASE_URL`) at it.
By default the reply echoes the last user message; `reply` scripts anything else.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.threaded_server import BackgroundServer
from tests.support.waiting import until

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: "toolu_" + secrets.token_hex(12))


@dataclass(frozen=True)
class ScriptedReply:
    text: str = ""
    tool_uses: tuple[ToolUse, ...] = ()


def last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages", [])):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(
            block.get("text", "") for block in content or [] if block.get("type") == "text"
        )
    return ""


def echo_reply(request: dict[str, Any]) -> ScriptedReply:
    return ScriptedReply(f"Hello from the fake Claude. You said: {last_user_text(request)}.")


def tokens(text: str) -> list[str]:
    """How the fake streams text: word by word, each with the spaces after it."""
    return re.findall(r"\S+\s*", text) or ([text] if text else [])


@dataclass
class FakeAnthropic:
    api_key: str = field(default_factory=lambda: "sk-ant-test-" + secrets.token_hex(8))
    reply: Callable[[dict[str, Any]], ScriptedReply] = echo_reply
    first_token_delay_seconds: float = 0.0
    token_delay_seconds: float = 0.0
    fail_with_status: int | None = None  # refuse every request with this status
    fail_after_tokens: int | None = None  # stream this many deltas, then an error event
    # Stream this many deltas, then wait for `release()` (a test decides when the rest comes).
    hold_after_tokens: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    completed_streams: int = 0
    abandoned_streams: int = 0  # the client went away before the end (e.g. a barge-in)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _released: threading.Event = field(default_factory=threading.Event)
    _held: int = 0
    _server: BackgroundServer | None = None

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

    @property
    def held(self) -> int:
        """How many streams wait for `release()` right now."""
        with self._lock:
            return self._held

    def release(self) -> None:
        """Let a held stream go on (see `hold_after_tokens`); nothing held: nothing happens."""
        with self._lock:
            if self._held:
                self._released.set()

    def wait_abandoned(self, at_least: int, wait_s: float = 10.0) -> bool:
        """Block until `at_least` streams were abandoned by their client (call in a thread)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.abandoned_streams >= at_least, wait_s)

    def last_request(self) -> dict[str, Any]:
        with self._lock:
            return self.requests[-1]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        return app

    # ---- the endpoint -----------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        # The API takes the key as x-api-key; newer SDKs send it as a bearer token.
        offered = request.headers.get("x-api-key") or _bearer(request)
        if offered != self.api_key:
            return _error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "anthropic-version: header is required")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body is not valid JSON")
        problem = _invalid(body)
        if problem:
            return _error(400, problem)
        with self._lock:
            self.requests.append(body)
        if self.fail_with_status is not None:
            return _error(
                self.fail_with_status, "Overloaded" if self.fail_with_status == 529 else "failed"
            )
        scripted = self.reply(body)
        if body.get("stream"):
            return await self._stream(request, body, scripted)
        return web.json_response(_message(body, scripted, stop=True))

    async def _stream(
        self, request: web.Request, body: dict[str, Any], scripted: ScriptedReply
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        try:
            start = _message(body, ScriptedReply(), stop=False)
            await send("message_start", {"type": "message_start", "message": start})
            await self._stream_blocks(send, scripted)
            stop_reason = "tool_use" if scripted.tool_uses else "end_turn"
            await send(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": len(tokens(scripted.text)) + 1},
                },
            )
            await send("message_stop", {"type": "message_stop"})
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            with self._lock:
                self.abandoned_streams += 1
                self._lock.notify_all()
            raise
        with self._lock:
            self.completed_streams += 1
        return response

    async def _stream_blocks(self, send: Any, scripted: ScriptedReply) -> None:
        index = 0
        sent = 0
        if scripted.text or not scripted.tool_uses:
            block = {"type": "text", "text": ""}
            await send(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
            await send("ping", {"type": "ping"})
            for piece in tokens(scripted.text):
                await asyncio.sleep(
                    self.first_token_delay_seconds if sent == 0 else self.token_delay_seconds
                )
                if self.hold_after_tokens is not None and sent == self.hold_after_tokens:
                    await self._hold()
                if self.fail_after_tokens is not None and sent >= self.fail_after_tokens:
                    await send(
                        "error",
                        {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"},
                        },
                    )
                    return
                delta = {"type": "text_delta", "text": piece}
                await send(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
                sent += 1
            await send("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        for offset, tool in enumerate(scripted.tool_uses):
            block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
            position = index + offset
            await send(
                "content_block_start",
                {"type": "content_block_start", "index": position, "content_block": block},
            )
            encoded = json.dumps(tool.input)
            half = len(encoded) // 2
            for part in (encoded[:half], encoded[half:]):
                delta = {"type": "input_json_delta", "partial_json": part}
                await send(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": position, "delta": delta},
                )
            await send("content_block_stop", {"type": "content_block_stop", "index": position})

    async def _hold(self) -> None:
        with self._lock:
            self._held += 1
        try:
            # Polled, not waited for in an executor thread: under Home Assistant's harness the
            # loop's default executor makes threads its cleanup check counts as leaks.
            await until(self._released.is_set, "the held stream's release", timeout_s=600)
        finally:
            with self._lock:
                self._held -= 1
                self._released.clear()


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
        if not isinstance(body.get(name), kind):
            return f"{name}: Field required"
    if not body["messages"]:
        return "messages: at least one message is required"
    roles = [m.get("role") for m in body["messages"]]
    if roles[0] != "user" or any(r not in ("user", "assistant") for r in roles):
        return "messages: roles must be user/assistant, starting with user"
    if any(a == b for a, b in itertools.pairwise(roles)):
        return "messages: roles must alternate between user and assistant"
    return None


def _message(body: dict[str, Any], scripted: ScriptedReply, *, stop: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if scripted.text:
        content.append({"type": "text", "text": scripted.text})
    for tool in scripted.tool_uses:
        content.append({"type": "tool_use", "id": tool.id, "name": tool.name, "input": tool.input})
    stop_reason = ("tool_use" if scripted.tool_uses else "end_turn") if stop else None
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": len(tokens(scripted.text)) + 1},
    }


def _error(status: int, message: str) -> web.Response:
    error_type = ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.json_response(body, status=status)
