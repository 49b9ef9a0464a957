"""Telegram approval settings, kept apart from the bot so the hub imports python-telegram-bot
only when Telegram is configured (the library costs about half a second at every start)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TelegramConfig:
    bot_token: str
    owner_chat_id: int
    owner_user_id: int | None = None
    api_url: str | None = None  # a Bot API server other than api.telegram.org
    poll_timeout_seconds: float = 30.0
    retry_max_seconds: float = 60.0

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], bot_token: str | None
    ) -> TelegramConfig | None:
        """The configuration, or None when the token or the owner's chat id is missing."""
        chat = (environ.get("KIWI_TELEGRAM_CHAT_ID") or "").strip()
        if not bot_token or not chat:
            if bot_token or chat:
                missing = "KIWI_TELEGRAM_CHAT_ID" if bot_token else "KIWI_TELEGRAM_BOT_TOKEN"
                _LOGGER.warning("Telegram approvals are off: %s is not set", missing)
            return None
        user = (environ.get("KIWI_TELEGRAM_USER_ID") or "").strip()
        try:
            return cls(
                bot_token=bot_token,
                owner_chat_id=int(chat),
                owner_user_id=int(user) if user else None,
                api_url=(environ.get("KIWI_TELEGRAM_API_URL") or "").strip().rstrip("/") or None,
                poll_timeout_seconds=float(environ.get("KIWI_TELEGRAM_POLL_TIMEOUT") or 30.0),
            )
        except ValueError:
            _LOGGER.warning("Telegram approvals are off: the chat or user id is not a number")
            return None
