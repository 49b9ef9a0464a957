"""Runs Kiwi's processes outside the add-on: start, relay logs, restart on failure, stop cleanly.

Inside the add-on s6-overlay does this job (one longrun per process); the restart decisions are
the same (`restart_policy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from kiwi_voice.combined.info import describe_backend

from .models_report import missing_artifacts
from .probe import wait_for_ports
from .restart_policy import Action, RestartPolicy
from .specs import ProcessSpec, Protocol

_LOGGER = logging.getLogger(__name__)

# How long children get to finish after SIGINT, and after SIGTERM, before the next signal.
INTERRUPT_GRACE_S = 8.0
TERMINATE_GRACE_S = 3.0
READY_POLL_S = 0.25


class ProcessGroup:
    """Every child process of one `kiwi` run."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        policy: RestartPolicy | None = None,
        probe_host: str = "127.0.0.1",
        log_sink: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        interrupt_grace_s: float = INTERRUPT_GRACE_S,
        terminate_grace_s: float = TERMINATE_GRACE_S,
    ) -> None:
        self._specs = list(specs)
        self._policy = policy or RestartPolicy()
        self._probe_host = probe_host
        self._log_sink = log_sink or sys.stdout
        self._clock = clock
        self._graces = (
            (signal.SIGINT, interrupt_grace_s),
            (signal.SIGTERM, terminate_grace_s),
            (signal.SIGKILL, terminate_grace_s),
        )
        self._running: dict[str, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.given_up: list[str] = []

    def request_stop(self) -> None:
        """Stop every child and return from `run` (signal handlers call this)."""
        if not self._stopping.is_set():
            _LOGGER.info("Stopping Kiwi")
            self._stopping.set()

    async def run(self) -> int:
        """Run until asked to stop, the hub asks for shutdown, or every child was given up on."""
        watchers = [asyncio.create_task(self._watch(spec), name=spec.name) for spec in self._specs]
        stop_wait: asyncio.Future[Any] = asyncio.create_task(self._stopping.wait())
        all_done: asyncio.Future[Any] = asyncio.gather(*watchers, return_exceptions=True)
        try:
            await asyncio.wait({stop_wait, all_done}, return_when=asyncio.FIRST_COMPLETED)
            self._stopping.set()
            await self._stop_children()
            await all_done
            # The children's last lines (their shutdown messages) still reach the log.
            if self._background:
                await asyncio.wait(self._background, timeout=1.0)
        finally:
            stop_wait.cancel()
            for task in watchers:
                task.cancel()
        return 1 if len(self.given_up) == len(self._specs) else 0

    async def _watch(self, spec: ProcessSpec) -> None:
        """Keep one child running according to the restart policy."""
        failures: tuple[float, ...] = ()
        while not self._stopping.is_set():
            try:
                process = await self._start(spec)
            except OSError as err:
                _LOGGER.error("Cannot start %s: %s", spec.name, err)
                exit_code = 127
            else:
                if self._stopping.is_set():  # stop requested while it was starting
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGTERM)
                ready = asyncio.create_task(self._announce_when_ready(spec))
                exit_code = await process.wait()
                ready.cancel()
                self._running.pop(spec.name, None)
            if self._stopping.is_set():
                return
            decision = self._policy.decide(
                process=spec.name, exit_code=exit_code, now=self._clock(), failures=failures
            )
            failures = decision.failures
            if decision.action is Action.STOP_ALL:
                _LOGGER.info("%s; stopping everything", decision.reason)
                self.request_stop()
                return
            if decision.action is Action.GIVE_UP:
                _LOGGER.error(
                    "%s; not restarting it. Its log above says why; fix that and run kiwi again",
                    decision.reason,
                )
                self.given_up.append(spec.name)
                return
            _LOGGER.warning("%s; restarting in %.0f s", decision.reason, decision.delay_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), decision.delay_s)

    async def _start(self, spec: ProcessSpec) -> asyncio.subprocess.Process:
        _LOGGER.info("Starting %s (%s port %d)", spec.name, spec.protocol, spec.port)
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            env={**os.environ, **spec.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group: a terminal's Ctrl-C reaches only the launcher, which then
            # stops every child the same way (SIGINT, SIGTERM, SIGKILL), grandchildren included.
            start_new_session=True,
        )
        self._running[spec.name] = process
        assert process.stdout is not None
        relay = asyncio.create_task(self._relay(spec.name, process.stdout), name=f"{spec.name} log")
        self._background.add(relay)
        relay.add_done_callback(self._background.discard)
        return process

    async def _relay(self, name: str, stream: asyncio.StreamReader) -> None:
        """Copy a child's output to ours, each line prefixed with the child's name."""
        prefix = f"[{name}] "
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the stream's 64 KiB limit: pass on what is there
                line = await stream.read(65536)
            if not line:
                return
            self._log_sink.write(prefix + line.decode(errors="replace").rstrip("\n") + "\n")
            self._log_sink.flush()

    async def _announce_when_ready(self, spec: ProcessSpec) -> None:
        # A child has no way to tell us it is ready, so poll its port.
        await wait_for_ports(self._probe_host, [spec.port], wait_s=math.inf, poll_s=READY_POLL_S)
        scheme = "http" if spec.protocol == Protocol.HTTP else "tcp"
        _LOGGER.info(
            "%s is listening on %s://%s:%d", spec.name, scheme, self._probe_host, spec.port
        )
        if spec.protocol == Protocol.WYOMING:
            info = await describe_backend(f"tcp://{self._probe_host}:{spec.port}", limit_s=5.0)
            if info is not None and (missing := missing_artifacts(info)):
                _LOGGER.warning(
                    "%s is up without %s: a download failed (see above). Kiwi retries on the "
                    "next request; offline, put the files in the models folder",
                    spec.name,
                    ", ".join(missing),
                )

    async def _stop_children(self) -> None:
        """SIGINT to every child, then SIGTERM, then SIGKILL to whatever is still running."""
        for sig, grace in self._graces:
            running = {n: p for n, p in self._running.items() if p.returncode is None}
            if not running:
                return
            for process in running.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
            waits = {asyncio.create_task(p.wait()): n for n, p in running.items()}
            _done, pending = await asyncio.wait(waits, timeout=grace)
            for task in pending:
                task.cancel()
            if pending and sig != signal.SIGKILL:
                _LOGGER.warning(
                    "Still running %.0f s after %s: %s",
                    grace,
                    signal.Signals(sig).name,
                    ", ".join(sorted(waits[t] for t in pending)),
                )
