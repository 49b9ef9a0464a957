"""Repair issues raised from what the hub reports: a service without its model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.kiwi.api import KiwiResponseError
from custom_components.kiwi.const import DOMAIN
from tests.ha.kiwi_common import (
    TEST_ENTRY_ID,
    WyomingServices,
    browser_speaker,
    entry_for,
    hub_client_for,
    setup_entry,
    wait_for,
)
from tests.support.hub_process import HubProcess, start_hub
from tests.support.ports import free_port
from tests.support.wyoming_process import ServiceProcess, start_service

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

ISSUE = f"models_missing_tts_{TEST_ENTRY_ID}"


@pytest.fixture
def tts_without_voice(tmp_path: Path, socket_enabled: None) -> Iterator[ServiceProcess]:
    """kiwi-tts whose voice is not on disk and cannot be downloaded (nothing at the URL)."""
    empty = tmp_path / "voices"
    empty.mkdir()
    service = start_service(
        "kiwi-tts",
        [
            "--data-dir", str(empty),
            "--voice", "en_US-nowhere-x_low",
            "--download-url", f"http://127.0.0.1:{free_port()}/",
        ],
        tmp_path / "kiwi-tts.log",
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(autouse=True)
def quick_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry every fraction of a second (a real hub restart takes about one)."""
    monkeypatch.setattr("custom_components.kiwi.coordinator.RECONNECT_INITIAL_DELAY", 0.1)
    monkeypatch.setattr("custom_components.kiwi.coordinator.RECONNECT_MAX_DELAY", 0.3)


async def test_missing_model_raises_a_repair_until_the_service_works(
    hass: HomeAssistant,
    start_kiwi_hub: Callable[..., HubProcess],
    tts_without_voice: ServiceProcess,
    kiwi_services: WyomingServices,
    hub_session: aiohttp.ClientSession,
) -> None:
    """The TTS service lacks its voice: a repair names it; speaking again closes it."""
    issue_registry = ir.async_get(hass)
    hub = start_kiwi_hub(tts_uri=tts_without_voice.uri)
    entry = await setup_entry(hass, entry_for(hub))
    with pytest.raises(KiwiResponseError) as refused:
        async with browser_speaker(hub, hub_session):  # something to play on: TTS is asked
            await hub_client_for(hub, hub_session).tts_test("Hello")
    assert refused.value.code == "model_missing"
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, ISSUE) is not None, "no issue"
    )
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.translation_key == "models_missing"
    assert issue.translation_placeholders["service"] == "tts"

    # The same hub (same port and data) comes back in front of a TTS service that works.
    hub.stop()
    fixed = start_hub(hub.data_dir, port=hub.port, speaker=False, tts_uri=kiwi_services.tts.uri)
    try:
        await wait_for(hass, lambda: entry.runtime_data.coordinator.connected, "no reconnect")
        # A new session: the old hub's connections are dead.
        async with aiohttp.ClientSession() as session, browser_speaker(fixed, session):
            await hub_client_for(fixed, session).tts_test("Hello")
        await wait_for(
            hass, lambda: issue_registry.async_get_issue(DOMAIN, ISSUE) is None, "issue stayed"
        )
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        fixed.stop()


async def test_a_setting_kiwi_needs_raises_a_repair_until_it_is_set(
    hass: HomeAssistant,
    start_kiwi_hub: Callable[..., HubProcess],
    hub_session: aiohttp.ClientSession,
) -> None:
    """No Home Assistant token and no Anthropic key: asking Kiwi answers what to configure,
    and a repair names the setting; the hub started with the token closes it."""
    issue_registry = ir.async_get(hass)
    issue_id = f"setting_needed_homeassistant_token_{TEST_ENTRY_ID}"
    hub = start_kiwi_hub(env={"KIWI_HA_TOKEN": "", "ANTHROPIC_API_KEY": ""})
    entry = await setup_entry(hass, entry_for(hub))
    with pytest.raises(KiwiResponseError) as raised:
        await hub_client_for(hub, hub_session).request(
            "POST", "/api/conversation", json={"text": "what is the weather?"}
        )
    assert "KIWI_HA_TOKEN" in str(raised.value)
    await wait_for(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None, "no issue"
    )
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "setting_needed"
    assert issue.translation_placeholders["setting"] == "homeassistant_token"

    hub.stop()
    fixed = start_hub(hub.data_dir, port=hub.port, speaker=False, env={"KIWI_HA_TOKEN": "token"})
    try:
        await wait_for(
            hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is None, "issue stayed"
        )
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        fixed.stop()
