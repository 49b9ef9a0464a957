"""Who may do what: the speaker's role decides whether a command runs, waits for approval,
is answered as chat only, or is ignored.

Roles come from the speaker service's priority (0 owner, 1 friend, 2 guest, 3 blocked) and the
profile's blocked flag; a voice that matched no profile is `unknown`. Friends follow the
`friend_policy` setting (default allow), guests `guest_policy` and unknown voices
`unknown_speaker_policy` (allow / approve / deny; deny means chat only: the language model
answers, Home Assistant is never asked).

Approval is a seam: `ApprovalGate` is asked for the owner's decision. The default gate cannot
reach the owner, so it refuses with a spoken answer; the Telegram gate (issue 6) replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from kiwi_voice.hub.settings import SettingsStore


class Role(StrEnum):
    OWNER = "owner"
    FRIEND = "friend"
    GUEST = "guest"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


class Action(StrEnum):
    RUN = "run"  # home control and chat
    APPROVE = "approve"  # ask the ApprovalGate first
    CHAT_ONLY = "chat_only"  # the language model may answer; no home control
    DROP = "drop"  # ignore the utterance (blocked speaker)


@dataclass(frozen=True, kw_only=True)
class Speaker:
    """Who spoke (or typed) the turn's request."""

    id: str | None
    name: str
    priority: int | None
    confidence: float
    is_blocked: bool = False
    is_self: bool = False  # Kiwi's own voice (echo)
    voice: bool = True  # False: typed by an authenticated client, no voiceprint
    person: str | None = None  # the HA person linked to the profile (speaker_links.py)
    ha_user_id: str | None = None  # that person's HA user: HA runs the turn as this user
    soul: str | None = None  # the soul the profile names for its turns

    @property
    def context_key(self) -> str:
        return self.id or f"unknown:{self.name}"

    @classmethod
    def client(cls, label: str) -> Speaker:
        """An authenticated API or dashboard client: it holds the owner's token."""
        return cls(id=None, name=label, priority=0, confidence=1.0, voice=False)


_ROLE_BY_PRIORITY = {0: Role.OWNER, 1: Role.FRIEND, 2: Role.GUEST, 3: Role.BLOCKED}
_ACTION_BY_SETTING = {"allow": Action.RUN, "approve": Action.APPROVE, "deny": Action.CHAT_ONLY}
# The owner always may; these roles follow a setting (docs/approvals.md).
_POLICY_SETTING = {Role.FRIEND: "friend_policy", Role.GUEST: "guest_policy"}


def role_of(speaker: Speaker) -> Role:
    if speaker.is_blocked:
        return Role.BLOCKED
    if speaker.priority is None or (speaker.id is None and speaker.voice):
        return Role.UNKNOWN
    return _ROLE_BY_PRIORITY.get(speaker.priority, Role.GUEST)


# The wake word's own audio that the speaker gate identifies (it ends where the word ends).
WAKE_GATE_SECONDS = 1.5
# A wake word is under a second of speech: its embedding sits further from the profile than a
# command's. The gate lets the closest profile's cosine fall this far below the profile's own
# threshold (bench/bench_wake_gate.py measures the trade-off and the point chosen).
WAKE_GATE_SLACK = 0.02


def wake_gate_passes(identified: Mapping[str, Any], slack: float = WAKE_GATE_SLACK) -> bool:
    """The speaker gate on the wake word (setting `wake_speaker_gate`): only the voice of an
    enrolled, unblocked speaker wakes Kiwi; an unknown voice, Kiwi's echo or a blocked
    speaker does not."""
    if identified.get("is_self") or identified.get("decision") == "self":
        return False
    if identified.get("decision") == "known":
        return identified.get("id") is not None and not identified.get("is_blocked")
    best = identified.get("best")
    if not isinstance(best, Mapping) or best.get("is_blocked") or not best.get("ready"):
        return False
    confidence, threshold = best.get("confidence"), best.get("threshold")
    if not isinstance(confidence, int | float) or not isinstance(threshold, int | float):
        return False
    return confidence >= threshold - slack


@dataclass(frozen=True)
class Decision:
    role: Role
    action: Action
    reason: str


class SpeakerPolicy:
    def __init__(self, settings: SettingsStore) -> None:
        self._settings = settings

    def decide(self, speaker: Speaker) -> Decision:
        role = role_of(speaker)
        if speaker.is_self:
            return Decision(role, Action.DROP, "Kiwi's own voice (echo)")
        if role is Role.BLOCKED:
            return Decision(role, Action.DROP, "the speaker is blocked")
        if role is Role.OWNER:
            return Decision(role, Action.RUN, f"{role} may run commands")
        setting = _POLICY_SETTING.get(role, "unknown_speaker_policy")
        value = str(self._settings.get(setting))
        return Decision(role, _ACTION_BY_SETTING.get(value, Action.CHAT_ONLY), f"{setting}={value}")


@dataclass(frozen=True)
class ApprovalResult:
    approved: bool
    answer: str | None = None  # what to say when refused (None: a generic refusal)


class ApprovalGate(Protocol):
    async def request(self, speaker: Speaker, command: str, language: str) -> ApprovalResult:
        """Ask the owner whether `speaker` may run `command`; may take as long as the owner."""

    async def answer_by_voice(self, speaker: Speaker, text: str) -> str | None:
        """When `text` is the owner answering a pending request ("yes"/"no"), decide it and
        return what to say; None when the utterance is not such an answer."""


class RefusingApprovalGate:
    """No way to reach the owner is configured: refuse, and say why."""

    async def request(self, speaker: Speaker, command: str, language: str) -> ApprovalResult:
        return ApprovalResult(
            approved=False,
            answer=(
                f"Sorry {speaker.name}, that needs the owner's approval, "
                "and approvals are not set up yet."
            ),
        )

    async def answer_by_voice(self, speaker: Speaker, text: str) -> str | None:
        return None  # nothing is ever pending
