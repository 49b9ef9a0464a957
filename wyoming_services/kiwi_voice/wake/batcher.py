"""Gathers the frames of every connection into shared batches for the engine.

Each connection hands over its stream's complete frames and awaits their hits. Whatever has
been handed over by the time a worker is free is scored together in one `score_batch` call:
one melspectrogram, one embedding and one classifier pass per 80 ms tick for all of those
streams, instead of one per stream. At most `workers` batches run at once (one per engine
thread); with many real-time streams, each batch holds every stream whose next frame arrived
while the previous batch ran, so the batch grows with the load and the per-call overhead of
the runtimes is paid once per tick rather than once per stream.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from kiwi_voice.common.executor import EngineExecutor

from .engine import Hit, WakeEngine, WakeStream
from .features import FloatArray


@dataclass
class _Job:
    stream: WakeStream
    audio: FloatArray
    done: asyncio.Future[list[Hit]]


class WakeBatcher:
    """Runs queued streams' frames in shared batches on the engine executor."""

    def __init__(self, executor: EngineExecutor) -> None:
        self._executor = executor
        self._queue: list[_Job] = []
        self._running = 0
        self._drains: set[asyncio.Task[None]] = set()  # held so that none is collected early

    async def score(self, stream: WakeStream, audio: FloatArray) -> list[Hit]:
        """The hits of `audio` (whole frames) on `stream`; the stream's next call waits for it."""
        job = _Job(stream, audio, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if self._running < self._executor.workers:
            self._running += 1
            drain = asyncio.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await job.done

    async def _drain(self) -> None:
        try:
            while self._queue:
                # A connection that left no longer waits: its frames are not scored.
                jobs = [job for job in self._queue if not job.done.done()]
                self._queue = []
                # Streams opened before a model reload belong to the engine they started on.
                by_engine: dict[WakeEngine, list[_Job]] = defaultdict(list)
                for job in jobs:
                    by_engine[job.stream.engine].append(job)
                for engine, group in by_engine.items():
                    await self._run(engine, group)
        finally:
            self._running -= 1

    async def _run(self, engine: WakeEngine, jobs: list[_Job]) -> None:
        try:
            results = await self._executor.run(
                engine.score_batch, [(job.stream, job.audio) for job in jobs]
            )
        except Exception as err:  # every waiting stream learns of the failure
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(err)
            return
        for job, hits in zip(jobs, results, strict=True):
            if not job.done.done():
                job.done.set_result(hits)
