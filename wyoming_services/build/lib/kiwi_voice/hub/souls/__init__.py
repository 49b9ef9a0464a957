"""Souls: Kiwi's personalities (built-in and the user's own Markdown files)."""

from .model import Soul, SoulFileError, parse_soul
from .registry import BUILTIN_DIR, DEFAULT_SOUL_ID, SoulRegistry
from .selection import ActiveSoul, SoulError, SoulNotAllowed, UnknownSoul

__all__ = [
    "BUILTIN_DIR",
    "DEFAULT_SOUL_ID",
    "ActiveSoul",
    "Soul",
    "SoulError",
    "SoulFileError",
    "SoulNotAllowed",
    "SoulRegistry",
    "UnknownSoul",
    "parse_soul",
]
