"""Kiwi's Wyoming services as real processes on free 127.0.0.1 ports, for tests in both envs.

Only the standard library is used (the HA env cannot import kiwi_voice): the service is the
add-on env's console script, readiness is a raw Wyoming `describe` over a socket, and stopping
signals the whole process group (SIGTERM, then SIGKILL), so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cache import REPO_ROOT
from tests.support.ports import free_port
from tests.support.waiting import until_sync

ADDON_BIN = REPO_ROOT / ".venv-addon" / "bin"
START_TIMEOUT_S = 60.0
READY_LINE = "Ready on tcp://"


@dataclass
class ServiceProcess:
    """A running service: its port, its process, and its log file."""

    command: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL what is left after `timeout_s`; the exit code."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(timeout_s)
        return self.process.returncode


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def describe(port: int, timeout_s: float = 5.0) -> dict[str, object]:
    """Send a raw Wyoming `describe` and return the `info` event's data."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(b'{"type": "describe", "data": {}}\n')
        reader = sock.makefile("rb")
        header = json.loads(reader.readline())
        data = header.get("data") or {}
        if header.get("data_length"):
            data.update(json.loads(reader.read(header["data_length"])))
        if header.get("payload_length"):
            reader.read(header["payload_length"])
        if header["type"] != "info":
            raise RuntimeError(f"expected info, got {header['type']}")
        return data


def start_service(
    command: str,
    args: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
    port: int | None = None,
) -> ServiceProcess:
    """Start `.venv-addon/bin/<command> --uri tcp://127.0.0.1:<free port> <args>`, ready to use.

    Its output goes to `log_path`; use `ServiceProcess.stop()` (or a fixture finalizer) to end it.
    `port` reuses a given port (to restart a service where its clients expect it).
    """
    port = port or free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [str(ADDON_BIN / command), "--uri", f"tcp://127.0.0.1:{port}", *args],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=REPO_ROOT,
        start_new_session=True,  # its own process group, so stop() reaches every child
    )
    log_file.close()
    service = ServiceProcess(command, port, process, log_path, args)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited with {process.returncode}:\n{service.log()}")
        return READY_LINE in service.log()

    # Kiwi's services log "Ready on <uri>" once they listen. Waiting for the log line needs
    # no socket, so this also works where pytest-socket blocks sockets (HA's test harness).
    try:
        until_sync(ready, lambda: f"{command} ready:\n{service.log()}", timeout_s=timeout_s)
    except TimeoutError:
        service.stop()
        raise
    return service
