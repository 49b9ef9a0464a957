"""Telegram approval settings, kept apart from the bot so the hub imports python-telegram-bot
only when Telegram is configured (the library costs about half a second at every start)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)


def parse_user_ids(raw: str) -> frozenset[int]:
    """`"123, 456"` -> {123, 456}; raises ValueError naming what is not a user id."""
    ids: set[int] = set()
    for part in raw.replace(";", ",").split(","):
        if not (part := part.strip()):
            continue
        if not part.isdigit():
            raise ValueError(f"{part!r} is not a Telegram user id (digits only)")
        ids.add(int(part))
    return frozenset(ids)


@dataclass(frozen=True, kw_only=True)
class TelegramConfig:
    bot_token: str
    owner_chat_id: int
    # Who may answer: these users, in the owner's chat (private or group). Empty: in a private
    # chat its own user only; in a group chat nobody (a group needs owner ids).
    owner_user_ids: frozenset[int] = frozenset()
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
        # KIWI_TELEGRAM_USER_ID: the single-owner variable of earlier versions.
        users = ",".join(
            environ.get(name) or "" for name in ("KIWI_TELEGRAM_OWNER_IDS", "KIWI_TELEGRAM_USER_ID")
        )
        try:
            owners = parse_user_ids(users)
        except ValueError as err:
            _LOGGER.warning("Telegram approvals are off: telegram_owner_ids: %s", err)
            return None
        try:
            return cls(
                bot_token=bot_token,
                owner_chat_id=int(chat),
                owner_user_ids=owners,
                api_url=(environ.get("KIWI_TELEGRAM_API_URL") or "").strip().rstrip("/") or None,
                poll_timeout_seconds=float(environ.get("KIWI_TELEGRAM_POLL_TIMEOUT") or 30.0),
            )
        except ValueError:
            _LOGGER.warning("Telegram approvals are off: the chat or user id is not a number")
            return None
