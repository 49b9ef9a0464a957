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


def _message(what: str | Callable[[], str], timeout_s: float) -> str:
    return f"not within {timeout_s:g} s: {what() if callable(what) else what}"


async def until(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    every_s: float = 0.02,
) -> T:
    """The first truthy `condition()`, asked while the event loop runs on."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(_message(what, timeout_s))
        await asyncio.sleep(every_s)


async def until_async(
    condition: Callable[[], Awaitable[T]],
    what: str | Callable[[], str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    every_s: float = 0.02,
) -> T:
    """Like `until`, for a condition that has to await (an HTTP request, a socket)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(_message(what, timeout_s))
        await asyncio.sleep(every_s)


def until_sync(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    every_s: float = 0.05,
) -> T:
    """Like `until`, blocking (fixtures and helpers outside an event loop)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(_message(what, timeout_s))
        time.sleep(every_s)
