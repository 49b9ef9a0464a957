"""Engine work off the event loop, in a fixed number of worker threads.

Every service owns one `EngineExecutor`: its worker count is the service's stated
concurrency (more requests queue, they are never run in parallel beyond it). Iterative
work (sentences, segments) streams its items back to the loop as each one is ready and
stops between items once the consumer has gone away, so a client that disconnects costs
at most the item in progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

_ITEM = "item"
_ERROR = "error"
_DONE = "done"
_PERMIT_POLL_S = 0.05
_CANCEL_POLL_S = 0.1


class EngineExecutor:
    """A bounded thread pool for blocking engine calls, shared by all connections."""

    def __init__(self, name: str, workers: int) -> None:
        if workers < 1:
            raise ValueError("an engine executor needs at least one worker")
        self.name = name
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-engine")
        _LOGGER.info("%s engine: %d worker thread(s); further requests queue", name, workers)

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `func(*args, **kwargs)` in a worker; cancelling a queued call drops it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(func, *args, **kwargs))

    async def iterate(
        self,
        produce: Callable[[], Iterator[T]],
        *,
        max_ahead: int | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> AsyncGenerator[T, None]:
        """Run `produce()` in one worker and yield its items as soon as each is ready.

        `max_ahead` bounds how many items the worker may have made that the consumer has
        not finished with yet (None: unbounded); with it, the worker never races through
        a long job while the client is slow or gone. `cancelled` is polled on the event
        loop while waiting: once it returns True the iteration ends, and work still queued
        behind busy workers never starts. Use with `contextlib.aclosing` so that leaving
        the loop early (an error, a disconnect) stops the worker before its next item.
        """
        loop = asyncio.get_running_loop()
        handoff: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        permits = threading.Semaphore(max_ahead) if max_ahead else None

        def wait_for_permit() -> bool:
            while permits is not None and not permits.acquire(timeout=_PERMIT_POLL_S):
                if stop.is_set():
                    return False
            return not stop.is_set()

        def post(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(handoff.put_nowait, (kind, value))
            except RuntimeError:
                stop.set()  # the loop is closed: nobody is listening any more

        def work() -> None:
            iterator: Iterator[T] | None = None
            made = 0
            if stop.is_set():
                _LOGGER.debug("%s: dropped queued work, nobody waits", self.name)
                return
            try:
                iterator = produce()
                while True:
                    if not wait_for_permit():
                        _LOGGER.debug("%s: stopped after %d item(s), nobody waits", self.name, made)
                        return
                    try:
                        item = next(iterator)
                    except StopIteration:
                        break
                    made += 1
                    post(_ITEM, item)
            except BaseException as err:  # handed to the consumer, re-raised there
                post(_ERROR, err)
                return
            finally:
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()
            post(_DONE, None)

        future = loop.run_in_executor(self._pool, work)
        try:
            while True:
                try:
                    kind, value = handoff.get_nowait()
                except asyncio.QueueEmpty:
                    try:
                        kind, value = await asyncio.wait_for(handoff.get(), _CANCEL_POLL_S)
                    except TimeoutError:
                        if cancelled is not None and cancelled():
                            return
                        continue
                if kind == _DONE:
                    break
                if kind == _ERROR:
                    raise value
                yield value
                if permits is not None:
                    permits.release()
        finally:
            stop.set()
            future.cancel()  # only has an effect while the work is still queued

    def shutdown(self) -> None:
        """Stop accepting work; queued work is dropped, running work finishes."""
        self._pool.shutdown(wait=False, cancel_futures=True)
