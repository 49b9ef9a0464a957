"""`kiwi --options options.json`: the whole stack comes up on its ports, with those options.

The real launcher starts the real hub and services (offline test models in a temporary
KIWI_DATA_DIR, every port from the environment), then the tests talk to each port the way Home
Assistant and the add-on do, and finally stop it with SIGINT as Ctrl-C would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from kiwi_voice.launcher.probe import port_answers
from kiwi_voice.launcher.settings import PORT_VARIABLES
from tests.support.offline_models import (
    PIPER_VOICE_NAME,
    WHISPER_MODEL_NAME,
    populate_models_dir,
)
from tests.support.ports import free_ports
from tests.support.waiting import until_async

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

STARTUP_LIMIT_S = 240.0
OPTIONS = {
    "language": "en",
    "stt_model": WHISPER_MODEL_NAME,
    "tts_voice": PIPER_VOICE_NAME,
    "wake_word": "hey_jarvis",
    "wake_threshold": 0.6,
    "soul": "default",
    "anthropic_model": "claude-haiku-4-5",
    "guest_policy": "deny",
    "unknown_speaker_policy": "deny",
    "log_level": "info",
}


@dataclass
class RunningKiwi:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    data_dir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def token(self) -> str:
        return (self.data_dir / "api_token").read_text(encoding="utf-8").strip()


def _kiwi_environ(data_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIWI_")}
    env.pop("SUPERVISOR_TOKEN", None)
    env.update({variable: str(ports[name]) for name, (variable, _) in PORT_VARIABLES.items()})
    env.update(
        {
            "KIWI_DATA_DIR": str(data_dir),
            "KIWI_BIND_HOST": "127.0.0.1",
            "HF_HUB_OFFLINE": "1",
            # a download attempt fails at once instead of reaching the network
            "KIWI_PIPER_VOICES_URL": "http://127.0.0.1:9/voices",
            "HF_ENDPOINT": "http://127.0.0.1:9",
        }
    )
    return env


@pytest.fixture(scope="module")
def kiwi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKiwi]:
    root = tmp_path_factory.mktemp("kiwi-stack")
    data_dir = root / "data"
    populate_models_dir(data_dir / "models")
    options = root / "options.json"
    options.write_text(json.dumps(OPTIONS), encoding="utf-8")
    ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
    log = root / "kiwi.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "kiwi_voice.launcher", "--options", str(options)],
            env=_kiwi_environ(data_dir, ports),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningKiwi(process, ports, data_dir, log)
    try:
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def _describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client, asyncio.timeout(10):
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                return Info.from_event(event)
    raise AssertionError(f"no info from port {port}")


async def _wait_until_up(kiwi: RunningKiwi) -> None:
    """Every Wyoming port describes itself and the hub answers /api/health."""
    pending = set(kiwi.ports)
    async with aiohttp.ClientSession() as http:

        async def all_up() -> bool:
            assert kiwi.process.poll() is None, f"kiwi exited:\n{kiwi.output()[-4000:]}"
            for name in sorted(pending):
                try:
                    if name == "hub":
                        url = f"http://127.0.0.1:{kiwi.ports['hub']}/api/health"
                        async with http.get(url) as response:
                            ok = response.status == 200
                    else:
                        ok = isinstance(await _describe(kiwi.ports[name]), Info)
                except (OSError, TimeoutError, aiohttp.ClientError):
                    ok = False
                if ok:
                    pending.discard(name)
            return not pending

        await until_async(
            all_up, lambda: f"up: {sorted(pending)}", timeout_s=STARTUP_LIMIT_S, every_s=0.5
        )


async def test_every_process_answers_on_its_port(kiwi: RunningKiwi) -> None:
    try:
        await _wait_until_up(kiwi)
    except TimeoutError:
        pytest.fail(f"kiwi did not come up in {STARTUP_LIMIT_S:.0f} s:\n{kiwi.output()[-4000:]}")
    announcements = {
        f"{name} is listening on {'http' if name == 'hub' else 'tcp'}://127.0.0.1:{port}"
        for name, port in kiwi.ports.items()
    }

    async def all_announced() -> bool:
        output = kiwi.output()
        return all(line in output for line in announcements)

    # The launcher polls each port on its own schedule: a port can answer us before the
    # launcher has seen it and said so.
    await until_async(
        all_announced,
        lambda: f"not announced: {sorted(a for a in announcements if a not in kiwi.output())}",
        timeout_s=30,
    )


async def test_the_services_run_the_models_the_options_name(kiwi: RunningKiwi) -> None:
    await _wait_until_up(kiwi)
    stt = await _describe(kiwi.ports["stt"])
    tts = await _describe(kiwi.ports["tts"])
    wake = await _describe(kiwi.ports["wake"])
    assert [m.name for m in stt.asr[0].models] == [WHISPER_MODEL_NAME]
    assert PIPER_VOICE_NAME in [v.name for v in tts.tts[0].voices]
    assert "hey_jarvis" in [m.name for m in wake.wake[0].models]


async def test_the_hub_has_the_options_and_the_token_in_the_data_dir(kiwi: RunningKiwi) -> None:
    await _wait_until_up(kiwi)
    headers = {"Authorization": f"Bearer {kiwi.token()}"}
    url = f"http://127.0.0.1:{kiwi.ports['hub']}/api/config"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        assert response.status == 200
        config = await response.json()
    assert config["language"] == "en"
    assert config["stt_model"] == WHISPER_MODEL_NAME
    assert config["tts_voice"] == PIPER_VOICE_NAME
    assert config["wake_word"] == "hey_jarvis"
    assert (kiwi.data_dir / "kiwi.db").exists()


async def test_the_combined_port_merges_and_routes_to_the_real_services(
    kiwi: RunningKiwi,
) -> None:
    await _wait_until_up(kiwi)
    info = await _describe(kiwi.ports["combined"])
    assert [p.name for p in info.asr] == ["kiwi-stt"]
    assert len(info.tts) == 1
    assert len(info.wake) == 1

    audio = b""
    async with AsyncTcpClient("127.0.0.1", kiwi.ports["combined"]) as client:
        await client.write_event(Synthesize(text="Hello from Kiwi.").event())
        async with asyncio.timeout(60):
            while (event := await client.read_event()) is not None:
                assert event.type != "error", event.data
                if event.type == "audio-chunk":
                    audio += event.payload or b""
                if event.type == "audio-stop":
                    break
    assert len(audio) > 1000, "piper's audio came back through the combined port"


async def test_discovery_sends_the_hubs_real_token(kiwi: RunningKiwi) -> None:
    await _wait_until_up(kiwi)
    received: list[dict[str, object]] = []

    async def discovery(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer supervisor-token"
        received.append(await request.json())
        return web.json_response({"result": "ok", "data": {"uuid": "x"}})

    app = web.Application()
    app.router.add_post("/discovery", discovery)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    supervisor_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = _kiwi_environ(kiwi.data_dir, kiwi.ports) | {
        "SUPERVISOR_TOKEN": "supervisor-token",
        "KIWI_SUPERVISOR_URL": f"http://127.0.0.1:{supervisor_port}",
        "KIWI_DISCOVERY_HOST": "local-kiwi",
    }
    try:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "kiwi_voice.launcher", "discovery", "--timeout", "30"),
            env=env,
        )
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        await runner.cleanup()

    assert received == [
        {
            "service": "kiwi",
            "config": {
                "host": "local-kiwi",
                "port": kiwi.ports["hub"],
                "token": kiwi.token(),
                # The hub's identity, which Home Assistant's entry takes as its unique id.
                "instance_id": (kiwi.data_dir / "instance_id").read_text().strip(),
            },
        },
        {"service": "wyoming", "config": {"uri": f"tcp://local-kiwi:{kiwi.ports['combined']}"}},
    ]


async def test_ctrl_c_stops_everything_cleanly(kiwi: RunningKiwi) -> None:
    """Last in this file: it ends the module's stack."""
    await _wait_until_up(kiwi)
    kiwi.process.send_signal(signal.SIGINT)
    exit_code = await asyncio.to_thread(kiwi.process.wait, 30)

    assert exit_code == 0, kiwi.output()[-4000:]
    for name, port in kiwi.ports.items():
        assert not await port_answers("127.0.0.1", port), f"{name} still listens"
    assert "Stopping Kiwi" in kiwi.output()
    assert "after SIGTERM" not in kiwi.output(), "no child needed SIGKILL"
