"""kill -9 the hub and the speaker service at random moments of a burst of profile and config
writes: no store is ever corrupt and no acknowledged write is lost.

50 trials, 25 per process, each a short burst of concurrent writers, one per key, each writer
sending its next write only after the previous one was answered. After each kill:
- the SQLite file (kiwi.db or speakers.db) passes `PRAGMA integrity_check`;
- the process starts again on the same files, and for every key the value it holds is the last
  acknowledged write or one sent after it whose answer never came (it may have committed):
  never an older value, which would be an acknowledged write lost.
The speaker service's sample counts may only grow past what was acknowledged.

The hub and kiwi-speaker run as forked children of a pre-imported zygote
(tests/support/process_zygote.py): the same code and the same `main()` as the console scripts,
started in ~0.1 s instead of several, so 50 real kill/restart cycles fit in the CI budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

from tests.support.ports import free_port
from tests.support.process_zygote import Child, Zygote
from tests.support.speech import espeak_pcm
from tests.support.waiting import until_async

pytestmark = pytest.mark.timeout(240)

TRIALS_PER_PROCESS = 25
KILL_WINDOW_S = (0.02, 0.35)  # when, after the burst starts, the process is killed
READY_WAIT_S = 20.0
WRITERS_STOP_S = 15.0  # longer than the writers' HTTP timeout
HUB_MODULE = "kiwi_voice.hub.__main__"
SPEAKER_MODULE = "kiwi_voice.speaker.__main__"
UNIQUE = itertools.count(1)  # every write in the module writes a value never written before


# ---- the processes ------------------------------------------------------------------------


@dataclass
class Kiwi:
    """The hub and the speaker service on fixed ports and files, restartable."""

    zygote: Zygote
    root: Path
    hub_port: int = field(default_factory=free_port)
    speaker_port: int = field(default_factory=free_port)
    hub: Child | None = None
    speaker: Child | None = None
    starts: int = 0
    token: str = ""

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _log(self, name: str) -> Path:
        self.starts += 1
        return self.root / f"{name}-{self.starts}.log"

    async def start_speaker(self) -> None:
        argv = ["--uri", f"tcp://127.0.0.1:{self.speaker_port}", "--db", str(self.speakers_db)]
        self.speaker = self.zygote.spawn(SPEAKER_MODULE, argv, self._log("speaker"))
        await _until(lambda: "Ready on" in self.speaker.log(), self.speaker)  # type: ignore[union-attr]

    async def start_hub(self, http: aiohttp.ClientSession) -> None:
        argv = [
            "--host", "127.0.0.1", "--port", str(self.hub_port), "--data-dir", str(self.hub_dir),
            "--speaker-uri", f"tcp://127.0.0.1:{self.speaker_port}",
            "--tts-uri", f"tcp://127.0.0.1:{free_port()}",
        ]  # fmt: skip
        self.hub = self.zygote.spawn(HUB_MODULE, argv, self._log("hub"), HUB_ENV)

        async def healthy() -> bool:
            try:
                async with http.get(self.hub_url + "/api/health") as answer:
                    return answer.status == 200
            except aiohttp.ClientError:
                return False

        await _until_async(healthy, self.hub)
        self.token = (self.hub_dir / "api_token").read_text(encoding="utf-8").strip()

    @property
    def hub_dir(self) -> Path:
        return self.root / "hub"

    @property
    def speakers_db(self) -> Path:
        return self.root / "speakers.db"


HUB_ENV = {
    "KIWI_HOST_AUDIO": "off",
    "KIWI_HA_URL": "",
    "KIWI_HA_TOKEN": "",
    "ANTHROPIC_API_KEY": "",
    "KIWI_ANTHROPIC_API_KEY": "",
    "SUPERVISOR_TOKEN": "",
}


async def _until(condition: Callable[[], bool], child: Child) -> None:
    async def check() -> bool:
        return condition()

    await _until_async(check, child)


async def _until_async(condition: Callable[[], Awaitable[bool]], child: Child) -> None:
    async def ready() -> bool:
        assert child.alive(), child.log()  # a dead process will never be ready
        return await condition()

    await until_async(ready, lambda: f"ready:\n{child.log()}", timeout_s=READY_WAIT_S, every_s=0.01)


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    preload = [HUB_MODULE, SPEAKER_MODULE, "tests.support.process_zygote:warm_voice_encoder"]
    with Zygote(preload) as forks:
        yield forks


@pytest.fixture
async def kiwi(zygote: Zygote, tmp_path: Path) -> AsyncIterator[Kiwi]:
    kiwi = Kiwi(zygote, tmp_path)
    yield kiwi
    for child in (kiwi.hub, kiwi.speaker):
        if child is not None:
            child.kill()
            assert "Traceback" not in child.log(), child.log()


# ---- writers: one key each, the next write only after the answer ----------------------------


@dataclass
class KeyHistory:
    """What one writer sent for its key, in order, and which writes were acknowledged."""

    key: str
    sent: list[Any] = field(default_factory=list)
    acked: list[bool] = field(default_factory=list)

    def allowed(self, before: Any) -> list[Any]:
        """Values the key may hold now: the last acknowledged one (or `before` if none) and every
        value sent after it without an answer."""
        last = max((i for i, ok in enumerate(self.acked) if ok), default=-1)
        return [self.sent[last] if last >= 0 else before, *self.sent[last + 1 :]]


Write = Callable[[Any], Awaitable[bool]]  # True when the write was acknowledged


async def write_until_stopped(
    history: KeyHistory, write: Write, new_value: Callable[[], Any]
) -> None:
    """Write until a write is not acknowledged (the process, or the one behind it, died)."""
    while True:
        value = new_value()
        history.sent.append(value)
        history.acked.append(False)
        # A write in flight when the process died may or may not have committed.
        with contextlib.suppress(aiohttp.ClientError, OSError, EOFError, TimeoutError):
            history.acked[-1] = await write(value)
        if not history.acked[-1]:
            return  # a client that gets an error does not go on as if nothing happened
        await asyncio.sleep(0)  # a turn for the other writers, as between real clients


async def burst(
    writers: dict[str, tuple[Write, Callable[[], Any]]], kill: Callable[[], None]
) -> dict[str, KeyHistory]:
    """Run every writer, kill the process at a random moment, stop the writers."""
    histories = {key: KeyHistory(key) for key in writers}
    tasks = [
        asyncio.create_task(write_until_stopped(histories[key], write, new_value))
        for key, (write, new_value) in writers.items()
    ]
    await asyncio.sleep(random.uniform(*KILL_WINDOW_S))  # the moment of the kill is the test
    kill()
    # Each writer stops at its first unanswered write; answers already on their way arrive.
    await asyncio.wait(tasks, timeout=WRITERS_STOP_S)
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception):
            raise outcome  # e.g. an error event where an answer was expected
    return histories


def assert_intact(database: Path) -> None:
    connection = sqlite3.connect(database, timeout=10)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",), database
    finally:
        connection.close()


# ---- the writes -----------------------------------------------------------------------------


def hub_writers(
    kiwi: Kiwi, http: aiohttp.ClientSession, profile_id: str
) -> dict[str, tuple[Write, Callable[[], Any]]]:
    async def patch_config(body: dict[str, Any]) -> bool:
        async with http.patch(
            kiwi.hub_url + "/api/config", json=body, headers=kiwi.headers
        ) as answer:
            return answer.status == 200

    async def rename(name: str) -> bool:
        url = f"{kiwi.hub_url}/api/speakers/{profile_id}"
        async with http.patch(url, json={"name": name}, headers=kiwi.headers) as answer:
            return answer.status == 200

    return {
        "vad_silence_seconds": (
            lambda value: patch_config({"vad_silence_seconds": value}),
            lambda: round(0.2 + (next(UNIQUE) % 4000) / 1_000, 3),
        ),
        "llm_model": (
            lambda value: patch_config({"llm_model": value}),
            lambda: f"model-{next(UNIQUE)}",
        ),
        "profile_name_via_hub": (rename, lambda: f"via-hub-{next(UNIQUE)}"),
    }


async def speaker_request(kiwi: Kiwi, events: list[Event], expect: str) -> dict[str, Any]:
    async with AsyncTcpClient("127.0.0.1", kiwi.speaker_port) as client:
        for event in events:
            await client.write_event(event)
        while True:
            answer = await client.read_event()
            if answer is None:
                raise ConnectionError("the speaker service hung up")
            assert answer.type != "error", answer.data
            if answer.type == expect:
                return dict(answer.data or {})


def enroll_events(pcm: bytes, **data: Any) -> list[Event]:
    chunks = [pcm[i : i + 32_000] for i in range(0, len(pcm), 32_000)]
    return [
        Event("speaker-enroll", data),
        AudioStart(rate=16000, width=2, channels=1).event(),
        *(AudioChunk(rate=16000, width=2, channels=1, audio=c).event() for c in chunks),
        AudioStop().event(),
    ]


def speaker_writers(
    kiwi: Kiwi, http: aiohttp.ClientSession, ids: dict[str, str], voice: bytes
) -> dict[str, tuple[Write, Callable[[], Any]]]:
    writers = hub_writers(kiwi, http, ids["via_hub"])

    async def rename_directly(name: str) -> bool:
        await speaker_request(
            kiwi, [Event("speaker-update", {"id": ids["direct"], "name": name})], "speaker-profile"
        )
        return True

    async def add_sample(_: int) -> bool:
        await speaker_request(kiwi, enroll_events(voice, id=ids["samples"]), "speaker-enrolled")
        return True

    return {
        "profile_name_via_hub": writers["profile_name_via_hub"],
        "profile_name_direct": (rename_directly, lambda: f"direct-{next(UNIQUE)}"),
        "samples": (add_sample, lambda: next(UNIQUE)),
    }


async def read_state(
    kiwi: Kiwi, http: aiohttp.ClientSession, ids: dict[str, str]
) -> dict[str, Any]:
    async with http.get(kiwi.hub_url + "/api/config", headers=kiwi.headers) as answer:
        config = await answer.json()
    profiles = (await speaker_request(kiwi, [Event("speaker-list", {})], "speaker-profiles"))[
        "profiles"
    ]
    by_id = {p["id"]: p for p in profiles}
    return {
        "vad_silence_seconds": config["vad_silence_seconds"],
        "llm_model": config["llm_model"],
        "profile_name_via_hub": by_id[ids["via_hub"]]["name"],
        "profile_name_direct": by_id[ids["direct"]]["name"],
        "samples": by_id[ids["samples"]]["sample_count"],
    }


def check_keys(
    before: dict[str, Any], after: dict[str, Any], histories: dict[str, KeyHistory]
) -> None:
    for key, history in histories.items():
        if key == "samples":
            acked = sum(history.acked)
            in_flight = len(history.sent) - acked
            assert before[key] + acked <= after[key] <= before[key] + acked + in_flight, (
                f"samples: {before[key]} + {acked} acknowledged (+{in_flight} unanswered), "
                f"now {after[key]}"
            )
            continue
        allowed = history.allowed(before[key])
        assert after[key] in allowed, (
            f"{key}: holds {after[key]!r}, an acknowledged write was lost "
            f"(allowed {allowed[:3]}…, sent {len(history.sent)}, acked {sum(history.acked)})"
        )


# ---- the trials -----------------------------------------------------------------------------


async def setup_profiles(kiwi: Kiwi, voice: bytes) -> dict[str, str]:
    ids = {}
    for key in ("via_hub", "direct", "samples"):
        enrolled = await speaker_request(kiwi, enroll_events(voice, name=key), "speaker-enrolled")
        ids[key] = enrolled["id"]
    return ids


async def test_kill_9_during_writes_never_corrupts_or_loses_acknowledged_writes(kiwi: Kiwi) -> None:
    voice = espeak_pcm("my voice is my passport, verify me", voice="en-us+m3")
    random.seed(20261121)  # reproducible kill moments
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        await kiwi.start_speaker()
        await kiwi.start_hub(http)
        ids = await setup_profiles(kiwi, voice)
        trials: list[tuple[str, int, int]] = []
        for trial in range(2 * TRIALS_PER_PROCESS):
            victim = "hub" if trial % 2 == 0 else "speaker"
            before = await read_state(kiwi, http, ids)
            if victim == "hub":
                assert kiwi.hub is not None
                histories = await burst(hub_writers(kiwi, http, ids["via_hub"]), kiwi.hub.kill)
                assert_intact(kiwi.hub_dir / "kiwi.db")
                await kiwi.start_hub(http)
            else:
                assert kiwi.speaker is not None
                histories = await burst(speaker_writers(kiwi, http, ids, voice), kiwi.speaker.kill)
                assert_intact(kiwi.speakers_db)
                # The hub lived through its speaker service dying under it.
                assert kiwi.hub is not None
                assert kiwi.hub.alive(), kiwi.hub.log()
                await kiwi.start_speaker()
            after = await read_state(kiwi, http, ids)
            check_keys(before, after, histories)
            writes = sum(len(h.sent) for h in histories.values())
            trials.append((victim, writes, sum(sum(h.acked) for h in histories.values())))
    assert len(trials) == 2 * TRIALS_PER_PROCESS
    print(  # the figures for docs/testing.md (pytest -s shows them)
        f"{len(trials)} kill -9 trials: {sum(w for _v, w, _a in trials)} writes, "
        f"{sum(a for _v, _w, a in trials)} acknowledged, all kept; every store intact"
    )
    # The bursts were real: writes were acknowledged before nearly every kill.
    assert sum(acked > 0 for _v, _w, acked in trials) >= len(trials) * 0.8, trials
