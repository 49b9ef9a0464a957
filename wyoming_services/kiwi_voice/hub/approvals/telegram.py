"""The owner's Telegram chat as an approval channel (python-telegram-bot, long polling).

Each request becomes a message in the owner's chat with Approve / Deny buttons. A button press
resolves the request only when it comes from the owner's chat and from an owner: a user named in
`telegram_owner_ids` (`KIWI_TELEGRAM_OWNER_IDS`), or, without that list, the user of a private
chat. In a group chat without owner ids nobody can answer (the log says so at start). A press
from anyone else is answered "not allowed", logged, and changes nothing.
When a request is decided — by any channel or its deadline — the message is edited to say how,
and its buttons disappear. Which message belongs to which request is kept in kiwi.db, so this
still works for requests that outlived a restart.

Telegram being unreachable never stops the hub: the bot connects in the background with
backoff, and requests made meanwhile are sent once it is up.

Configuration (environment, passed by the launcher from the add-on options):
`KIWI_TELEGRAM_BOT_TOKEN`, `KIWI_TELEGRAM_CHAT_ID`, `KIWI_TELEGRAM_OWNER_IDS` (comma-separated
user ids), and `KIWI_TELEGRAM_API_URL` for a self-hosted Bot API server (tests use a local one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from kiwi_voice.hub.event_payloads import EventType, error
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.store import Store

from .model import Approval
from .registry import AlreadyResolved, ApprovalRegistry, UnknownApproval
from .telegram_config import TelegramConfig

_LOGGER = logging.getLogger(__name__)
SOURCE = "telegram"
NAMESPACE = "approvals_telegram"  # request id -> {"chat_id", "message_id", "shown"}
_CALLBACK_PREFIX = "kiwi"
_OUTCOMES = {
    "approved": "✅ Approved",
    "denied": "❌ Denied",
    "expired": "⌛ Expired: nobody answered in time",
}
_SEND_ATTEMPTS = 3
NOT_ALLOWED = "Not allowed: only Kiwi's owner can answer this."


def callback_data(approved: bool, request_id: str) -> str:
    return f"{_CALLBACK_PREFIX}:{'approve' if approved else 'deny'}:{request_id}"


def parse_callback(data: str | None) -> tuple[bool, str] | None:
    parts = (data or "").split(":")
    if len(parts) != 3 or parts[0] != _CALLBACK_PREFIX or parts[1] not in ("approve", "deny"):
        return None
    return parts[1] == "approve", parts[2]


def prompt_text(approval: Approval) -> str:
    minutes = max(1, round((approval.expires_at - approval.created_at) / 60))
    if approval.kind == "voice":
        head = f"🔐 {approval.speaker or 'A guest'} asks Kiwi: “{approval.command}”"
    else:
        head = f"🔐 Kiwi wants to run a sensitive action: {approval.command}"
    return f"{head}\n\nApprove? (denied if unanswered within {minutes} min; {approval.request_id})"


def outcome_text(approval: Approval) -> str:
    outcome = _OUTCOMES.get(approval.status, approval.status)
    if approval.status != "expired" and approval.decided_by and approval.decided_by != "telegram":
        outcome += f" (via {approval.decided_by})"
    return f"{prompt_text(approval)}\n\n{outcome}"


class _RedactToken(logging.Filter):
    """The Bot API puts the token in every URL, and httpx logs each URL: keep it out of logs.
    The long poll's request every few seconds is not worth a line either."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token not in message:
            return True
        if record.levelno <= logging.INFO and "/getUpdates" in message:
            return False
        record.msg, record.args = message.replace(self._token, "<bot token>"), ()
        return True


def _redact_in_logs(token: str) -> None:
    for name in ("httpx", "telegram._bot", "telegram.ext.Updater", "telegram.ext.Application"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactToken) and f._token == token for f in logger.filters):
            logger.addFilter(_RedactToken(token))


class TelegramApprover:
    def __init__(
        self, config: TelegramConfig, registry: ApprovalRegistry, store: Store, bus: EventBus
    ) -> None:
        self._config = config
        self._registry = registry
        self._store = store
        self._bus = bus
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # The prompt message of each request, and whether it shows the decision yet.
        self._messages: dict[str, dict[str, Any]] = dict(store.read_namespace(NAMESPACE))
        _redact_in_logs(config.bot_token)
        registry.on_requested(lambda approval: self._spawn(self._send_prompt(approval)))
        registry.on_resolved(lambda approval, _waited: self._spawn(self._show_outcome(approval)))

    @property
    def connected(self) -> bool:
        return self._app is not None

    async def wait_connected(self) -> None:
        await self._ready.wait()

    # ---- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (never blocks or fails the hub's start).

        Call after `ApprovalRegistry.restore()`: messages of forgotten requests are dropped.
        """
        stale = [rid for rid in self._messages if self._registry.get(rid) is None]
        for request_id in stale:
            del self._messages[request_id]
        if stale:
            with contextlib.suppress(sqlite3.Error):
                self._store.write_namespace(NAMESPACE, {}, stale)
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        delay = 1.0
        reported = False
        while True:
            app = self._build()
            try:
                await app.initialize()  # getMe: checks the token
                await app.start()
                assert app.updater is not None
                await app.updater.start_polling(
                    timeout=self._config.poll_timeout_seconds,
                    allowed_updates=[Update.CALLBACK_QUERY, Update.MESSAGE],
                    error_callback=self._polling_failed,
                )
            except InvalidToken:
                self._failed("telegram_auth_failed", "Telegram refused the bot token")
                await _quietly_shut_down(app)
                return
            except TelegramError as err:
                if not reported:
                    self._failed("telegram_unavailable", f"cannot reach Telegram: {err}")
                    reported = True
                await _quietly_shut_down(app)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.retry_max_seconds)
                continue
            self._app = app
            self._ready.set()
            _LOGGER.info("Telegram approvals ready (bot @%s)", app.bot.username)
            if self._config.owner_chat_id < 0 and not self._config.owner_user_ids:
                self._failed(
                    "telegram_owner_ids_missing",
                    "the owner chat is a group, and nobody in it may answer until "
                    "telegram_owner_ids names the owners' user ids",
                    setting="telegram_owner_ids",
                )
            for approval in self._registry.pending():
                if approval.request_id not in self._messages:
                    self._spawn(self._send_prompt(approval))
            for request_id, where in list(self._messages.items()):
                decided = self._registry.get(request_id)  # e.g. expired while Kiwi was down
                if decided is not None and not decided.pending and not where.get("shown"):
                    self._spawn(self._show_outcome(decided))
            return

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        builder = ApplicationBuilder().token(self._config.bot_token).job_queue(None)
        if self._config.api_url:
            builder = builder.base_url(f"{self._config.api_url}/bot").base_file_url(
                f"{self._config.api_url}/file/bot"
            )
        app = builder.build()
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_handler(CommandHandler("start", self._on_start))
        app.add_error_handler(self._on_handler_error)
        return app

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        app, self._app = self._app, None
        self._ready.clear()
        if app is not None:
            await _quietly_shut_down(app)

    # ---- the owner's answers -------------------------------------------------------------------

    def _authorized(self, chat_id: int | None, user_id: int | None) -> bool:
        if chat_id != self._config.owner_chat_id or user_id is None:
            return False
        if self._config.owner_user_ids:
            return user_id in self._config.owner_user_ids
        # A private chat's id is its user's id: only that user may answer there. A group
        # chat's members are not all owners: without owner ids, nobody answers there.
        return chat_id > 0 and user_id == chat_id

    async def _on_button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        chat_id = query.message.chat.id if query.message is not None else None
        user = query.from_user
        if not self._authorized(chat_id, user.id):
            _LOGGER.warning(
                "Refused an approval answer (%s) from user %s (@%s) in chat %s: not an owner",
                query.data,
                user.id,
                user.username or "-",
                chat_id,
            )
            await query.answer(NOT_ALLOWED, show_alert=True)
            return
        parsed = parse_callback(query.data)
        if parsed is None:
            await query.answer("Kiwi does not know this button.")
            return
        approved, request_id = parsed
        try:
            decided = self._registry.resolve(request_id, approved=approved, by="telegram")
        except UnknownApproval:
            await query.answer("Kiwi does not know this request any more.")
            return
        except AlreadyResolved as err:
            await query.answer(f"Already answered: {err.approval.status}.")
            return
        await query.answer("Approved." if decided.approved else "Denied.")

    async def _on_start(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, message = update.effective_chat, update.effective_message
        if chat is None or message is None:
            return
        user_id = message.from_user.id if message.from_user is not None else None
        if chat.id == self._config.owner_chat_id and self._authorized(chat.id, user_id):
            await message.reply_text("Kiwi will ask you here before guests control your home.")
        else:  # helps the owner find the ids to configure
            await message.reply_text(
                f"This chat's id is {chat.id} and your user id is {user_id}. Set them as "
                "Kiwi's telegram_chat_id and telegram_owner_ids to answer approval requests."
            )

    # ---- prompts and outcomes ------------------------------------------------------------------

    async def _send_prompt(self, approval: Approval) -> None:
        app = self._app
        if app is None:
            return  # sent when the bot connects
        request_id = approval.request_id
        approve = InlineKeyboardButton("✅ Approve", callback_data=callback_data(True, request_id))
        deny = InlineKeyboardButton("❌ Deny", callback_data=callback_data(False, request_id))
        keyboard = InlineKeyboardMarkup([[approve, deny]])
        for attempt in range(_SEND_ATTEMPTS):
            if not self._still_pending(approval.request_id):
                return
            try:
                message = await app.bot.send_message(
                    self._config.owner_chat_id, prompt_text(approval), reply_markup=keyboard
                )
            except TelegramError as err:
                _LOGGER.warning("Sending approval %s failed: %s", approval.request_id, err)
                await asyncio.sleep(2.0 * (attempt + 1))
                continue
            self._remember(approval.request_id, message.chat_id, message.message_id)
            return
        self._failed("telegram_unavailable", f"could not send approval {approval.request_id}")

    async def _show_outcome(self, approval: Approval) -> None:
        app, where = self._app, self._messages.get(approval.request_id)
        if app is None or where is None:
            return
        try:
            await app.bot.edit_message_text(
                outcome_text(approval),
                chat_id=where["chat_id"],
                message_id=where["message_id"],
                reply_markup=None,
            )
        except BadRequest as err:  # e.g. the owner deleted the message: it never will show it
            _LOGGER.info("Could not update the message of %s: %s", approval.request_id, err)
        except TelegramError as err:  # try again when the bot next connects
            _LOGGER.warning("Could not update the message of %s: %s", approval.request_id, err)
            return
        self._store_message(approval.request_id, {**where, "shown": True})

    def _still_pending(self, request_id: str) -> bool:
        approval = self._registry.get(request_id)
        return approval is not None and approval.pending

    def _remember(self, request_id: str, chat_id: int, message_id: int) -> None:
        self._store_message(request_id, {"chat_id": chat_id, "message_id": message_id})
        decided = self._registry.get(request_id)
        if decided is not None and not decided.pending:  # decided while the message was sent
            self._spawn(self._show_outcome(decided))

    # ---- helpers -------------------------------------------------------------------------------

    def _store_message(self, request_id: str, where: dict[str, Any]) -> None:
        self._messages[request_id] = where
        try:
            self._store.write_namespace(NAMESPACE, {request_id: where})
        except sqlite3.Error:
            _LOGGER.exception("Could not store the message of approval %s", request_id)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_handler_error(self, _update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # e.g. answering a button press failed: the decision itself is already made.
        _LOGGER.warning("Handling a Telegram update failed: %s", context.error)

    def _polling_failed(self, err: TelegramError) -> None:
        _LOGGER.warning("Polling Telegram failed (retrying): %s", err)

    def _failed(self, code: str, message: str, setting: str | None = None) -> None:
        _LOGGER.error("Telegram approvals: %s", message)
        self._bus.publish(EventType.ERROR, error(message, SOURCE, code, setting=setting), SOURCE)


async def _quietly_shut_down(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Stop polling and close the HTTP clients, whatever state the app got to."""
    with contextlib.suppress(Exception):
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
    with contextlib.suppress(Exception):
        if app.running:
            await app.stop()
    with contextlib.suppress(Exception):
        await app.shutdown()
