"""The whole of Kiwi run by its launcher (`python -m kiwi_voice.launcher`, what `kiwi` and
`make run` start), on the offline models, with a local Home Assistant and a local Claude.

For tests and benchmarks that need the real supervision (restarts) or every process at once:

    stack = start_launcher_stack(root)
    try:
        pid = stack.child_pid("stt")
    finally:
        stack.stop()

Add-on env only (it reads the launcher's port variables). Every port is free and on 127.0.0.1;
`stop()` sends SIGINT as Ctrl-C would (SIGKILL to the process group if that does not end it)
and stops the fakes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiwi_voice.launcher.settings import PORT_VARIABLES as LAUNCHER_PORTS
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_homeassistant import FakeHomeAssistant
from tests.support.offline_models import (
    PIPER_VOICE_NAME,
    WHISPER_MODEL_NAME,
    populate_models_dir,
)
from tests.support.ports import free_ports
from tests.support.waiting import until_sync
from tests.support.wyoming_process import describe

# The launcher's processes and the variables that set their ports.
PORT_VARIABLES = {name: variable for name, (variable, _default) in LAUNCHER_PORTS.items()}
START_LIMIT_S = 180.0  # the whole stack on a loaded 2-core machine
OPTIONS = {
    "language": "en",
    "stt_model": WHISPER_MODEL_NAME,
    "tts_voice": PIPER_VOICE_NAME,
    "wake_word": "hey_jarvis",
    "wake_threshold": 0.5,
    "soul": "default",
    "anthropic_model": "claude-haiku-4-5",
    "guest_policy": "allow",
    "unknown_speaker_policy": "allow",
    "log_level": "info",
}


@dataclass
class LauncherStack:
    launcher: subprocess.Popen[bytes]
    ports: dict[str, int]
    data_dir: Path
    log: Path
    claude: FakeAnthropic
    homeassistant: FakeHomeAssistant

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    @property
    def token(self) -> str:
        return (self.data_dir / "api_token").read_text(encoding="utf-8").strip()

    def url(self, path: str) -> str:
        """ws:// URL of a hub path with the token in the query (as a browser sends it)."""
        return f"ws://127.0.0.1:{self.ports['hub']}{path}?token={self.token}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['hub']}"

    def child_pid(self, name: str) -> int:
        """The pid of the launcher's child running `python -m kiwi_voice.<name>`."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.launcher.pid and f"kiwi_voice.{name}".encode() in cmdline:
                return int(entry.name)
        raise LookupError(f"kiwi runs no {name} process:\n{self.output()[-3000:]}")

    def wait_until_up(self, limit_s: float = START_LIMIT_S) -> None:
        """Every Wyoming port describes itself, the hub is healthy, the voice encoder is warm."""
        import urllib.request

        started = time.monotonic()
        pending = set(self.ports)

        def all_up() -> bool:
            if self.launcher.poll() is not None:
                raise RuntimeError(f"kiwi exited:\n{self.output()[-4000:]}")
            for name in sorted(pending):
                if name == "hub":
                    try:
                        with urllib.request.urlopen(self.base_url + "/api/health", timeout=2):
                            pending.discard(name)
                    except OSError:
                        pass
                elif describe_or_none(self.ports[name]) is not None:
                    pending.discard(name)
            return not pending

        def tail() -> str:
            return self.output()[-4000:]

        until_sync(all_up, lambda: f"kiwi up:\n{tail()}", timeout_s=limit_s, every_s=0.25)
        # kiwi-speaker answers at once and warms its encoder after; a turn needs it warm.
        until_sync(
            lambda: "Voice encoder warm" in self.output(),
            lambda: f"a warm voice encoder:\n{tail()}",
            timeout_s=max(0.0, limit_s - (time.monotonic() - started)),
            every_s=0.25,
        )

    def stop(self) -> None:
        if self.launcher.poll() is None:
            self.launcher.send_signal(signal.SIGINT)  # Ctrl-C: kiwi stops every child
            try:
                self.launcher.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.launcher.pid, signal.SIGKILL)
                self.launcher.wait(10)
        self.claude.stop()
        self.homeassistant.stop()


def describe_or_none(port: int, timeout_s: float = 2.0) -> dict[str, Any] | None:
    try:
        return describe(port, timeout_s)
    except (OSError, ValueError, RuntimeError):
        return None


def _environ(
    data_dir: Path,
    ports: dict[str, int],
    claude: FakeAnthropic,
    ha: FakeHomeAssistant,
    bundled_models: Path | None = None,
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIWI_")}
    env.pop("SUPERVISOR_TOKEN", None)
    env.update({PORT_VARIABLES[name]: str(port) for name, port in ports.items()})
    env.update(
        {
            "KIWI_DATA_DIR": str(data_dir),
            "KIWI_BIND_HOST": "127.0.0.1",
            "HF_HUB_OFFLINE": "1",
            # a download attempt fails at once instead of reaching the network
            "KIWI_PIPER_VOICES_URL": "http://127.0.0.1:9/voices",
            "HF_ENDPOINT": "http://127.0.0.1:9",
            "KIWI_HOST_AUDIO": "off",
            "ANTHROPIC_API_KEY": claude.api_key,
            "ANTHROPIC_BASE_URL": claude.url,
            "KIWI_HA_URL": ha.url,
            "KIWI_HA_TOKEN": ha.token,
        }
    )
    if bundled_models is not None:
        env["KIWI_BUNDLED_MODELS"] = str(bundled_models)
    return env


def start_launcher_stack(
    root: Path, options: dict[str, Any] | None = None, *, bundled_models: Path | None = None
) -> LauncherStack:
    """Start `python -m kiwi_voice.launcher` in `root` and wait until everything is up.

    With `bundled_models` (tests/support/real_models.py's root) Kiwi runs on the real default
    models as `make run` does (KIWI_BUNDLED_MODELS), not on the offline test models.
    """
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if bundled_models is None:
        populate_models_dir(data_dir / "models")
    options_file = root / "options.json"
    options_file.write_text(json.dumps({**OPTIONS, **(options or {})}), encoding="utf-8")
    ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
    claude, homeassistant = FakeAnthropic(), FakeHomeAssistant()
    claude.start()
    homeassistant.start()
    log = root / "kiwi.log"
    with log.open("wb") as sink:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "kiwi_voice.launcher", "--options", str(options_file)],
            env=_environ(data_dir, ports, claude, homeassistant, bundled_models),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = LauncherStack(launcher, ports, data_dir, log, claude, homeassistant)
    try:
        stack.wait_until_up()
    except BaseException:
        stack.stop()
        raise
    return stack
