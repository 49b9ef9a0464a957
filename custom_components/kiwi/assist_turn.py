"""Which Assist utterance a conversation turn is: exact, not a guess by timing.

HA's Assist pipeline runs one pipeline run in one task: its speech-to-text stage awaits the STT
entity, then its intent stage awaits the conversation agent. Kiwi's STT entity (stt.py) sets
the utterance the hub transcribed in a context variable of that task; Kiwi's agent
(conversation.py) reads it there. Another pipeline run, another task: it never sees it. The
agent also checks that the text is the transcript, so a text typed into the same task later
is never taken for the voice's.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class AssistUtterance:
    utterance_id: str  # the hub's (POST /api/assist/stt): it knows who spoke
    text: str


_UTTERANCE: ContextVar[AssistUtterance | None] = ContextVar("kiwi_assist_utterance", default=None)


def set_utterance(utterance: AssistUtterance) -> None:
    """The utterance the pipeline run in this task just transcribed."""
    _UTTERANCE.set(utterance)


def utterance_for(text: str) -> AssistUtterance | None:
    """The utterance whose transcript `text` is, in this pipeline run (consumed once)."""
    utterance = _UTTERANCE.get()
    if utterance is None or utterance.text.strip() != text.strip():
        return None
    _UTTERANCE.set(None)
    return utterance
