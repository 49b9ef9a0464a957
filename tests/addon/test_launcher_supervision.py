"""`ProcessGroup`: real child processes started, restarted with backoff, given up on, stopped.

The children are small Python programs that write what happens to them into a file, so each test
sees starts, signals and exits as the child saw them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from kiwi_voice.launcher.restart_policy import RESTART_EXIT_CODE, RestartPolicy
from kiwi_voice.launcher.specs import ProcessSpec, Protocol
from kiwi_voice.launcher.supervisor import ProcessGroup
from tests.support.ports import free_port
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(60)

FAST_POLICY = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, max_failures=3)

# Each child appends one line per thing that happens to it to the file named by argv[1].
CRASHER = """
import sys
open(sys.argv[1], "a").write("start\\n")
print("about to fail", flush=True)
sys.exit(3)
"""
LISTENER = """
import signal, socket, sys, time
log = open(sys.argv[1], "a", buffering=1)
def on_signal(signum, frame):
    log.write(signal.Signals(signum).name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGINT, on_signal)
server = socket.create_server(("127.0.0.1", int(sys.argv[2])))
log.write("start\\n")
print("listening", flush=True)
while True:
    time.sleep(0.05)
"""
STUBBORN = """
import os, signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def ignore(signum, frame):
    log.write(signal.Signals(signum).name + "\\n")
signal.signal(signal.SIGINT, ignore)
signal.signal(signal.SIGTERM, ignore)
log.write(f"start {os.getpid()}\\n")
while True:
    time.sleep(0.05)
"""
RESTART_THEN_SHUTDOWN = f"""
import sys
log = open(sys.argv[1], "a")
starts = sum(1 for _ in open(sys.argv[1])) if __import__("os").path.exists(sys.argv[1]) else 0
log.write("start\\n")
log.close()
sys.exit({RESTART_EXIT_CODE} if starts == 0 else 0)
"""


def _spec(name: str, program: str, *args: str, port: int = 0) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=(sys.executable, "-c", textwrap.dedent(program), *args),
        port=port or free_port(),
        protocol=Protocol.HTTP,  # no Wyoming describe for these children
    )


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


async def _wait_for(condition: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    await until(condition, what, timeout_s=limit_s, every_s=0.05)


async def test_a_crashing_child_is_restarted_with_backoff_then_given_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    record = tmp_path / "stt.log"
    sink = io.StringIO()
    group = ProcessGroup([_spec("stt", CRASHER, str(record))], policy=FAST_POLICY, log_sink=sink)

    exit_code = await group.run()

    assert exit_code == 1, "every child given up: kiwi fails"
    assert _lines(record) == ["start"] * 3
    assert group.given_up == ["stt"]
    assert "stt exited with code 3; restarting in 0 s" in caplog.text
    assert "stt failed 3 times in 300 s (last exit code 3); not restarting it" in caplog.text
    assert sink.getvalue().count("[stt] about to fail\n") == 3, "output relayed with its name"


async def test_one_failing_child_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    crasher_log, listener_log = tmp_path / "tts.log", tmp_path / "wake.log"
    port = free_port()
    group = ProcessGroup(
        [
            _spec("tts", CRASHER, str(crasher_log)),
            _spec("wake", LISTENER, str(listener_log), str(port), port=port),
        ],
        policy=FAST_POLICY,
        log_sink=io.StringIO(),
    )
    running = asyncio.create_task(group.run())
    await _wait_for(lambda: group.given_up == ["tts"], "tts given up")
    await _wait_for(lambda: "wake is listening" in caplog.text, "wake ready")
    assert not running.done()

    group.request_stop()
    assert await running == 0
    assert _lines(listener_log) == ["start", "SIGINT"], "stopped with SIGINT, once"
    assert f"wake is listening on http://127.0.0.1:{port}" in caplog.text


async def test_the_hubs_restart_code_restarts_it_and_a_clean_exit_stops_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    hub_log, wake_log = tmp_path / "hub.log", tmp_path / "wake.log"
    port = free_port()
    group = ProcessGroup(
        [
            _spec("wake", LISTENER, str(wake_log), str(port), port=port),
            _spec("hub", RESTART_THEN_SHUTDOWN, str(hub_log)),
        ],
        # A restart request must not count as a failure even with a budget of one.
        policy=RestartPolicy(first_delay_s=5.0, max_failures=1),
        log_sink=io.StringIO(),
    )

    async with asyncio.timeout(30):
        exit_code = await group.run()

    assert exit_code == 0
    assert _lines(hub_log) == ["start", "start"]
    assert "asked to restart; restarting in 0 s" in caplog.text
    assert "the hub was asked to shut down; stopping everything" in caplog.text
    assert group.given_up == []
    await _wait_for(lambda: "SIGINT" in _lines(wake_log), "wake stopped")


async def test_a_child_that_ignores_sigint_and_sigterm_is_killed(tmp_path: Path) -> None:
    record = tmp_path / "speaker.log"
    group = ProcessGroup(
        [_spec("speaker", STUBBORN, str(record))],
        log_sink=io.StringIO(),
        interrupt_grace_s=0.3,
        terminate_grace_s=0.3,
    )
    running = asyncio.create_task(group.run())
    await _wait_for(lambda: bool(_lines(record)), "speaker started")
    pid = int(_lines(record)[0].split()[1])

    group.request_stop()
    assert await running == 0

    assert _lines(record)[1:] == ["SIGINT", "SIGTERM"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_command_that_cannot_start_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = ProcessSpec(name="stt", argv=(str(tmp_path / "no-such-program"),), port=free_port())
    group = ProcessGroup([missing], policy=FAST_POLICY, log_sink=io.StringIO())

    assert await group.run() == 1
    assert "Cannot start stt" in caplog.text
    assert "stt failed 3 times" in caplog.text
