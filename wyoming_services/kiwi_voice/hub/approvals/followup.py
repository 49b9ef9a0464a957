"""Decisions nobody waits for any more, carried out anyway.

A request outlives the turn that asked: the owner's wake word interrupts the guest's waiting
turn (barge-in), or Kiwi restarts while the request is pending. When such a request is approved
later (Telegram, Home Assistant, the dashboard), `FollowUp` runs it — the guest's command
through the router with home control allowed, or the Home Assistant action — and Kiwi says the
result; a denial is said too. Requests that expire unanswered are only logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.event_payloads import EventType, error
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.routing.router import Router

from .ha_actions import HomeAssistantActions
from .model import Approval
from .registry import ApprovalRegistry

_LOGGER = logging.getLogger(__name__)
SOURCE = "approvals"
Speak = Callable[[str], Awaitable[None]]


class ApprovedWork:
    """What an approved request does: the guest's command, or the Home Assistant action."""

    def __init__(self, actions: HomeAssistantActions, bus: EventBus) -> None:
        self._actions = actions
        self._bus = bus
        self._router: Router | None = None

    def attach_router(self, router: Router) -> None:
        self._router = router

    async def run(self, approval: Approval) -> str:
        """Carry the request out; returns what Kiwi should say about it."""
        if approval.action is not None:
            return (await self._actions.call(approval.action)).text
        if self._router is None:
            return "I cannot run commands right now."
        context_key = approval.speaker_id or f"unknown:{approval.speaker or 'guest'}"
        try:
            reply = await self._router.route(
                approval.command,
                approval.language,
                context_key,
                allow_home_control=True,
                report_error=self._report,
            )
            text = "".join([delta async for delta in reply.stream()])
        except ServiceError as err:
            self._report(err)
            return "Sorry, that did not work."
        self._router.remember(context_key, approval.command, reply)
        return text

    def _report(self, err: ServiceError) -> None:
        _LOGGER.warning("Approved command: %s failed: %s (%s)", err.service, err.message, err.code)
        self._bus.publish(
            EventType.ERROR,
            error(err.message, err.service, err.code, setting=err.setting),
            err.service,
        )


class FollowUp:
    def __init__(self, registry: ApprovalRegistry, work: ApprovedWork) -> None:
        self._work = work
        self._speak: Speak | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        registry.on_resolved(self._on_resolved)

    def attach_speaker(self, speak: Speak) -> None:
        self._speak = speak

    def _on_resolved(self, approval: Approval, waited: bool) -> None:
        # A waiting turn carries its own decision out; a spoken answer runs in the owner's turn.
        if waited or approval.decided_by == "voice":
            return
        if approval.status == "expired":
            _LOGGER.info(
                "Approval %s expired unanswered: %s", approval.request_id, approval.command
            )
            return
        task = asyncio.get_running_loop().create_task(self._carry_out(approval))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _carry_out(self, approval: Approval) -> None:
        who = approval.speaker or "the assistant"
        if approval.approved:
            result = await self._work.run(approval)
            text = f"The owner approved {who}'s request. {result}"
        else:
            text = f"The owner declined {who}'s request: {approval.command}."
        if self._speak is None:
            _LOGGER.info("Approval %s: %s", approval.request_id, text)
            return
        try:
            await self._speak(text)
        except ServiceError as err:
            _LOGGER.warning("Could not say the outcome of %s: %s", approval.request_id, err)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                _LOGGER.debug("Follow-up %s ended on close", task.get_name())
