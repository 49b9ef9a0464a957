"""Assist turns that ran through Kiwi's Wyoming services, as the hub hears of them.

Home Assistant's Assist pipeline (a Voice PE, an ESPHome or Wyoming satellite, the app) may use
Kiwi's wake word, STT and TTS without the hub's own pipeline: the combined Wyoming endpoint
reports what it sees (POST /api/assist/events) and the integration's speech-to-text entity
sends its audio here (POST /api/assist/stt). This keeps the assistant's state following such a
turn, and remembers, for a few minutes, who spoke each utterance the hub transcribed: the
conversation agent names the utterance (`utterance_id`) and gets that exact speaker, never a
guess by timing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .state import AssistantState, StateMachine

SOURCE = "assist"
# A turn whose end the hub never hears of (HA used another TTS) goes back to IDLE after this.
TURN_IDLE_SECONDS = 30.0
UTTERANCE_TTL_SECONDS = 300.0
UTTERANCES_KEPT = 64


@dataclass(frozen=True)
class Utterance:
    utterance_id: str
    text: str
    language: str
    speaker: dict[str, Any]  # kiwi-speaker's identification (the voice turn's fields)
    client: str
    at: float


class AssistTurns:
    def __init__(self, state: StateMachine) -> None:
        self._state = state
        self._idle_timer: asyncio.TimerHandle | None = None
        self._utterances: OrderedDict[str, Utterance] = OrderedDict()

    def enter(self, new: AssistantState) -> None:
        """Follow the Assist turn; a state the machine cannot reach from here restarts it."""
        if not self._state.can_enter(new):
            self._state.reset(SOURCE)
        self._state.transition(new, SOURCE)
        self._arm(new)

    def _arm(self, state: AssistantState) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if state is not AssistantState.IDLE:
            self._idle_timer = asyncio.get_running_loop().call_later(
                TURN_IDLE_SECONDS, self._state.reset, SOURCE
            )

    def remember(self, text: str, language: str, speaker: dict[str, Any], client: str) -> Utterance:
        self._expire()
        utterance = Utterance(
            f"utt_{secrets.token_hex(8)}", text, language, speaker, client, time.monotonic()
        )
        self._utterances[utterance.utterance_id] = utterance
        while len(self._utterances) > UTTERANCES_KEPT:
            self._utterances.popitem(last=False)
        return utterance

    def utterance(self, utterance_id: str) -> Utterance | None:
        self._expire()
        return self._utterances.get(utterance_id)

    def _expire(self) -> None:
        oldest = time.monotonic() - UTTERANCE_TTL_SECONDS
        while self._utterances and next(iter(self._utterances.values())).at < oldest:
            self._utterances.popitem(last=False)
