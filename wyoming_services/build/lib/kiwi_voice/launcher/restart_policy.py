"""When a child process exits: restart it (after how long), give up on it, or stop everything.

Shared by the standalone launcher and the add-on's s6 finish scripts, so both treat a crashing
service the same way: quick restarts at first, longer pauses while it keeps failing, and after too
many failures in a short time it is reported instead of boot-looping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# The hub exits with RESTART_EXIT_CODE (75, EX_TEMPFAIL) after POST /api/restart: "start me
# again". It exits 0 after POST /api/shutdown, or when it was signalled to stop.
from kiwi_voice.hub.lifecycle import RESTART_EXIT_CODE

__all__ = ["RESTART_EXIT_CODE", "Action", "Decision", "RestartPolicy"]

SHUTDOWN_EXIT_CODE = 0


class Action(StrEnum):
    RESTART = "restart"
    GIVE_UP = "give_up"
    STOP_ALL = "stop_all"


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float = 0.0
    # Failure times still inside the window, this one included: the history to keep.
    failures: tuple[float, ...] = ()
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_failures: int = 5
    failure_window_s: float = 300.0

    def decide(
        self,
        *,
        process: str,
        exit_code: int,
        now: float,
        failures: Sequence[float] = (),
    ) -> Decision:
        """What to do about `process` exiting with `exit_code` at `now` (monotonic seconds)."""
        if exit_code == RESTART_EXIT_CODE:
            return Decision(Action.RESTART, failures=tuple(failures), reason="asked to restart")
        if process == "hub" and exit_code == SHUTDOWN_EXIT_CODE:
            # Only asked while the hub is wanted up: a stop Kiwi itself sent is never decided on.
            return Decision(Action.STOP_ALL, reason="the hub was asked to shut down")
        recent = (*(t for t in failures if now - t < self.failure_window_s), now)
        if len(recent) >= self.max_failures:
            return Decision(
                Action.GIVE_UP,
                failures=recent,
                reason=(
                    f"{process} failed {len(recent)} times in {self.failure_window_s:.0f} s "
                    f"(last exit code {exit_code})"
                ),
            )
        delay = min(self.max_delay_s, self.first_delay_s * 2 ** (len(recent) - 1))
        return Decision(
            Action.RESTART,
            delay_s=delay,
            failures=recent,
            reason=f"{process} exited with code {exit_code}",
        )
