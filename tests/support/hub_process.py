"""A real kiwi-hub process (and, by default, the kiwi-speaker service behind it) for tests.

Standard library only, so both test environments can use it; the processes run from the add-on
env's console scripts. Each process gets its own process group and `stop()` ends the group.

    hub = start_hub(tmp_path / "data")
    urllib.request.urlopen(Request(hub.base_url + "/api/status", headers=hub.auth_headers))
    hub.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from tests.support.cache import REPO_ROOT
from tests.support.ports import free_port
from tests.support.waiting import until_sync
from tests.support.wyoming_process import ADDON_BIN, ServiceProcess, start_service

# A deadline, not a measurement: a hub starts in ~2 s alone, but a 2-core machine running other
# suites beside this one has been seen to need over 30 s.
START_TIMEOUT_S = 90.0
RESTART_EXIT_CODE = 75  # kiwi_voice.hub.lifecycle.RESTART_EXIT_CODE


@dataclass
class HubProcess:
    """A running hub: where it listens, its token, its data dir and its log."""

    base_url: str
    token: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    speaker: ServiceProcess | None = None  # the speaker service this helper started, if any
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def ws_url(self, path: str = "/api/events", **query: object) -> str:
        """ws:// URL with the token in the query (as browsers pass it)."""
        params = {"token": self.token, **{k: str(v) for k, v in query.items()}}
        return f"ws://127.0.0.1:{self.port}{path}?{urlencode(params)}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout_s: float = 15.0) -> int:
        """Wait for the hub to exit by itself (restart, shutdown); its exit code."""
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL the hub (a crash: nothing gets to clean up)."""
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout_s: float = 10.0, stop_speaker: bool = True) -> int | None:
        """SIGTERM the hub's process group (SIGKILL after `timeout_s`), and the speaker service."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(timeout_s)
        if stop_speaker and self.speaker is not None:
            self.speaker.stop()
        return self.process.returncode


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def start_speaker_service(data_dir: Path, log_dir: Path | None = None) -> ServiceProcess:
    """kiwi-speaker on a free port with its profiles in `<data_dir>/speakers.db`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = log_dir or data_dir
    return start_service(
        "kiwi-speaker", ["--db", str(data_dir / "speakers.db")], log_dir / "kiwi-speaker.log"
    )


def start_hub(
    data_dir: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    speaker: ServiceProcess | bool = True,
    tts_uri: str | None = None,
    log_path: Path | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> HubProcess:
    """Start kiwi-hub on 127.0.0.1 and wait until /api/health answers.

    `speaker`: True starts a kiwi-speaker for it (stopped with the hub), a ServiceProcess
    reuses one, False points the hub at a port where nothing listens. `tts_uri` likewise
    (default: nothing listens). `env` is added to this process's environment.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = log_path or data_dir / f"kiwi-hub-{port}.log"
    started_speaker: ServiceProcess | None = None
    if speaker is True:
        started_speaker = start_speaker_service(data_dir, log_path.parent)
        speaker_uri = started_speaker.uri
    elif isinstance(speaker, ServiceProcess):
        speaker_uri = speaker.uri
    else:
        speaker_uri = f"tcp://127.0.0.1:{free_port()}"
    command = [
        str(ADDON_BIN / "kiwi-hub"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--data-dir", str(data_dir),
        "--speaker-uri", speaker_uri,
        "--tts-uri", tts_uri or f"tcp://127.0.0.1:{free_port()}",
        *args,
    ]  # fmt: skip
    # Host audio off unless a test asks for it: whatever sound device this machine has (or
    # lacks) must not decide what a test hears (tests/addon/test_host_audio_pulse.py turns it on).
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "KIWI_HOST_AUDIO": "off", **(env or {})}
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    hub = HubProcess(
        base_url, "", port, data_dir, process, log_path, started_speaker, command, full_env
    )
    try:
        _wait_healthy(hub, timeout_s)
    except BaseException:
        hub.stop()
        raise
    hub.token = (data_dir / "api_token").read_text(encoding="utf-8").strip()
    return hub


def restart_hub(hub: HubProcess, timeout_s: float = START_TIMEOUT_S) -> HubProcess:
    """Start the same command again (same port, data dir and speaker) after the hub exited."""
    if hub.process.poll() is None:
        raise RuntimeError("the hub is still running")
    with hub.log_path.open("ab") as log_file:
        process = subprocess.Popen(
            hub.command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=hub.env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    hub.process = process
    _wait_healthy(hub, timeout_s)
    hub.token = (hub.data_dir / "api_token").read_text(encoding="utf-8").strip()
    return hub


def _wait_healthy(hub: HubProcess, timeout_s: float) -> None:
    def healthy() -> bool:
        if hub.process.poll() is not None:
            raise RuntimeError(f"kiwi-hub exited with {hub.process.returncode}:\n{hub.log()}")
        try:
            with urllib.request.urlopen(hub.base_url + "/api/health", timeout=2) as response:
                return response.status == 200 and json.load(response).get("status") == "ok"
        except (OSError, urllib.error.URLError, ValueError):
            return False

    until_sync(healthy, lambda: f"kiwi-hub healthy:\n{hub.log()}", timeout_s=timeout_s, every_s=0.1)
