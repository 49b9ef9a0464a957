"""The user's settings: the add-on's /data/options.json, read into one typed value.

`addon/config.yaml` declares the same options with the Supervisor's schema strings;
tests/addon/test_packaging_files.py checks that the two declarations agree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

# The languages the hub offers (GET /api/languages in the REST contract).
LANGUAGES = (
    "en",
    "ru",
    "es",
    "pt",
    "fr",
    "it",
    "de",
    "tr",
    "pl",
    "zh",
    "ja",
    "ko",
    "hi",
    "ar",
    "id",
)
# What a speaker's command needs before it runs: nothing, the owner's yes over Telegram, or refusal.
POLICIES = ("allow", "approve", "deny")
LOG_LEVELS = ("debug", "info", "warning", "error")
# CTranslate2 compute types for Whisper: int8 halves the memory on a CPU at the same accuracy.
STT_COMPUTE_TYPES = ("int8", "float32", "float16", "int8_float16", "default")

# The Supervisor's schema string for each option, exactly as addon/config.yaml writes it.
SUPERVISOR_SCHEMA: dict[str, str] = {
    "language": f"list({'|'.join(LANGUAGES)})",
    "stt_model": "str",
    "stt_compute_type": f"list({'|'.join(STT_COMPUTE_TYPES)})",
    "tts_voice": "str",
    "wake_word": "str",
    "wake_threshold": "float(0.05,0.95)",
    "wake_second_look": "bool",
    "soul": "str",
    "anthropic_api_key": "password?",
    "anthropic_model": "str",
    "telegram_bot_token": "password?",
    "telegram_chat_id": "str?",
    "telegram_owner_ids": "str?",
    "approvals_via_api": "bool",
    "guest_policy": f"list({'|'.join(POLICIES)})",
    "unknown_speaker_policy": f"list({'|'.join(POLICIES)})",
    "log_level": f"list({'|'.join(LOG_LEVELS)})",
}


class OptionsError(ValueError):
    """The options file cannot be used; the message names the option and what is wrong."""


@dataclass(frozen=True, kw_only=True)
class KiwiOptions:
    """Every user setting with the default the add-on ships (config.yaml `options:`)."""

    language: str = "en"
    stt_model: str = "base"
    stt_compute_type: str = "int8"
    tts_voice: str = "en_US-joe-medium"
    # openWakeWord's hey_jarvis in kiwi-wake: the figures in docs/wake-word.md chose it.
    wake_word: str = "hey_jarvis"
    wake_threshold: float = 0.5
    # kiwi-wake's second look against look-alike phrases (docs/wake.md): off by default, as it
    # costs one frame (80 ms) of latency and a few percent of hits on short, fast phrases.
    wake_second_look: bool = False
    soul: str = "default"
    anthropic_api_key: str | None = None
    anthropic_model: str = "claude-sonnet-4-5"
    telegram_bot_token: str | None = None
    telegram_chat_id: str | None = None
    # Comma-separated Telegram user ids of the people who may answer approval requests.
    telegram_owner_ids: str | None = None
    approvals_via_api: bool = False
    guest_policy: str = "approve"
    unknown_speaker_policy: str = "deny"
    log_level: str = "info"

    def __post_init__(self) -> None:
        _check_choice("language", self.language, LANGUAGES)
        _check_choice("stt_compute_type", self.stt_compute_type, STT_COMPUTE_TYPES)
        _check_choice("guest_policy", self.guest_policy, POLICIES)
        _check_choice("unknown_speaker_policy", self.unknown_speaker_policy, POLICIES)
        _check_choice("log_level", self.log_level, LOG_LEVELS)
        if not 0.05 <= self.wake_threshold <= 0.95:
            raise OptionsError(f"wake_threshold={self.wake_threshold} is outside 0.05-0.95")
        for name in ("stt_model", "tts_voice", "wake_word", "soul", "anthropic_model"):
            if not getattr(self, name).strip():
                raise OptionsError(f"{name} must not be empty")
        for part in (self.telegram_owner_ids or "").split(","):
            if part.strip() and not part.strip().isdigit():
                raise OptionsError(
                    f"telegram_owner_ids: {part.strip()!r} is not a Telegram user id "
                    "(comma-separated numbers)"
                )


def option_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(KiwiOptions))


def parse_options(raw: Mapping[str, Any]) -> KiwiOptions:
    """Options from the Supervisor's JSON: defaults for what is absent, unknown keys ignored."""
    known = {f.name: f for f in fields(KiwiOptions)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            # An option from a newer or older add-on version must not stop Kiwi from starting.
            _LOGGER.warning("Ignoring unknown option %r", key)
            continue
        values[key] = _coerce(key, value, KiwiOptions.__dataclass_fields__[key].default)
    return KiwiOptions(**values)


def load_options(path: Path | None) -> KiwiOptions:
    """Read an options file; no file means the defaults (running outside the add-on)."""
    if path is None:
        return KiwiOptions()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionsError(f"options file {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise OptionsError(f"options file {path} is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise OptionsError(f"options file {path} must hold a JSON object")
    return parse_options(raw)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check one value's type against its default's; empty optional strings mean unset."""
    if default is None:
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # a chat id typed as a number
        if not isinstance(value, str):
            raise OptionsError(f"{key} must be text, not {type(value).__name__}")
        return value.strip() or None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise OptionsError(f"{key} must be true or false, not {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionsError(f"{key} must be a number, not {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise OptionsError(f"{key} must be text, not {value!r}")
    return value


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionsError(f"{name}={value!r} is not one of {', '.join(choices)}")
