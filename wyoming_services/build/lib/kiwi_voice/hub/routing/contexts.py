"""The conversation so far, per speaker: each voice (or API conversation) has its own history,
forgotten after `context_idle_seconds` without a turn, or all at once by /api/reset-context.

Each history is the hub's `ConversationMemory`; this module only decides which one a turn
belongs to and when it expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kiwi_voice.hub.conversation import ConversationMemory

from .claude import ChatMessage


@dataclass
class _Entry:
    memory: ConversationMemory
    last_used: float


class SpeakerContexts:
    def __init__(
        self,
        idle_seconds: Callable[[], float],
        max_turns: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_seconds = idle_seconds
        self._max_turns = max_turns
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def _expire(self) -> None:
        idle = self._idle_seconds()
        if idle <= 0:
            return
        now = self._clock()
        for key in [k for k, e in self._entries.items() if now - e.last_used > idle]:
            del self._entries[key]

    def history(self, key: str) -> list[ChatMessage]:
        """The messages so far of `key`'s conversation (empty when new or expired)."""
        self._expire()
        entry = self._entries.get(key)
        if entry is None:
            return []
        return [ChatMessage(turn.role, turn.text) for turn in entry.memory.turns]

    def record(self, key: str, user_text: str, reply_text: str) -> None:
        """Keep one exchange. Only complete pairs are kept, so roles always alternate."""
        if not user_text.strip() or not reply_text.strip():
            return
        self._expire()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(ConversationMemory(self._max_turns), 0.0)
        entry.memory.add("user", user_text)
        entry.memory.add("assistant", reply_text)
        # ConversationMemory trims from the front; never let it start with a reply.
        if entry.memory.turns and entry.memory.turns[0].role == "assistant":
            del entry.memory.turns[0]
        entry.last_used = self._clock()

    def clear(self) -> None:
        self._entries.clear()

    @property
    def active_count(self) -> int:
        self._expire()
        return len(self._entries)
