"""kill -9 the hub while Home Assistant's integration and two dashboard clients are connected
and events keep coming: everyone reconnects with `since` and sees every event exactly once.

A publisher changes things on the hub every few milliseconds before, during and after the
crash (requests that find the hub down fail, as a user's would). The two dashboard clients
behave like the dashboard's events.js (resume with ?since=<last seq>, retry with backoff) but
keep every frame they receive, duplicates included, so the hub's replay is what is checked,
not a client-side filter. At the end each of the three has exactly the seqs the hub logged
since they connected: no gap, no duplicate, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.kiwi.const import KIWI_EVENT
from tests.ha.kiwi_common import entry_for, setup_entry, wait_for, wait_for_state
from tests.support.hub_process import HubProcess, restart_hub

pytestmark = pytest.mark.timeout(120)

SOUL = "sensor.kiwi_active_soul"
STATE = "sensor.kiwi_assistant_state"
PUBLISH_EVERY_S = 0.02
SOULS = ("default", "comedian", "butler", "storyteller")


@pytest.fixture(autouse=True)
def quick_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry every fraction of a second (the dashboard clients below do the same)."""
    monkeypatch.setattr("custom_components.kiwi.coordinator.RECONNECT_INITIAL_DELAY", 0.1)
    monkeypatch.setattr("custom_components.kiwi.coordinator.RECONNECT_MAX_DELAY", 0.3)


@dataclass
class DashboardClient:
    """An /api/events client that resumes like the dashboard and records every frame."""

    hub: HubProcess
    session: aiohttp.ClientSession
    first_seq: int | None = None
    seqs: list[int] = field(default_factory=list)
    connections: int = 0
    replay_gaps: list[dict[str, object]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    # Cleared by the test to keep this client away until events have happened without it.
    may_reconnect: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last_seq(self) -> int | None:
        return self.seqs[-1] if self.seqs else self.first_seq

    async def run(self) -> None:
        while True:
            await self.may_reconnect.wait()
            query = {} if self.last_seq is None else {"since": self.last_seq}
            try:
                async with self.session.ws_connect(self.hub.ws_url("/api/events", **query)) as ws:
                    await self._read(ws)
            except (aiohttp.ClientError, OSError):
                pass
            self.connected.clear()
            await asyncio.sleep(0.2)  # the dashboard's reconnect backoff, shortened: a pace

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            if frame["event"] == "hello":
                self.connections += 1
                if self.first_seq is None:
                    self.first_seq = frame["data"]["seq"]
                self.connected.set()
            elif frame["event"] == "replay_gap":
                self.replay_gaps.append(frame["data"])
            elif "seq" in frame:
                self.seqs.append(frame["seq"])


async def publish(hub: HubProcess, session: aiohttp.ClientSession, acked: list[int]) -> None:
    """Switch souls and reset the context, over and over; count what the hub accepted."""
    for index in range(10**6):
        body = {"soul": SOULS[index % len(SOULS)]}
        path, payload = ("/api/soul", body) if index % 2 else ("/api/reset-context", None)
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.post(
                hub.base_url + path, json=payload, headers=hub.auth_headers
            ) as answer:
                if answer.status == 200:
                    acked.append(index)
        await asyncio.sleep(PUBLISH_EVERY_S)  # a steady stream of events: a pace


def assert_exactly(seqs: list[int], first: int, last: int, who: str) -> None:
    duplicates = sorted({s for s in seqs if seqs.count(s) > 1})
    assert not duplicates, f"{who} got seqs {duplicates[:10]} more than once"
    missing = sorted(set(range(first + 1, last + 1)) - set(seqs))
    assert not missing, f"{who} never got seqs {missing[:10]} ({len(missing)} in all)"
    assert seqs == sorted(seqs), f"{who} got events out of order"
    assert seqs[-1] == last, f"{who} got events the hub never logged"


async def test_everyone_gets_every_event_once_across_a_kill_9(
    hass: HomeAssistant,
    start_kiwi_hub: Callable[..., HubProcess],
    hub_session: aiohttp.ClientSession,
) -> None:
    hub = start_kiwi_hub()
    entry = await setup_entry(hass, entry_for(hub))
    await wait_for_state(hass, SOUL, "Default")
    bus_events = async_capture_events(hass, KIWI_EVENT)
    dashboards = [DashboardClient(hub, hub_session) for _ in range(2)]
    for dashboard in dashboards:
        dashboard.may_reconnect.set()
    tasks = [asyncio.create_task(d.run()) for d in dashboards]
    acked: list[int] = []
    publisher: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(asyncio.gather(*(d.connected.wait() for d in dashboards)), 15)
        start = min(d.first_seq or 0 for d in dashboards)
        publisher = asyncio.create_task(publish(hub, hub_session, acked))
        await wait_for(
            hass,
            lambda: len(acked) >= 3 and all(d.seqs for d in dashboards) and bool(bus_events),
            "events did not flow to both dashboards and Home Assistant",
        )

        for dashboard in dashboards:
            dashboard.may_reconnect.clear()
        before_crash = len(acked)
        await hass.async_add_executor_job(hub.kill)  # mid-stream: no chance to say goodbye
        await wait_for_state(hass, STATE, "unavailable")
        await hass.async_add_executor_job(restart_hub, hub)  # what `kiwi` or s6 does
        # The dashboards come back only after events they must get from the replay log.
        await wait_for(hass, lambda: len(acked) > before_crash + 10, "no writes after restart")
        replayed_from = max(d.last_seq or 0 for d in dashboards)
        for dashboard in dashboards:
            dashboard.may_reconnect.set()
        await wait_for(hass, lambda: len(acked) > before_crash + 20, "no writes after replay")
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        publisher = None

        async with hub_session.get(
            hub.base_url + "/api/status", headers=hub.auth_headers
        ) as answer:
            last = (await answer.json())["event_seq"]

        def everyone_caught_up() -> bool:
            integration = [e.data["seq"] for e in bus_events]
            return all(d.seqs and d.seqs[-1] >= last for d in dashboards) and bool(
                integration and integration[-1] >= last
            )

        await wait_for(hass, everyone_caught_up, "not everyone caught up after the restart")
    finally:
        if publisher is not None:
            publisher.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *([publisher] if publisher else []), return_exceptions=True)

    for number, dashboard in enumerate(dashboards, 1):
        assert dashboard.connections >= 2, "the dashboard never reconnected"
        assert not dashboard.replay_gaps, dashboard.replay_gaps
        assert dashboard.first_seq is not None
        assert_exactly(dashboard.seqs, dashboard.first_seq, last, f"dashboard {number}")
    integration = [e.data["seq"] for e in bus_events]
    assert_exactly(integration, integration[0] - 1, last, "the integration")
    assert integration[0] <= start + 1
    assert last - replayed_from >= 10, "the dashboards had events to replay"
    assert len(acked) > 20
    print(  # figures for docs/testing.md (pytest -s shows them)
        f"events {start + 1}..{last}: each dashboard and the integration got all "
        f"{last - start} once; replayed to the integration: "
        f"{sum(e.data['replayed'] for e in bus_events)}"
    )
    await hass.config_entries.async_unload(entry.entry_id)
