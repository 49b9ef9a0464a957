"""A local server speaking the Telegram Bot API over HTTP, for the real python-telegram-bot.

`POST /bot<token>/<method>` with form, multipart or JSON parameters, answering
`{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description"}` as Telegram does.
Methods: getMe, deleteWebhook, getWebhookInfo, getUpdates (long polling; updates stay until a
later call confirms them with `offset`), sendMessage (inline keyboards), answerCallbackQuery,
editMessageText, editMessageReplyMarkup. A wrong token gets 401, an unknown method 404.

Tests play the people in the chats: `press()` queues a button press (a callback_query update),
`send_text()` a text message. Point the bot at it with
`ApplicationBuilder().base_url(fake.base_url)` (or `KIWI_TELEGRAM_API_URL=fake.url`).

Runs on its own thread and event loop (`BackgroundServer`), so synchronous fixtures can share
one; every read of what the bot did goes through a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from tests.support.threaded_server import BackgroundServer
from tests.support.waiting import until, until_sync

T = TypeVar("T")
BOT_USER = {
    "id": 7_000_001,
    "is_bot": True,
    "first_name": "Kiwi",
    "username": "kiwi_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
SEEN = "the fake Telegram server to see that"
_JSON_FIELDS = ("reply_markup", "allowed_updates", "entities", "link_preview_options")
_INT_FIELDS = ("chat_id", "message_id", "offset", "limit", "timeout", "cache_time")


class TelegramError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@dataclass
class FakeTelegram:
    token: str = field(default_factory=lambda: f"123456:{secrets.token_urlsafe(24)}")
    updates: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)  # sendMessage results, in order
    edits: list[dict[str, Any]] = field(default_factory=list)  # edited messages, in order
    callback_answers: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # method names, in order
    polls: int = 0  # getUpdates requests answered
    _next_update_id: int = 1
    _next_message_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BackgroundServer | None = None
    _new_update: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server root: what KIWI_TELEGRAM_API_URL takes."""
        assert self._server is not None, "start() first"
        return self._server.url

    @property
    def base_url(self) -> str:
        """What python-telegram-bot's `base_url` takes (it appends the token)."""
        return f"{self.url}/bot"

    def start(self) -> str:
        self._server = BackgroundServer(self.app)
        return self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def app(self) -> web.Application:
        # Called on the server's own loop: that loop is where update notices must go.
        self._loop = asyncio.get_running_loop()
        self._new_update = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    # ---- what the people in the chats do --------------------------------------------------------

    def press(
        self,
        data: str,
        *,
        chat_id: int,
        user_id: int,
        message: dict[str, Any] | None = None,
    ) -> str:
        """Queue a button press on `message` (default: a message in `chat_id`); its query id."""
        if message is None:
            message = self._message(chat_id, "a message with buttons", None)
        query_id = secrets.token_hex(8)
        self._queue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": _user(user_id),
                    "message": message,
                    "chat_instance": str(chat_id),
                    "data": data,
                }
            }
        )
        return query_id

    def send_text(self, text: str, *, chat_id: int, user_id: int) -> None:
        """Queue a text message someone wrote to the bot."""
        message = self._message(chat_id, text, None, sender=_user(user_id))
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._queue({"message": message})

    # ---- reading what the bot did (thread-safe) -------------------------------------------------

    def snapshot(self, read: Callable[[FakeTelegram], T]) -> T:
        with self._lock:
            return read(self)

    def wait_for(self, read: Callable[[FakeTelegram], T], timeout_s: float = 10.0) -> T:
        """Poll until `read` returns something truthy (from a synchronous test)."""
        return until_sync(lambda: self.snapshot(read), SEEN, timeout_s=timeout_s, every_s=0.02)

    async def until(self, read: Callable[[FakeTelegram], T], timeout_s: float = 10.0) -> T:
        """Poll until `read` returns something truthy (from an async test, any loop)."""
        return await until(lambda: self.snapshot(read), SEEN, timeout_s=timeout_s)

    def pending_update_count(self) -> int:
        return self.snapshot(lambda fake: len(fake.updates))

    # ---- the Bot API ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _failure(401, "Unauthorized")
        method = request.match_info["method"]
        handler = {
            "getMe": self._get_me,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
        }.get(method)
        if handler is None:
            return _failure(404, "Not Found")
        with self._lock:
            self.calls.append(method)
        try:
            params = await _params(request)
            result = await handler(params)
        except TelegramError as err:
            return _failure(err.status, err.description)
        return web.json_response({"ok": True, "result": result})

    async def _get_me(self, _params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _delete_webhook(self, params: dict[str, Any]) -> Any:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            with self._lock:
                self.updates.clear()
        return True

    async def _get_webhook_info(self, _params: dict[str, Any]) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _get_updates(self, params: dict[str, Any]) -> Any:
        offset = params.get("offset")
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        assert self._new_update is not None
        while True:
            self._new_update.clear()  # before looking: an update queued after this wakes us
            with self._lock:
                if offset is not None:  # confirms every update before it, as Telegram does
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                ready = [dict(u) for u in self.updates[:limit]]
                if ready or time.monotonic() >= deadline:
                    self.polls += 1
                    return ready
            remaining = deadline - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=max(remaining, 0.0))

    async def _send_message(self, params: dict[str, Any]) -> Any:
        chat_id, text = params.get("chat_id"), params.get("text")
        if not isinstance(chat_id, int):
            raise TelegramError(400, "Bad Request: chat not found")
        if not isinstance(text, str) or not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        message = self._message(chat_id, text, params.get("reply_markup"), sender=BOT_USER)
        with self._lock:
            self.sent.append(message)
        return message

    async def _answer_callback_query(self, params: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise TelegramError(400, "Bad Request: query is too old or query ID is invalid")
        with self._lock:
            self.callback_answers.append(
                {
                    "callback_query_id": str(params["callback_query_id"]),
                    "text": params.get("text"),
                    "show_alert": params.get("show_alert") in (True, "true", "True"),
                }
            )
        return True

    async def _edit_message_text(self, params: dict[str, Any]) -> Any:
        return self._edit(params, text=params.get("text"))

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> Any:
        return self._edit(params, text=None)

    def _edit(self, params: dict[str, Any], text: Any) -> dict[str, Any]:
        key = (params.get("chat_id"), params.get("message_id"))
        with self._lock:
            message = self.messages.get(key)  # type: ignore[arg-type]
            if message is None:
                raise TelegramError(400, "Bad Request: message to edit not found")
            edited = dict(message)
            if text is not None:
                edited["text"] = text
            markup = params.get("reply_markup")
            if markup:
                edited["reply_markup"] = markup
            else:
                edited.pop("reply_markup", None)
            if edited == message:
                raise TelegramError(400, "Bad Request: message is not modified")
            edited["edit_date"] = int(time.time())
            self.messages[key] = edited  # type: ignore[index]
            self.edits.append(edited)
            return edited

    # ---- helpers -------------------------------------------------------------------------------

    def _message(
        self,
        chat_id: int,
        text: str,
        reply_markup: Any,
        sender: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            message_id = self._next_message_id
            self._next_message_id += 1
            message: dict[str, Any] = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": _chat(chat_id),
                "from": sender or BOT_USER,
                "text": text,
            }
            if reply_markup:
                message["reply_markup"] = reply_markup
            self.messages[(chat_id, message_id)] = message
            return message

    def _queue(self, update: dict[str, Any]) -> None:
        with self._lock:
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
            self.updates.append(update)
        if self._loop is not None and self._new_update is not None:
            self._loop.call_soon_threadsafe(self._new_update.set)


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}


def _chat(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
    return {"id": chat_id, "type": "group", "title": f"Group {chat_id}"}


async def _params(request: web.Request) -> dict[str, Any]:
    """Telegram takes parameters as a query string, a form, multipart or JSON."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params
    if request.can_read_body:
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str):
            try:
                params[name] = json.loads(params[name])
            except ValueError as err:
                raise TelegramError(400, f"Bad Request: can't parse {name} JSON") from err
    for name in _INT_FIELDS:
        value = params.get(name)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            params[name] = int(value)
    return params


def _failure(status: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": status, "description": description}, status=status
    )
