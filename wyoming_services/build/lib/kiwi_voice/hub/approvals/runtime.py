"""The approval parts as the HTTP handlers find them (`request.app[APPROVALS_KEY]`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from .followup import ApprovedWork, FollowUp
from .gate import OwnerApprovalGate
from .guest_learning import LearningSpeakers
from .ha_actions import HomeAssistantActions
from .registry import ApprovalRegistry
from .tools import HomeAssistantTools

if TYPE_CHECKING:
    from .telegram import TelegramApprover


@dataclass(kw_only=True)
class ApprovalsRuntime:
    registry: ApprovalRegistry
    gate: OwnerApprovalGate
    tools: HomeAssistantTools
    actions: HomeAssistantActions
    work: ApprovedWork
    followup: FollowUp
    telegram: TelegramApprover | None
    speakers: LearningSpeakers  # voice turns identify through it (learns unknown voices)


APPROVALS_KEY = web.AppKey("kiwi_approvals", ApprovalsRuntime)
