"""Restart decisions, shared by `kiwi` and the add-on's s6 finish scripts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from kiwi_voice.launcher import s6
from kiwi_voice.launcher.models_report import missing_artifacts
from kiwi_voice.launcher.restart_policy import RESTART_EXIT_CODE, Action, RestartPolicy

POLICY = RestartPolicy(first_delay_s=1.0, max_delay_s=30.0, max_failures=5, failure_window_s=300)


def test_backoff_doubles_up_to_the_cap_then_gives_up() -> None:
    failures: tuple[float, ...] = ()
    delays = []
    for second in range(4):
        decision = POLICY.decide(process="stt", exit_code=1, now=float(second), failures=failures)
        assert decision.action is Action.RESTART
        delays.append(decision.delay_s)
        failures = decision.failures
    assert delays == [1.0, 2.0, 4.0, 8.0]

    last = POLICY.decide(process="stt", exit_code=1, now=4.0, failures=failures)
    assert last.action is Action.GIVE_UP
    assert last.reason == "stt failed 5 times in 300 s (last exit code 1)"


def test_the_delay_never_exceeds_its_cap() -> None:
    policy = RestartPolicy(first_delay_s=10.0, max_delay_s=15.0, max_failures=10)
    decision = policy.decide(process="tts", exit_code=1, now=9.0, failures=(1.0, 2.0, 3.0))
    assert decision.delay_s == 15.0


def test_old_failures_are_forgotten() -> None:
    decision = POLICY.decide(
        process="wake", exit_code=-9, now=1000.0, failures=(1.0, 2.0, 3.0, 4.0, 900.0)
    )
    assert decision.action is Action.RESTART
    assert decision.failures == (900.0, 1000.0)
    assert decision.delay_s == 2.0


def test_the_restart_code_restarts_at_once_without_counting() -> None:
    decision = POLICY.decide(
        process="hub", exit_code=RESTART_EXIT_CODE, now=10.0, failures=(1.0, 2.0, 3.0, 4.0)
    )
    assert decision.action is Action.RESTART
    assert decision.delay_s == 0.0
    assert decision.failures == (1.0, 2.0, 3.0, 4.0)


def test_only_the_hubs_clean_exit_means_shut_down() -> None:
    assert POLICY.decide(process="hub", exit_code=0, now=1.0).action is Action.STOP_ALL
    assert POLICY.decide(process="stt", exit_code=0, now=1.0).action is Action.RESTART


# -- s6 finish scripts --------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KIWI_RUN_DIR", str(tmp_path / "run"))
    results = tmp_path / "exitcode"
    results.write_text("0\n")
    monkeypatch.setattr(s6, "CONTAINER_EXIT_CODE_FILE", results)
    monkeypatch.setattr(s6, "HALT", str(tmp_path / "no-halt-here"))
    monkeypatch.setattr(s6, "SVSTAT", str(tmp_path / "no-svstat-here"))
    return tmp_path


def _fake_svstat(path: Path, wanted_up: str) -> str:
    """An `s6-svstat -o wantedup` that answers `wanted_up`."""
    path.write_text(f"#!/bin/sh\necho {wanted_up}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def test_s6_restarts_with_the_policys_delay_and_halts_when_it_gives_up(run_dir: Path) -> None:
    for now in (1.0, 2.0, 3.0, 4.0):
        assert s6.service_finished("stt", 1, 0, policy=POLICY, now=now) == 0
    assert s6.load_state("stt") == {"failures": [1.0, 2.0, 3.0, 4.0], "delay_s": 8.0}
    assert (run_dir / "exitcode").read_text() == "0\n", "still running"

    assert s6.service_finished("stt", 1, 0, policy=POLICY, now=5.0) == 1
    assert (run_dir / "exitcode").read_text() == "1\n", "the add-on stops with the failure"


def test_s6_waits_the_recorded_delay_before_starting(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    s6.wait_before_start("tts")
    assert slept == [], "first start: no wait"
    s6.service_finished("tts", 1, 0, policy=POLICY, now=1.0)
    s6.service_finished("tts", 1, 0, policy=POLICY, now=2.0)
    s6.wait_before_start("tts")
    assert slept == [2.0]


def test_s6_any_exit_while_the_addon_stops_is_not_a_failure(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s6, "SVSTAT", _fake_svstat(run_dir / "svstat", "false"))
    assert s6.service_finished("stt", 0, 0, policy=POLICY) == 0
    assert s6.service_finished("hub", 0, 0, policy=POLICY) == 0
    assert s6.load_state("stt") == {}
    assert (run_dir / "exitcode").read_text() == "0\n"

    monkeypatch.setattr(s6, "SVSTAT", _fake_svstat(run_dir / "svstat", "true"))
    s6.service_finished("stt", 1, 0, policy=POLICY, now=1.0)
    assert s6.load_state("stt")["failures"] == [1.0]


def test_s6_stopping_a_service_is_not_a_failure(run_dir: Path) -> None:
    assert s6.service_finished("wake", s6.S6_SIGNALLED, signal.SIGTERM, policy=POLICY) == 0
    assert s6.load_state("wake") == {}


def test_s6_a_killed_service_counts_with_the_signals_code(run_dir: Path) -> None:
    policy = RestartPolicy(max_failures=1)
    assert s6.service_finished("speaker", s6.S6_SIGNALLED, signal.SIGKILL, policy=policy) == 137
    assert (run_dir / "exitcode").read_text() == "137\n"


def test_s6_the_hubs_shutdown_stops_the_addon_cleanly(run_dir: Path) -> None:
    assert s6.service_finished("hub", 0, 0, policy=POLICY) == 0
    assert (run_dir / "exitcode").read_text() == "0\n"


def test_the_finish_command_line(tmp_path: Path) -> None:
    """What addon/rootfs/.../finish runs: the real command, outside s6 (no halt there)."""
    result = subprocess.run(
        [sys.executable, "-m", "kiwi_voice.launcher", "service-finished", "stt", "1", "0"],
        env={"KIWI_RUN_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "stt exited with code 1; s6 restarts it in 1 s" in result.stderr
    assert (tmp_path / "stt.json").exists()


# -- what a service says is missing -------------------------------------------------------------


def test_missing_artifacts_names_what_is_not_installed() -> None:
    attribution = Attribution(name="t", url="https://example.invalid")
    info = Info(
        asr=[
            AsrProgram(
                name="kiwi-stt",
                attribution=attribution,
                installed=True,
                description=None,
                version=None,
                models=[
                    AsrModel(
                        name="base",
                        attribution=attribution,
                        installed=False,
                        description=None,
                        version=None,
                        languages=[],
                    )
                ],
            )
        ],
        tts=[
            TtsProgram(
                name="kiwi-tts",
                attribution=attribution,
                installed=True,
                description=None,
                version=None,
                voices=[
                    TtsVoice(
                        name="en_US-lessac-medium",
                        attribution=attribution,
                        installed=True,
                        description=None,
                        version=None,
                        languages=["en"],
                    )
                ],
            )
        ],
    )
    assert missing_artifacts(info) == ["base"]
