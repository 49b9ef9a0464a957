"""The conversation so far, as the language model sees it (cleared by POST /api/reset-context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    text: str


@dataclass
class ConversationMemory:
    max_turns: int = 20
    turns: list[Turn] = field(default_factory=list)

    def add(self, role: Literal["user", "assistant"], text: str) -> None:
        self.turns.append(Turn(role, text))
        del self.turns[: -self.max_turns]

    def clear(self) -> None:
        self.turns.clear()
