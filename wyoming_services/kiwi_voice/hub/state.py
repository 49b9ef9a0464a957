"""The assistant's state machine: IDLE → LISTENING → PROCESSING → SPEAKING → IDLE, and friends.

Every real transition publishes STATE_CHANGED; asking for the state it is already in does nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import get_args

from .event_payloads import EventType, state_changed
from .events import EventBus
from .protocol import AssistantStateName


class AssistantState(StrEnum):
    IDLE = "IDLE"
    LISTENING = "LISTENING"  # wake word heard, capturing the utterance
    PROCESSING = "PROCESSING"  # STT / routing / the language model at work
    SPEAKING = "SPEAKING"  # TTS audio is playing
    WAITING_APPROVAL = "WAITING_APPROVAL"  # a guest's command waits for the owner's answer


assert {s.value for s in AssistantState} == set(get_args(AssistantStateName))

_ALLOWED: dict[AssistantState, frozenset[AssistantState]] = {
    AssistantState.IDLE: frozenset(
        {AssistantState.LISTENING, AssistantState.PROCESSING, AssistantState.SPEAKING}
    ),
    AssistantState.LISTENING: frozenset(
        {AssistantState.IDLE, AssistantState.PROCESSING, AssistantState.SPEAKING}
    ),
    AssistantState.PROCESSING: frozenset(
        {
            AssistantState.IDLE,
            AssistantState.LISTENING,
            AssistantState.SPEAKING,
            AssistantState.WAITING_APPROVAL,
        }
    ),
    # Barge-in: the wake word while speaking goes straight back to listening.
    AssistantState.SPEAKING: frozenset(
        {AssistantState.IDLE, AssistantState.LISTENING, AssistantState.PROCESSING}
    ),
    AssistantState.WAITING_APPROVAL: frozenset(
        {AssistantState.IDLE, AssistantState.PROCESSING, AssistantState.SPEAKING}
    ),
}


class InvalidTransition(RuntimeError):
    pass


class StateMachine:
    def __init__(self, bus: EventBus, source: str = "state") -> None:
        self._bus = bus
        self._source = source
        self._state = AssistantState.IDLE
        # The microphone or output whose turn this is (a satellite's id, e.g. host or
        # room:Kitchen): STATE_CHANGED names it, so Home Assistant's satellite entities can
        # mirror the turn that is theirs. Set by the pipeline as a capture or a turn starts.
        self.session: str | None = None

    @property
    def state(self) -> AssistantState:
        return self._state

    def can_enter(self, new: AssistantState) -> bool:
        return new == self._state or new in _ALLOWED[self._state]

    def transition(self, new: AssistantState, source: str | None = None) -> bool:
        """Move to `new`; returns whether the state changed. Raises on a forbidden transition."""
        if new == self._state:
            return False
        if new not in _ALLOWED[self._state]:
            raise InvalidTransition(f"{self._state} cannot go to {new}")
        old, self._state = self._state, new
        payload = state_changed(old, new, self.session)
        self._bus.publish(EventType.STATE_CHANGED, payload, source or self._source)
        return True

    def reset(self, source: str | None = None) -> bool:
        """Back to IDLE from anywhere (stop, errors)."""
        return self.transition(AssistantState.IDLE, source)
