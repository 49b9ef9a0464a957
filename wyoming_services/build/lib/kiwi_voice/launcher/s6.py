"""The add-on's side of supervision: s6-overlay restarts a service, this decides how and whether.

Each longrun's `run` script execs `kiwi run-service NAME`, its `finish` script runs
`kiwi service-finished NAME CODE SIGNAL`. The failure history lives in a small JSON file per
service under KIWI_RUN_DIR (/run/kiwi, a tmpfs that a container restart clears).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from .restart_policy import Action, RestartPolicy

_LOGGER = logging.getLogger(__name__)

DEFAULT_RUN_DIR = Path("/run/kiwi")
CONTAINER_EXIT_CODE_FILE = Path("/run/s6-linux-init-container-results/exitcode")
HALT = "/run/s6/basedir/bin/halt"
SVSTAT = "/command/s6-svstat"
# s6 reports a service killed by a signal as exit code 256 plus the signal number.
S6_SIGNALLED = 256


def run_dir() -> Path:
    return Path(os.environ.get("KIWI_RUN_DIR") or DEFAULT_RUN_DIR)


def _state_file(name: str) -> Path:
    return run_dir() / f"{name}.json"


def load_state(name: str) -> dict[str, object]:
    try:
        state = json.loads(_state_file(name).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def save_state(name: str, state: dict[str, object]) -> None:
    path = _state_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(state), encoding="utf-8")
    temp.replace(path)


def wait_before_start(name: str) -> None:
    """The backoff the last failure asked for, slept before the service starts again."""
    delay = load_state(name).get("delay_s", 0.0)
    if isinstance(delay, int | float) and delay > 0:
        _LOGGER.info("Waiting %.0f s before starting %s again", delay, name)
        time.sleep(delay)


def wanted_up(service_dir: Path = Path()) -> bool:
    """Whether s6 still wants the service up; false while the add-on is stopping.

    A finish script runs in its service's directory, where `s6-svstat` reads that state.
    """
    if not Path(SVSTAT).exists():
        return True  # not under s6-overlay
    result = subprocess.run(
        [SVSTAT, "-o", "wantedup", str(service_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() != "false"


def service_finished(
    name: str,
    exit_code: int,
    signal_number: int = 0,
    *,
    policy: RestartPolicy | None = None,
    now: float | None = None,
) -> int:
    """Record the exit, and halt the add-on when the policy gives up; returns the finish's code."""
    if not wanted_up():
        return 0  # s6 stopped it: the add-on is shutting down, nothing failed
    if exit_code == S6_SIGNALLED and signal_number in (signal.SIGTERM, signal.SIGINT):
        return 0  # signalled to stop from outside s6
    code = 128 + signal_number if exit_code == S6_SIGNALLED else exit_code
    state = load_state(name)
    failures = state.get("failures", [])
    decision = (policy or RestartPolicy()).decide(
        process=name,
        exit_code=code,
        now=time.monotonic() if now is None else now,
        failures=[float(t) for t in failures] if isinstance(failures, list) else [],
    )
    save_state(name, {"failures": list(decision.failures), "delay_s": decision.delay_s})
    if decision.action is Action.RESTART:
        _LOGGER.warning("%s; s6 restarts it in %.0f s", decision.reason, decision.delay_s)
        return 0
    if decision.action is Action.GIVE_UP:
        _LOGGER.error("%s; stopping the add-on. Its log above says why", decision.reason)
    else:
        _LOGGER.info("%s; stopping the add-on", decision.reason)
        code = 0
    halt_container(code)
    return code


def halt_container(exit_code: int) -> None:
    """Stop the whole container, with `exit_code` as its result unless one is already set."""
    try:
        if CONTAINER_EXIT_CODE_FILE.read_text(encoding="utf-8").strip() in ("", "0"):
            CONTAINER_EXIT_CODE_FILE.write_text(f"{exit_code}\n", encoding="utf-8")
    except OSError:
        pass  # not under s6-overlay (a test, or a developer trying the command)
    if Path(HALT).exists():
        os.execv(HALT, [HALT])
