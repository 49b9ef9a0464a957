"""How the hub ends: shutdown (exit 0) or restart (exit RESTART_EXIT_CODE, which the launcher and
the add-on's s6 service treat as "start me again")."""

from __future__ import annotations

import asyncio
from typing import Literal

from .event_payloads import EventType, hub_stopping
from .events import EventBus

RESTART_EXIT_CODE = 75  # EX_TEMPFAIL: "try again"
StopReason = Literal["restart", "shutdown", "signal"]
# Long enough for the answer to the restart/shutdown request to leave the socket.
_GRACE_SECONDS = 0.2


class Lifecycle:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._stop = asyncio.Event()
        self.reason: StopReason | None = None
        self.running = True

    @property
    def exit_code(self) -> int:
        return RESTART_EXIT_CODE if self.reason == "restart" else 0

    def request_stop(self, reason: StopReason) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        self.running = False
        self._bus.publish(EventType.HUB_STOPPING, hub_stopping(reason), "hub")
        asyncio.get_running_loop().call_later(_GRACE_SECONDS, self._stop.set)

    async def wait(self) -> None:
        await self._stop.wait()
