"""Diagnostics of an entry: what the integration knows, without the token."""

from __future__ import annotations

import json

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.support.hub_process import HubProcess

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)


async def test_diagnostics_redact_the_token(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    kiwi_hub: HubProcess,
    init_integration: MockConfigEntry,
) -> None:
    """The download has the hub's state and connection, and never the token."""
    assert await async_setup_component(hass, "diagnostics", {})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    assert diagnostics["entry"]["data"]["token"] == "**REDACTED**"
    assert diagnostics["entry"]["data"]["port"] == kiwi_hub.port
    assert diagnostics["connection"]["connected"] is True
    assert diagnostics["connection"]["url"] == kiwi_hub.base_url
    assert diagnostics["hub"]["version"]
    assert diagnostics["snapshot"]["status"]["active_soul"] == "default"
    assert {soul["id"] for soul in diagnostics["snapshot"]["souls"]} >= {"default", "butler"}
    assert kiwi_hub.token not in json.dumps(diagnostics)
