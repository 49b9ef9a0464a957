"""The approval registry: every request the owner must answer, persisted in kiwi.db.

- `open()` records a request (id `apr_` + 16 hex), publishes APPROVAL_REQUESTED or
  EXEC_APPROVAL_REQUESTED, and arms its deadline;
- `resolve()` decides it exactly once, whoever answers first (Telegram, the REST endpoint, the
  owner's voice, the deadline); a second answer raises `AlreadyResolved` and changes nothing;
- `wait()` is how a voice turn or a tool call waits for the decision.

Requests live in the `approvals` namespace of kiwi.db, so a pending request outlives a restart:
`restore()` re-arms its deadline, or expires it (APPROVAL_RESOLVED approved=false) when the
deadline passed while Kiwi was down. Listeners hear of every request and decision; `waited`
tells them whether a live turn was waiting (when not, e.g. after a restart or a barge-in, the
decision is carried out by whoever listens, see `followup.py`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from kiwi_voice.hub.event_payloads import (
    EventType,
    approval_requested,
    approval_resolved,
    exec_approval_requested,
    exec_approval_resolved,
)
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.store import Store

from .model import Approval, ApprovalKind, DecidedBy, ServiceCall, new_request_id

_LOGGER = logging.getLogger(__name__)
SOURCE = "approvals"
NAMESPACE = "approvals"
# Decided requests are kept a day, so a late second answer gets "already resolved", not "unknown".
KEEP_DECIDED_SECONDS = 24 * 3600.0

RequestedListener = Callable[[Approval], None]
ResolvedListener = Callable[[Approval, bool], None]  # (the decided request, a turn was waiting)


class UnknownApproval(LookupError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no approval request {request_id!r}")
        self.request_id = request_id


class AlreadyResolved(RuntimeError):
    def __init__(self, approval: Approval) -> None:
        super().__init__(f"approval request {approval.request_id} was already {approval.status}")
        self.approval = approval


class ApprovalRegistry:
    def __init__(self, store: Store, bus: EventBus, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._records: dict[str, Approval] = {}
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._decisions: dict[str, asyncio.Future[Approval]] = {}
        self._waiters: dict[str, int] = {}
        self._requested_listeners: list[RequestedListener] = []
        self._resolved_listeners: list[ResolvedListener] = []

    # ---- listeners ------------------------------------------------------------------------------

    def on_requested(self, listener: RequestedListener) -> Callable[[], None]:
        self._requested_listeners.append(listener)
        return lambda: self._requested_listeners.remove(listener)

    def on_resolved(self, listener: ResolvedListener) -> Callable[[], None]:
        self._resolved_listeners.append(listener)
        return lambda: self._resolved_listeners.remove(listener)

    # ---- reading --------------------------------------------------------------------------------

    def get(self, request_id: str) -> Approval | None:
        return self._records.get(request_id)

    def is_awaited(self, request_id: str) -> bool:
        """Whether a live turn or tool call is waiting for this request's decision."""
        return self._waiters.get(request_id, 0) > 0

    def pending(self, kind: ApprovalKind | None = None) -> list[Approval]:
        """Requests still waiting for an answer, oldest first."""
        found = [a for a in self._records.values() if a.pending and kind in (None, a.kind)]
        return sorted(found, key=lambda a: a.created_at)

    # ---- the life of a request ------------------------------------------------------------------

    def restore(self) -> list[Approval]:
        """Load what an earlier run left: re-arm pending deadlines, expire overdue requests.

        Call once, inside the running event loop, before anything else uses the registry.
        Returns the requests that are still pending.
        """
        now = self._clock()
        unreadable: list[str] = []
        for request_id, raw in self._store.read_namespace(NAMESPACE).items():
            try:
                self._records[request_id] = Approval.from_json(raw)
            except (KeyError, TypeError, ValueError) as err:
                _LOGGER.warning("Dropping unreadable approval %s: %s", request_id, err)
                unreadable.append(request_id)
        if unreadable:
            self._write({}, unreadable)
        self._forget_old_decisions()
        for approval in self.pending():
            if approval.expires_at <= now:
                _LOGGER.info("Approval %s expired while Kiwi was not running", approval.request_id)
                self.resolve(approval.request_id, approved=False, by="timeout")
            else:
                self._arm(approval)
        return self.pending()

    def open(
        self,
        *,
        kind: ApprovalKind,
        command: str,
        timeout_seconds: float,
        language: str = "en",
        speaker: str | None = None,
        speaker_id: str | None = None,
        action: ServiceCall | None = None,
    ) -> Approval:
        self._forget_old_decisions()
        now = self._clock()
        approval = Approval(
            request_id=new_request_id(),
            kind=kind,
            command=command,
            created_at=now,
            expires_at=now + timeout_seconds,
            language=language,
            speaker=speaker,
            speaker_id=speaker_id,
            action=action,
        )
        self._records[approval.request_id] = approval
        self._write({approval.request_id: approval.to_json()})
        self._arm(approval)
        _LOGGER.info(
            "Approval %s requested (%s, %g s): %s",
            approval.request_id,
            kind,
            timeout_seconds,
            command,
        )
        if kind == "voice":
            payload: Any = approval_requested(
                speaker or "Unknown", command, approval.request_id, timeout_seconds
            )
            self._bus.publish(EventType.APPROVAL_REQUESTED, payload, SOURCE)
        else:
            payload = exec_approval_requested(command, approval.request_id, timeout_seconds)
            self._bus.publish(EventType.EXEC_APPROVAL_REQUESTED, payload, SOURCE)
        for listener in list(self._requested_listeners):
            try:
                listener(approval)
            except Exception:
                _LOGGER.exception("Approval listener failed on %s", approval.request_id)
        return approval

    async def wait(self, request_id: str) -> Approval:
        """The decided request; waits as long as it is pending (its deadline bounds that).

        Cancelling the wait leaves the request pending: its decision is then carried out by
        the listeners (`waited` is False for them).
        """
        approval = self._records.get(request_id)
        if approval is None:
            raise UnknownApproval(request_id)
        if not approval.pending:
            return approval
        decision = self._decisions.get(request_id)
        if decision is None:
            decision = self._decisions[request_id] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = self._waiters.get(request_id, 0) + 1
        try:
            return await asyncio.shield(decision)
        finally:
            self._waiters[request_id] -= 1
            if not self._waiters[request_id]:
                del self._waiters[request_id]

    def resolve(self, request_id: str, *, approved: bool, by: DecidedBy) -> Approval:
        """Decide a pending request once. Raises UnknownApproval or AlreadyResolved."""
        approval = self._records.get(request_id)
        if approval is None:
            raise UnknownApproval(request_id)
        if not approval.pending:
            raise AlreadyResolved(approval)
        decided = approval.decided(approved, by, self._clock())
        self._records[request_id] = decided
        self._write({request_id: decided.to_json()})
        deadline = self._deadlines.pop(request_id, None)
        if deadline is not None:
            deadline.cancel()
        waited = self.is_awaited(request_id)
        decision = self._decisions.pop(request_id, None)
        if decision is not None and not decision.done():
            decision.set_result(decided)
        _LOGGER.info("Approval %s %s by %s", request_id, decided.status, by)
        if decided.kind == "voice":
            payload: Any = approval_resolved(
                decided.approved, decided.speaker or "Unknown", request_id, by
            )
            self._bus.publish(EventType.APPROVAL_RESOLVED, payload, SOURCE)
        else:
            payload = exec_approval_resolved(decided.approved, request_id, by)
            self._bus.publish(EventType.EXEC_APPROVAL_RESOLVED, payload, SOURCE)
        for listener in list(self._resolved_listeners):
            try:
                listener(decided, waited)
            except Exception:
                _LOGGER.exception("Approval listener failed on %s", request_id)
        return decided

    def close(self) -> None:
        """Disarm the deadlines (the requests stay pending in kiwi.db for the next run)."""
        for deadline in self._deadlines.values():
            deadline.cancel()
        self._deadlines.clear()

    # ---- internals ------------------------------------------------------------------------------

    def _arm(self, approval: Approval) -> None:
        delay = max(0.0, approval.expires_at - self._clock())
        loop = asyncio.get_running_loop()
        self._deadlines[approval.request_id] = loop.call_later(
            delay, self._expire, approval.request_id
        )

    def _expire(self, request_id: str) -> None:
        self._deadlines.pop(request_id, None)
        approval = self._records.get(request_id)
        if approval is not None and approval.pending:
            self.resolve(request_id, approved=False, by="timeout")

    def _forget_old_decisions(self) -> None:
        now = self._clock()
        old = [
            a.request_id
            for a in self._records.values()
            if not a.pending and now - (a.decided_at or 0) > KEEP_DECIDED_SECONDS
        ]
        for request_id in old:
            del self._records[request_id]
        if old:
            self._write({}, old)

    def _write(self, values: dict[str, Any], removed: list[str] | None = None) -> None:
        try:
            self._store.write_namespace(NAMESPACE, values, removed or ())
        except sqlite3.Error:
            # The decision still counts in this run; only its survival of a restart is lost.
            _LOGGER.exception("Could not store approvals %s", sorted(values) or removed)
