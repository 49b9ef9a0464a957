"""The sensitive-action gate: every route by which Kiwi can change the home asks it first.

- Claude's `call_home_assistant_service` tool (tools.py) asks `decide(call)`;
- every command for Home Assistant's own conversation agent (voice turns, POST /api/conversation,
  POST /api/homeassistant/command, an approved guest's command) passes `check_command`, which
  HomeAssistantClient.process calls before it sends anything: the command is judged as the call
  `conversation.process {text}`, so HA's agent is asked what it would do (without doing it).

What a call touches is resolved through Home Assistant (targets.py) and judged against the
`sensitive_actions` setting (sensitivity.py). A sensitive call waits for the owner's approval
(EXEC_APPROVAL_REQUESTED … RESOLVED) and runs only when approved. A guest's command the owner
approved a moment ago as it was spoken (APPROVAL_REQUESTED for that very text) is not asked
about twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiwi_voice.hub.errors import ServiceUnavailable
from kiwi_voice.hub.homeassistant import CommandRefused
from kiwi_voice.hub.settings import SettingsStore

from .gate import OwnerApprovalGate
from .model import Approval, ServiceCall
from .registry import ApprovalRegistry
from .sensitivity import Judgement, judge, patterns_of
from .targets import TargetResolver

_LOGGER = logging.getLogger(__name__)
# How long the owner's yes to a guest's spoken command also covers that command's actions.
APPROVED_COMMAND_SECONDS = 300.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    judgement: Judgement
    refusal: str = ""  # why not (for Claude's tool result and for Kiwi to say)
    code: str = ""  # approval_unavailable, approval_denied, approval_expired, homeassistant_...
    unreachable: ServiceUnavailable | None = None  # Home Assistant could not be reached


class HomeGuard:
    def __init__(
        self,
        *,
        resolver: TargetResolver,
        gate: OwnerApprovalGate,
        settings: SettingsStore,
        registry: ApprovalRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._gate = gate
        self._settings = settings
        self._clock = clock
        self._approved_commands: dict[str, float] = {}
        registry.on_resolved(self._on_resolved)

    def _on_resolved(self, approval: Approval, _waited: bool) -> None:
        if approval.kind == "voice" and approval.approved:
            self._approved_commands[_normal(approval.command)] = self._clock()

    def _approved_as_spoken(self, text: str) -> bool:
        now = self._clock()
        for command, at in list(self._approved_commands.items()):
            if now - at > APPROVED_COMMAND_SECONDS:
                del self._approved_commands[command]
        return _normal(text) in self._approved_commands

    async def decide(self, call: ServiceCall, command: str | None = None) -> Decision:
        """Whether `call` may run: at once, or after the owner approved it (waits for that).

        Home Assistant out of reach: not run (it could not run anyway), and the owner is not
        asked about a call that cannot be followed for now. With no `sensitive_actions` at all,
        nothing needs approval and nothing is resolved."""
        setting = str(self._settings.get("sensitive_actions"))
        if not patterns_of(setting):
            return Decision(True, Judgement(False, ()))
        resolution = await self._resolver.resolve(call)
        judgement = judge(resolution, setting)
        if resolution.unreachable is not None:
            return Decision(
                False,
                judgement,
                f"Not done: Home Assistant cannot be reached ({resolution.unreachable.message}).",
                "homeassistant_unavailable",
                unreachable=resolution.unreachable,
            )
        if not judgement.sensitive:
            return Decision(True, judgement)
        what = command or call.describe()
        _LOGGER.info("Sensitive: %s (%s)", what, judgement.summary())
        language = str(self._settings.get("language"))
        decided = await self._gate.request_action(
            call, language, command=_asked(what, call, judgement)
        )
        if decided is None:
            return Decision(
                False,
                judgement,
                f"Not done: {what} needs the owner's approval ({judgement.summary()}), and no "
                "approval channel is set up (Telegram, or approvals_via_api).",
                "approval_unavailable",
            )
        if decided.status == "expired":
            return Decision(
                False,
                judgement,
                f"Not done: the owner did not approve {what} in time.",
                "approval_expired",
            )
        if not decided.approved:
            return Decision(
                False, judgement, f"Not done: the owner declined {what}.", "approval_denied"
            )
        return Decision(True, judgement)

    async def check_command(self, text: str, language: str) -> None:
        """HomeAssistantClient's CommandGuard: a command for HA's conversation agent."""
        if self._approved_as_spoken(text):
            return
        call = ServiceCall(
            domain="conversation", service="process", data={"text": text, "language": language}
        )
        decision = await self.decide(call, command=f"“{text}” (Home Assistant's agent)")
        if decision.unreachable is not None:
            raise decision.unreachable  # as sending the command would have failed
        if not decision.allowed:
            raise CommandRefused(decision.code, decision.refusal, _spoken(decision))


def _asked(what: str, call: ServiceCall, judgement: Judgement) -> str:
    """What the owner is asked: the call, and what it touches when the call does not say."""
    hidden = [e for e in judgement.entities if e not in call.entity_ids]
    if hidden:
        shown = ", ".join(hidden[:5]) + (f" and {len(hidden) - 5} more" if len(hidden) > 5 else "")
        what = f"{what} (touches {shown})"
    if judgement.unknown:
        what = f"{what} (Kiwi cannot tell all it would touch)"
    return what


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _spoken(decision: Decision) -> str:
    if decision.code == "approval_unavailable":
        return (
            "Sorry, that needs the owner's approval, and I have no way to ask them: "
            "Telegram approvals are not set up."
        )
    if decision.code == "approval_expired":
        return "Sorry, the owner did not answer in time, so I did not do that."
    return "Sorry, the owner declined that."
