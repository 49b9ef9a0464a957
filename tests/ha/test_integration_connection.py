"""The event stream across hub restarts and hangs: unavailable and back, no event lost, logged
once; what is replayed updates state but does not act."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta

import aiohttp
import pytest
from homeassistant.components import conversation
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_TOKEN, STATE_UNAVAILABLE
from homeassistant.core import Context, Event, EventStateChangedData, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import intent
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.kiwi.const import DOMAIN, KIWI_EVENT
from tests.ha.kiwi_common import (
    TEST_ENTRY_ID,
    entry_for,
    hub_client_for,
    setup_entry,
    wait_for,
    wait_for_state,
)
from tests.ha.test_integration_device_trigger import automate, hub_device
from tests.support.hub_process import HubProcess, restart_hub, start_hub
from tests.support.speech import espeak_wav

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

STATE = "sensor.kiwi_assistant_state"
SOUL = "sensor.kiwi_active_soul"
EVENTS = "event.kiwi_voice_events"


@pytest.fixture(autouse=True)
def quick_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry every fraction of a second (a real hub restart takes about one)."""
    monkeypatch.setattr("custom_components.kiwi.coordinator.RECONNECT_INITIAL_DELAY", 0.1)
    monkeypatch.setattr("custom_components.kiwi.coordinator.RECONNECT_MAX_DELAY", 0.3)


async def test_no_event_lost_across_a_restart(
    hass: HomeAssistant,
    start_kiwi_hub: Callable[..., HubProcess],
    hub_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events that happen while Home Assistant cannot reach the hub arrive after it reconnects.

    The hub is stopped; the same hub (same data, so the same event log) runs for a while on
    another port where Home Assistant does not look, and things happen there; then it comes
    back on its own port. Home Assistant resumes with ?since and gets them all, once, in order.
    They update state (the soul sensor) and reach the bus with `replayed: true`, but neither
    the event entity nor a device trigger acts on them: a wake word from minutes ago does not
    run its automation now. A live one does.
    """
    hub = start_kiwi_hub()
    entry = await setup_entry(hass, entry_for(hub))
    await wait_for_state(hass, SOUL, "Default")
    bus_events = async_capture_events(hass, KIWI_EVENT)
    woken = await automate(hass, hub_device(hass).id, "wake_word_detected")
    clip = espeak_wav("hello there").read_bytes()
    reported: list[str] = []

    def record(event: Event[EventStateChangedData]) -> None:
        new_state = event.data["new_state"]
        if event.data["entity_id"] != EVENTS or new_state is None:
            return
        if event_type := new_state.attributes.get("event_type"):  # not unavailable and back
            reported.append(event_type)

    hass.bus.async_listen("state_changed", record)

    hub.stop()
    await wait_for_state(hass, STATE, STATE_UNAVAILABLE)

    elsewhere = start_hub(hub.data_dir, speaker=False)
    try:
        client = hub_client_for(elsewhere, hub_session)
        await client.set_soul("comedian")
        await client.set_language("de")
        await client.reset_context()
        # Push-to-talk: WAKE_WORD_DETECTED (the turn then fails: no speech-to-text there).
        await client.request(
            "POST", "/api/audio/file", params={"mode": "push_to_talk"}, wav=clip, time_limit=30
        )
    finally:
        elsewhere.stop()
    assert not [e for e in bus_events if e.data["type"] == "SOUL_CHANGED"]

    restart_hub(hub)
    await wait_for_state(hass, SOUL, "Comedian")
    await wait_for_state(hass, STATE, "idle")

    missed = [e.data for e in bus_events if e.data["replayed"]]
    assert [e["type"] for e in missed if e["type"] != "HUB_STOPPING"][:4] == [
        "SOUL_CHANGED",
        "CONFIG_CHANGED",
        "CONTEXT_RESET",
        "WAKE_WORD_DETECTED",
    ]
    seqs = [e.data["seq"] for e in bus_events]
    assert seqs == sorted(set(seqs)), "an event came twice or out of order"
    # Replayed: state only. No event entity report, no device trigger.
    # (Live events of the reconnect itself may show: the speaker list the refresh asked for.)
    assert not {"soul_changed", "context_reset", "wake_word_detected"} & set(reported)
    assert woken == []

    # Live, the same event acts.
    await hub_client_for(hub, hub_session).request(
        "POST", "/api/audio/file", params={"mode": "push_to_talk"}, wav=clip, time_limit=30
    )
    await wait_for(hass, lambda: len(woken) == 1, "the live wake word did not trigger")
    await wait_for(hass, lambda: "wake_word_detected" in reported, "no live event entity report")

    assert caplog.text.count("Lost the connection to the Kiwi hub") == 1
    assert caplog.text.count("Reconnected to the Kiwi hub") == 1
    await hass.config_entries.async_unload(entry.entry_id)


async def test_unreachable_hub_raises_a_repair_until_it_is_back(
    hass: HomeAssistant,
    start_kiwi_hub: Callable[..., HubProcess],
    issue_registry: ir.IssueRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a while without the hub a repair issue says so; reconnecting closes it."""
    monkeypatch.setattr(
        "custom_components.kiwi.const.UNREACHABLE_ISSUE_DELAY", timedelta(seconds=0.2)
    )
    hub = start_kiwi_hub()
    entry = await setup_entry(hass, entry_for(hub))
    issue_id = f"hub_unreachable_{TEST_ENTRY_ID}"

    hub.stop()
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None, "no issue"
    )
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"url": hub.base_url, "minutes": "0"}

    restart_hub(hub)
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is None, "issue stayed"
    )
    await hass.config_entries.async_unload(entry.entry_id)


async def test_new_token_while_running_starts_reauth(
    hass: HomeAssistant, start_kiwi_hub: Callable[..., HubProcess]
) -> None:
    """The hub comes back with a new token: reauth asks for it, and the entry works again."""
    hub = start_kiwi_hub()
    entry = await setup_entry(hass, entry_for(hub))
    old_token = hub.token

    hub.stop()
    (hub.data_dir / "api_token").unlink()  # the hub makes a new token at start
    restart_hub(hub)
    assert hub.token != old_token

    def reauth_flows() -> list[str]:
        return [
            flow["flow_id"]
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"]["source"] == SOURCE_REAUTH
        ]

    await wait_for(hass, lambda: bool(reauth_flows()), "no reauth flow")

    # Until then, what the entry is asked to do fails with the reason, not a stack trace.
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            DOMAIN, "reset_context", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert raised.value.translation_key == "invalid_auth"
    answer = await conversation.async_converse(
        hass, "hello", None, Context(), language="en", agent_id="conversation.kiwi"
    )
    assert answer.response.response_type is intent.IntentResponseType.ERROR
    assert "refused the API token" in answer.response.speech["plain"]["speech"]

    result = await hass.config_entries.flow.async_configure(
        reauth_flows()[0], {CONF_TOKEN: hub.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data[CONF_TOKEN] == hub.token
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_hung_hub_is_noticed_and_recovers(
    hass: HomeAssistant, start_kiwi_hub: Callable[..., HubProcess]
) -> None:
    """The hub's process stops (SIGSTOP: its sockets stay open, nothing answers): within 15 s
    the heartbeat's deadline passes and the entities are unavailable; SIGCONT, and they are
    back by themselves."""
    hub = start_kiwi_hub()
    entry = await setup_entry(hass, entry_for(hub))
    await wait_for_state(hass, STATE, "idle")
    os.kill(hub.process.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        await wait_for_state(hass, STATE, STATE_UNAVAILABLE, limit_s=15.0)
        noticed_after = time.monotonic() - stopped
    finally:
        os.kill(hub.process.pid, signal.SIGCONT)
    assert noticed_after < 15.0
    await wait_for_state(hass, STATE, "idle", limit_s=30.0)
    assert entry.runtime_data.coordinator.connected
    await hass.config_entries.async_unload(entry.entry_id)
