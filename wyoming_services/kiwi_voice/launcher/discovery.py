"""Tells Home Assistant about Kiwi through the Supervisor, once Kiwi's ports answer.

Two messages, because the Supervisor keeps one per service name per add-on:
- `kiwi` {host, port, token, instance_id}: the Kiwi integration's config flow (async_step_hassio)
  connects to the hub with them; the instance id (the hub's `instance_id` file) is the entry's
  unique id;
- `wyoming` {uri}: Home Assistant's Wyoming integration offers STT, TTS and wake word from the
  combined endpoint, which routes to the three services.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .probe import wait_for_ports
from .settings import LauncherSettings, supervisor_url

_LOGGER = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0


class DiscoveryError(RuntimeError):
    """Discovery could not be sent; the message says what to check."""


@dataclass(frozen=True)
class DiscoveryMessage:
    service: str
    config: Mapping[str, Any]

    def body(self) -> dict[str, Any]:
        """The JSON the Supervisor's POST /discovery takes."""
        return {"service": self.service, "config": dict(self.config)}


def advertised_host(environ: Mapping[str, str] | None = None) -> str:
    """The name Home Assistant reaches this container by: the add-on's hostname on the
    Supervisor's network (what `hostname` prints inside it), unless KIWI_DISCOVERY_HOST says."""
    env = os.environ if environ is None else environ
    return env.get("KIWI_DISCOVERY_HOST") or socket.gethostname()


def discovery_messages(
    settings: LauncherSettings, host: str, token: str, instance_id: str = ""
) -> list[DiscoveryMessage]:
    kiwi: dict[str, Any] = {"host": host, "port": settings.port("hub"), "token": token}
    if instance_id:
        kiwi["instance_id"] = instance_id
    return [
        DiscoveryMessage("kiwi", kiwi),
        DiscoveryMessage("wyoming", {"uri": f"tcp://{host}:{settings.port('combined')}"}),
    ]


async def read_token(token_file: Path, limit_s: float) -> str:
    """The hub's API token; the hub writes it on its first start, so wait for it a while."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        if token := await asyncio.to_thread(_read_stripped, token_file):
            return token
        if loop.time() >= deadline:
            raise DiscoveryError(f"the hub has not written its token to {token_file}")
        await asyncio.sleep(0.5)


def _read_stripped(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


async def post_discovery(
    messages: list[DiscoveryMessage], supervisor_url: str, supervisor_token: str
) -> None:
    headers = {"Authorization": f"Bearer {supervisor_token}"}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        for message in messages:
            try:
                async with session.post(f"{supervisor_url}/discovery", json=message.body()) as resp:
                    if resp.status != 200:
                        text = await resp.text()
                        raise DiscoveryError(
                            f"the Supervisor refused {message.service} discovery: "
                            f"HTTP {resp.status} {text[:200]}"
                        )
            except aiohttp.ClientError as err:
                raise DiscoveryError(
                    f"cannot reach the Supervisor at {supervisor_url}: {err}"
                ) from err
            _LOGGER.info("Sent %s discovery to Home Assistant", message.service)


async def announce(
    settings: LauncherSettings,
    environ: Mapping[str, str] | None = None,
    ports_wait_s: float = 600.0,
) -> None:
    """Wait for every Kiwi port, then send both discovery messages.

    All of them, not just the hub and the combined endpoint: Home Assistant's Wyoming flow asks the
    combined endpoint for `info` at once, and it can only list the services that answer. The wait is
    long by default because on first start the services may download models before they listen.
    """
    env = os.environ if environ is None else environ
    supervisor_token = env.get("SUPERVISOR_TOKEN")
    if not supervisor_token:
        raise DiscoveryError("SUPERVISOR_TOKEN is not set: discovery only works inside the add-on")
    ports = list(settings.ports.values())
    if missing := await wait_for_ports("127.0.0.1", ports, wait_s=ports_wait_s):
        raise DiscoveryError(f"ports {missing} did not answer within {ports_wait_s:.0f} s")
    token = await read_token(settings.token_file, limit_s=30.0)
    instance_id = await asyncio.to_thread(_read_stripped, settings.data_dir / "instance_id")
    messages = discovery_messages(settings, advertised_host(env), token, instance_id)
    await post_discovery(
        messages,
        supervisor_url(env),
        supervisor_token,
    )
