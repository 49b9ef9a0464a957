"""Missed events are replayed after a reconnect (?since=), across hub restarts and crashes; the
log is bounded and says when it lost events; ?types filters; a stalled client is cut off
without slowing anyone else. Real hub processes, real WebSockets."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.support.hub_openapi import CheckedClient, EventSocket, OpenApiContract, fetch_contract
from tests.support.hub_process import HubProcess, restart_hub, start_hub

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("hub-replay") / "data", speaker=False)
    yield process
    process.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(
    hub: HubProcess, contract: OpenApiContract, session: aiohttp.ClientSession
) -> CheckedClient:
    return CheckedClient(session, hub.base_url, hub.token, contract)


async def make_events(client: CheckedClient) -> None:
    """Three events through real code paths: CONFIG_CHANGED, SOUL_CHANGED, CONTEXT_RESET."""
    language = (await client.call("GET", "/api/languages")).body["current"]
    await client.call(
        "POST", "/api/language", json={"language": "es" if language != "es" else "it"}
    )
    soul = (await client.call("GET", "/api/soul/current")).body["id"]
    await client.call(
        "POST", "/api/soul", json={"soul": "butler" if soul != "butler" else "default"}
    )
    await client.call("POST", "/api/reset-context")


async def read_replay(socket: EventSocket) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    hello = await socket.next()
    assert hello["event"] == "hello"
    frames = [await socket.next() for _ in range(hello["data"]["replay"])]
    return hello, frames


async def test_reconnect_with_since_gets_exactly_what_was_missed(client: CheckedClient) -> None:
    first = await client.events()
    hello = await first.next()
    seen = hello["data"]["seq"]
    await first.close()

    await make_events(client)
    await make_events(client)

    again = await client.events(since=seen)
    try:
        hello, missed = await read_replay(again)
        assert hello["data"]["replay"] == 6
        assert [f["seq"] for f in missed] == list(range(seen + 1, seen + 7))
        assert [f["event"] for f in missed] == [
            "CONFIG_CHANGED",
            "SOUL_CHANGED",
            "CONTEXT_RESET",
        ] * 2
        history = await client.call("GET", "/api/events/history", params={"since": str(seen)})
        assert history.body["events"] == missed
        # Then live, with no gap and no duplicate.
        await client.call("POST", "/api/reset-context")
        live = await again.next()
        assert live["event"] == "CONTEXT_RESET"
        assert live["seq"] == seen + 7
    finally:
        await again.close()


async def test_types_filter_applies_to_replay_and_live(client: CheckedClient) -> None:
    seq = (await client.call("GET", "/api/status")).body["event_seq"]
    await make_events(client)
    socket = await client.events(since=seq, types="SOUL_CHANGED,CONTEXT_RESET")
    try:
        hello, missed = await read_replay(socket)
        assert hello["data"]["types"] == ["CONTEXT_RESET", "SOUL_CHANGED"]
        assert [f["event"] for f in missed] == ["SOUL_CHANGED", "CONTEXT_RESET"]
        await client.call("POST", "/api/language", json={"language": "pl"})  # filtered out
        await client.call("POST", "/api/reset-context")
        assert (await socket.next())["event"] == "CONTEXT_RESET"
    finally:
        await socket.close()


async def test_a_seq_the_hub_never_issued_is_reported(client: CheckedClient) -> None:
    socket = await client.events(since=10**9)
    try:
        hello = await socket.next()
        gap = await socket.next()
        assert gap["event"] == "replay_gap"
        assert gap["data"]["reason"] == "unknown_seq"
        assert gap["data"]["current_seq"] == hello["data"]["seq"]
        assert hello["data"]["replay"] == 0
    finally:
        await socket.close()


async def test_replay_survives_a_restart(client: CheckedClient, hub: HubProcess) -> None:
    socket = await client.events()
    seq_before = (await socket.next())["data"]["seq"]
    await client.call("POST", "/api/restart")
    code, reason = await socket.closed()
    assert code == 1001
    assert "since" in reason
    assert hub.wait() == 75
    restart_hub(hub)
    await make_events(client)
    again = await client.events(since=seq_before)
    try:
        _hello, missed = await read_replay(again)
        assert [f["event"] for f in missed] == [
            "HUB_STOPPING",
            "CONFIG_CHANGED",
            "SOUL_CHANGED",
            "CONTEXT_RESET",
        ]
        assert [f["seq"] for f in missed] == list(range(seq_before + 1, seq_before + 5))
    finally:
        await again.close()


async def test_settings_soul_and_events_survive_kill_9(
    client: CheckedClient, hub: HubProcess
) -> None:
    await client.call("PATCH", "/api/config", json={"language": "ja", "vad_silence_seconds": 0.65})
    await client.call("POST", "/api/soul", json={"soul": "storyteller"})
    seq = (await client.call("GET", "/api/status")).body["event_seq"]
    hub.kill()
    restart_hub(hub)
    config = (await client.call("GET", "/api/config")).body
    assert config["language"] == "ja"
    assert config["vad_silence_seconds"] == 0.65
    assert (await client.call("GET", "/api/soul/current")).body["id"] == "storyteller"
    status = (await client.call("GET", "/api/status")).body
    assert status["event_seq"] == seq  # nothing lost, nothing re-issued
    history = await client.call("GET", "/api/events/history", params={"since": str(seq - 2)})
    assert [f["event"] for f in history.body["events"]] == ["CONFIG_CHANGED", "SOUL_CHANGED"]


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub that keeps only 5 events and lets a client fall 10 behind."""
    process = start_hub(
        tmp_path_factory.mktemp("hub-small") / "data",
        speaker=False,
        args=["--event-log-size", "5", "--client-queue-size", "10"],
    )
    yield process
    process.stop()


async def test_replay_window_exceeded_is_announced(
    small_hub: HubProcess, session: aiohttp.ClientSession
) -> None:
    client = CheckedClient(session, small_hub.base_url, small_hub.token, fetch_contract(small_hub))
    for _ in range(4):
        await make_events(client)  # 12 events, the log keeps the last 5
    socket = await client.events(since=0)
    try:
        hello = await socket.next()
        gap = await socket.next()
        assert gap["event"] == "replay_gap"
        assert gap["data"]["reason"] == "window_exceeded"
        assert gap["data"]["oldest_available"] == 8
        missed = [await socket.next() for _ in range(hello["data"]["replay"])]
        assert [f["seq"] for f in missed] == [8, 9, 10, 11, 12]
    finally:
        await socket.close()


def stalled_client(hub: HubProcess) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", hub.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /api/events?token={hub.token} HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    return raw


async def test_a_stalled_client_is_cut_off_and_blocks_no_one(
    small_hub: HubProcess, session: aiohttp.ClientSession
) -> None:
    client = CheckedClient(session, small_hub.base_url, small_hub.token, fetch_contract(small_hub))
    stalled = stalled_client(small_hub)
    healthy = await client.events()
    try:
        first_seq = (await healthy.next())["data"]["seq"]
        voice = "v" * 120  # bigger frames fill the stalled client's buffers sooner
        published = 0
        while "Disconnecting a slow event client" not in small_hub.log():
            assert published < 5000, "the stalled client was never disconnected"
            suffix = "a" if published % 2 else "b"
            await client.call("PATCH", "/api/config", json={"tts_voice": voice + suffix})
            published += 1
        for expected in range(first_seq + 1, first_seq + published + 1):
            frame = await healthy.next()
            assert frame["seq"] == expected
        assert "reconnect with ?since=" in small_hub.log()
    finally:
        await healthy.close()
        stalled.close()
    assert (await client.call("GET", "/api/status")).status == 200


async def test_shutdown_exits_zero(client: CheckedClient, hub: HubProcess) -> None:
    answer = await client.call("POST", "/api/shutdown")
    assert answer.body == {"status": "shutting_down"}
    assert hub.wait() == 0


def test_sigterm_stops_cleanly(small_hub: HubProcess) -> None:
    assert small_hub.stop() == 0
    assert "Stopping (signal)" in small_hub.log()
