"""Supervisor discovery: sent once every port answers, in the Supervisor's own request shape.

A local HTTP server plays the Supervisor's POST /discovery (JSON {"service", "config"}, Bearer
SUPERVISOR_TOKEN, answering {"result": "ok", "data": {"uuid"}}), and plain TCP listeners stand in
for Kiwi's ports: discovery only needs them to accept connections.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kiwi_voice.launcher.discovery import (
    DiscoveryError,
    advertised_host,
    announce,
    discovery_messages,
)
from kiwi_voice.launcher.settings import PORT_VARIABLES, LauncherSettings
from tests.support.ports import free_ports

pytestmark = pytest.mark.timeout(60)

SUPERVISOR_TOKEN = "supervisor-test-token"
HUB_TOKEN = "kiwi-hub-token-0123456789"
INSTANCE_ID = "0123456789abcdef0123456789abcdef"  # the hub's identity (hub/identity.py)


@dataclass
class FakeSupervisor:
    url: str = ""
    requests: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
async def supervisor() -> AsyncIterator[FakeSupervisor]:
    fake = FakeSupervisor()

    async def discovery(request: web.Request) -> web.Response:
        fake.requests.append((request.headers.get("Authorization"), await request.json()))
        if request.headers.get("Authorization") != f"Bearer {SUPERVISOR_TOKEN}":
            return web.json_response({"result": "error", "message": "Unauthorized"}, status=401)
        if fake.status != 200:
            return web.json_response({"result": "error", "message": "nope"}, status=fake.status)
        return web.json_response({"result": "ok", "data": {"uuid": f"uuid-{len(fake.requests)}"}})

    app = web.Application()
    app.router.add_post("/discovery", discovery)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@dataclass
class Ports:
    by_process: dict[str, int]
    servers: list[asyncio.Server] = field(default_factory=list)

    def environ(self) -> dict[str, str]:
        return {
            variable: str(self.by_process[name])
            for name, (variable, _default) in PORT_VARIABLES.items()
        }

    async def open(self) -> None:
        async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        for port in self.by_process.values():
            self.servers.append(await asyncio.start_server(accept, "127.0.0.1", port))

    async def close(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def ports() -> AsyncIterator[Ports]:
    kiwi_ports = Ports(dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True)))
    try:
        yield kiwi_ports
    finally:
        await kiwi_ports.close()


def _data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "api_token").write_text(HUB_TOKEN + "\n", encoding="utf-8")
    (data / "instance_id").write_text(INSTANCE_ID + "\n", encoding="utf-8")
    return data


async def test_kiwi_discovery_waits_for_the_ports_then_posts_both_messages(
    tmp_path: Path, supervisor: FakeSupervisor, ports: Ports
) -> None:
    """The add-on's oneshot runs exactly this command."""
    env = {
        **os.environ,
        **ports.environ(),
        "KIWI_DATA_DIR": str(_data_dir(tmp_path)),
        "SUPERVISOR_TOKEN": SUPERVISOR_TOKEN,
        "KIWI_SUPERVISOR_URL": supervisor.url,
    }
    env.pop("KIWI_DISCOVERY_HOST", None)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "kiwi_voice.launcher", "discovery", "--timeout", "30"),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Nothing may happen here, so no event to wait for: long enough for an eager sender.
        await asyncio.sleep(1.0)
        assert supervisor.requests == [], "nothing is sent before the ports answer"
        await ports.open()
        async with asyncio.timeout(30):
            _stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, stderr.decode()
    host = socket.gethostname()
    assert supervisor.requests == [
        (
            f"Bearer {SUPERVISOR_TOKEN}",
            {
                "service": "kiwi",
                "config": {
                    "host": host,
                    "port": ports.by_process["hub"],
                    "token": HUB_TOKEN,
                    "instance_id": INSTANCE_ID,
                },
            },
        ),
        (
            f"Bearer {SUPERVISOR_TOKEN}",
            {
                "service": "wyoming",
                "config": {"uri": f"tcp://{host}:{ports.by_process['combined']}"},
            },
        ),
    ]
    assert "Sent wyoming discovery to Home Assistant" in stderr.decode()
    assert HUB_TOKEN not in stderr.decode(), "the token never reaches the log"


async def test_a_refusal_is_reported(
    tmp_path: Path, supervisor: FakeSupervisor, ports: Ports
) -> None:
    await ports.open()
    supervisor.status = 400
    settings = LauncherSettings(data_dir=_data_dir(tmp_path), ports=ports.by_process)
    env = {"SUPERVISOR_TOKEN": SUPERVISOR_TOKEN, "KIWI_SUPERVISOR_URL": supervisor.url}

    with pytest.raises(DiscoveryError, match="the Supervisor refused kiwi discovery: HTTP 400"):
        await announce(settings, env, ports_wait_s=5)


async def test_ports_that_never_answer_are_named(tmp_path: Path, ports: Ports) -> None:
    settings = LauncherSettings(data_dir=_data_dir(tmp_path), ports=ports.by_process)
    env = {"SUPERVISOR_TOKEN": SUPERVISOR_TOKEN, "KIWI_SUPERVISOR_URL": "http://127.0.0.1:9"}

    with pytest.raises(DiscoveryError, match=r"did not answer within 1 s"):
        await announce(settings, env, ports_wait_s=1)


async def test_outside_the_addon_there_is_nothing_to_tell(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match="SUPERVISOR_TOKEN is not set"):
        await announce(LauncherSettings(data_dir=tmp_path), {}, ports_wait_s=1)


def test_the_advertised_host_can_be_set() -> None:
    assert advertised_host({}) == socket.gethostname()
    assert advertised_host({"KIWI_DISCOVERY_HOST": "local-kiwi"}) == "local-kiwi"
    messages = discovery_messages(LauncherSettings(), "local-kiwi", "t")
    assert [m.body() for m in messages] == [
        {"service": "kiwi", "config": {"host": "local-kiwi", "port": 7789, "token": "t"}},
        {"service": "wyoming", "config": {"uri": "tcp://local-kiwi:10700"}},
    ]
