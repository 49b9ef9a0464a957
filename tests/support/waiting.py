"""Waiting for something to happen, with a deadline, instead of sleeping a fixed time.

    found = await until(lambda: [e for e in events if e.event == "TTS_FINISHED"], "TTS_FINISHED")
    until_sync(lambda: READY in service.log(), "kiwi-stt ready", timeout_s=60)

The condition is asked again every `every_s` seconds until it returns something truthy, which
is returned; after `timeout_s` a `TimeoutError` says what did not happen. A condition may raise
to give up early (a process that exited will never become ready). A fixed sleep stays only where
the passing time is itself what a test checks (a deadline, a pace, "nothing happens within"),
with a comment saying so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 10.0


class _Deadline:
    def __init__(self, what: str | Callable[[], str], timeout_s: float) -> None:
        self._what = what
        self._timeout_s = timeout_s
        self._at = time.monotonic() + timeout_s

    def check(self) -> None:
        if time.monotonic() > self._at:
            what = self._what() if callable(self._what) else self._what
            raise TimeoutError(f"not within {self._timeout_s:g} s: {what}")


async def until(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    every_s: float = 0.02,
) -> T:
    """The first truthy `condition()`, asked while the event loop runs on."""

    async def ask() -> T:
        return condition()

    return await until_async(ask, what, timeout_s=timeout_s, every_s=every_s)


async def until_async(
    condition: Callable[[], Awaitable[T]],
    what: str | Callable[[], str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    every_s: float = 0.02,
) -> T:
    """Like `until`, for a condition that has to await (an HTTP request, a socket)."""
    deadline = _Deadline(what, timeout_s)
    while not (value := await condition()):
        deadline.check()
        await asyncio.sleep(every_s)
    return value


def until_sync(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    every_s: float = 0.05,
) -> T:
    """Like `until`, blocking (fixtures and helpers outside an event loop)."""
    deadline = _Deadline(what, timeout_s)
    while not (value := condition()):
        deadline.check()
        time.sleep(every_s)
    return value
