"""The tests' wait helper (tests/support/waiting.py), and the rule it serves: a test waits for
what it expects, and a fixed sleep says why the time itself matters."""

from __future__ import annotations

import ast
import asyncio
import time

import pytest

from tests.support.cache import REPO_ROOT
from tests.support.waiting import until, until_async, until_sync


async def test_until_returns_the_first_truthy_answer() -> None:
    answers = iter([None, [], ["found"]])
    assert await until(lambda: next(answers), "a list", every_s=0) == ["found"]


async def test_until_fails_with_what_did_not_happen() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"not within 0.1 s: the door opens"):
        await until(lambda: False, "the door opens", timeout_s=0.1)
    assert time.monotonic() - started < 5


async def test_until_async_awaits_the_condition() -> None:
    calls = [0]

    async def third_time() -> int:
        await asyncio.sleep(0)
        calls[0] += 1
        return calls[0] if calls[0] >= 3 else 0

    assert await until_async(third_time, "three calls", every_s=0) == 3


def test_until_sync_gives_up_early_when_the_condition_raises() -> None:
    def exited() -> bool:
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        until_sync(exited, "ready", timeout_s=60)
    # The message is made only when the wait fails (it may read a long log).
    with pytest.raises(TimeoutError, match=r"a late message$"):
        until_sync(lambda: None, lambda: "a late message", timeout_s=0.05, every_s=0.01)


def _fixed_sleeps_without_a_reason() -> list[str]:
    """Every `asyncio.sleep(N)` / `time.sleep(N)` with a literal N > 0 in the tests whose line,
    or the line above, has no comment."""
    found = []
    for path in sorted((REPO_ROOT / "tests").rglob("*.py")):
        if path.name == "waiting.py":
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sleep"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("asyncio", "time")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value
            ):
                continue
            here, above = lines[node.lineno - 1], lines[node.lineno - 2]
            if "#" not in here and not above.strip().startswith("#"):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {here.strip()}")
    return found


def test_a_fixed_sleep_in_the_tests_says_why() -> None:
    assert _fixed_sleeps_without_a_reason() == []
