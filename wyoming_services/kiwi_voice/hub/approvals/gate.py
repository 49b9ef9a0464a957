"""The pipeline's `ApprovalGate`, answered by the owner: over Telegram, from Home Assistant
(kiwi.approve / kiwi.deny), the dashboard, or by voice.

- `request()`: a guest's actionable command waits for the owner (the registry's deadline denies
  it). When no channel reaches the owner (no Telegram, `approvals_via_api` off) the guest hears
  at once why not.
- `request_action()`: the same for a sensitive Home Assistant action Claude wants to run.
- `answer_by_voice()`: the identified owner saying "yes" or "no" answers the newest pending
  request; a request nobody waits for any more (the owner's wake word interrupted the guest's
  turn) is carried out in the owner's turn, and its result is what Kiwi says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kiwi_voice.hub.pipeline.policy import ApprovalResult, Role, Speaker, role_of
from kiwi_voice.hub.settings import SettingsStore
from kiwi_voice.hub.state import AssistantState, StateMachine

from .followup import ApprovedWork
from .model import Approval, ServiceCall
from .registry import ApprovalRegistry
from .voice_answers import yes_or_no

_LOGGER = logging.getLogger(__name__)
SOURCE = "approvals"


def refusal(approval: Approval) -> str:
    """What the asker hears when the answer is not yes."""
    who = f"Sorry {approval.speaker}" if approval.speaker else "Sorry"
    if approval.status == "expired":
        return f"{who}, the owner did not answer in time, so I did not do that."
    return f"{who}, the owner declined that."


class OwnerApprovalGate:
    def __init__(
        self,
        *,
        registry: ApprovalRegistry,
        settings: SettingsStore,
        work: ApprovedWork,
        telegram_configured: Callable[[], bool],
        state: StateMachine | None = None,
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._work = work
        self._telegram_configured = telegram_configured
        self._state = state

    def reachable(self) -> bool:
        """Whether some channel can bring the owner's answer."""
        return self._telegram_configured() or bool(self._settings.get("approvals_via_api"))

    def _timeout(self) -> float:
        return float(self._settings.get("approval_timeout_seconds"))

    # ---- the pipeline's ApprovalGate -----------------------------------------------------------

    async def request(self, speaker: Speaker, command: str, language: str) -> ApprovalResult:
        if not self.reachable():
            return ApprovalResult(
                approved=False,
                answer=(
                    f"Sorry {speaker.name}, that needs the owner's approval, and I have no way "
                    "to ask them: Telegram approvals are not set up."
                ),
            )
        approval = self._registry.open(
            kind="voice",
            command=command,
            timeout_seconds=self._timeout(),
            language=language,
            speaker=speaker.name,
            speaker_id=speaker.id,
        )
        decided = await self._registry.wait(approval.request_id)
        if decided.approved:
            return ApprovalResult(approved=True)
        return ApprovalResult(approved=False, answer=refusal(decided))

    async def request_action(
        self, call: ServiceCall, language: str, command: str | None = None
    ) -> Approval | None:
        """Wait for the owner's decision on a sensitive action; None when nobody can be asked.

        `command` is what the owner reads (default: the call itself)."""
        if not self.reachable():
            return None
        approval = self._registry.open(
            kind="exec",
            command=command or call.describe(),
            timeout_seconds=self._timeout(),
            language=language,
            action=call,
        )
        waiting = self._enter(AssistantState.WAITING_APPROVAL, AssistantState.PROCESSING)
        try:
            return await self._registry.wait(approval.request_id)
        finally:
            if waiting:
                self._enter(AssistantState.PROCESSING, AssistantState.WAITING_APPROVAL)

    def _enter(self, new: AssistantState, only_from: AssistantState) -> bool:
        # Only the plain case: a turn that already speaks keeps its state.
        state = self._state
        if state is None or state.state != only_from:
            return False
        return state.transition(new, SOURCE)

    async def answer_by_voice(self, speaker: Speaker, text: str) -> str | None:
        """What to say when `text` is the owner's spoken answer; None when it is not one."""
        if speaker.is_self or not speaker.voice or role_of(speaker) is not Role.OWNER:
            return None
        answer = yes_or_no(text)
        pending = self._registry.pending()
        if answer is None or not pending:
            return None
        newest = pending[-1]  # the question most recently put to the owner
        carried_by_turn = self._registry.is_awaited(newest.request_id)
        decided = self._registry.resolve(newest.request_id, approved=answer, by="voice")
        if not answer:
            return f"Okay, I declined: {decided.command}."
        if carried_by_turn:  # the waiting turn runs it and answers the guest itself
            return f"Okay, approved: {decided.command}."
        result = await self._work.run(decided)
        return f"Okay, approved. {result}".strip()
