"""Set-up and unload of the Kiwi integration against a real hub (the smoke test of issue 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kiwi.const import DOMAIN
from tests.ha.kiwi_common import entry_for, setup_entry
from tests.support.cache import REPO_ROOT
from tests.support.hub_process import HubProcess
from tests.support.ports import free_port

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

MANIFEST = REPO_ROOT / "custom_components" / "kiwi" / "manifest.json"
MANIFEST_SCHEMA = (
    Path(__file__).resolve().parents[1] / "schemas" / "integration-manifest.schema.json"
)
ADDON_PYTHON = REPO_ROOT / ".venv-addon" / "bin" / "python"
# jsonschema lives in the add-on env (HA's env does not ship it): validate there.
VALIDATE = """
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
manifest = json.load(open(sys.argv[2]))
errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(manifest)]
sys.exit("\\n".join(errors) or None)
"""


async def test_setup_and_unload(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """The entry loads against the real hub, creates the hub device, and unloads cleanly."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator.connected
    assert hass.states.get("sensor.kiwi_assistant_state").state == "idle"
    assert entry.runtime_data.info.version

    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, entry.unique_id)})
    assert device is not None
    assert device.name == "Kiwi"
    assert device.sw_version == entry.runtime_data.info.version

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    # The entities stay registered but show that the hub is not there any more.
    state = hass.states.get("sensor.kiwi_assistant_state")
    assert state is not None
    assert state.state == "unavailable"


async def test_setup_retries_when_hub_is_down(hass: HomeAssistant, socket_enabled: None) -> None:
    """Nothing listens at the address: the entry waits and retries (ConfigEntryNotReady)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="nowhere",
        data={"host": "127.0.0.1", "port": free_port(), "token": "whatever"},
    )
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    port = entry.data["port"]
    # Said once, with what to check: not "Cannot connect … Cannot talk … Cannot connect".
    assert entry.reason == (
        f"Cannot connect to the Kiwi hub at http://127.0.0.1:{port}: "
        "connection refused (is Kiwi running on that port?)"
    )


async def test_an_entry_from_before_instance_ids_takes_the_hubs(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """A hand-added hub's entry (unique id host:port) takes the hub's instance id at set-up,
    with its device and entities: their entity ids stay, their unique ids follow."""
    old = f"127.0.0.1:{kiwi_hub.port}"
    instance_id = (kiwi_hub.data_dir / "instance_id").read_text(encoding="utf-8").strip()
    entry = await setup_entry(hass, entry_for(kiwi_hub, unique_id=old))
    entities = er.async_get(hass)
    before = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(entities, entry.entry_id)
    }
    assert entry.unique_id == instance_id  # the first set-up already took it
    await hass.config_entries.async_unload(entry.entry_id)

    # The same registries as an older Kiwi integration left them.
    for entity_id, unique_id in before.items():
        entities.async_update_entity(entity_id, new_unique_id=unique_id.replace(instance_id, old))
    devices = dr.async_get(hass)
    hub = devices.async_get_device(identifiers={(DOMAIN, instance_id)})
    assert hub is not None
    devices.async_update_device(hub.id, new_identifiers={(DOMAIN, old)})
    hass.config_entries.async_update_entry(entry, unique_id=old)

    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.unique_id == instance_id
    after = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(entities, entry.entry_id)
    }
    assert after == before
    assert devices.async_get_device(identifiers={(DOMAIN, instance_id)}).id == hub.id  # type: ignore[union-attr]
    assert hass.states.get("sensor.kiwi_assistant_state").state == "idle"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_setup_with_refused_token_starts_reauth(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """A wrong token fails the set-up and asks the user for a new one."""
    entry = await setup_entry(
        hass,
        entry_for(
            kiwi_hub, data={"host": "127.0.0.1", "port": kiwi_hub.port, "token": "not-the-token"}
        ),
    )
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


def test_manifest_is_valid() -> None:
    """manifest.json passes the schema and hassfest's key order (domain, name, alphabetical)."""
    result = subprocess.run(
        [str(ADDON_PYTHON), "-c", VALIDATE, str(MANIFEST_SCHEMA), str(MANIFEST)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(MANIFEST.read_text())
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["iot_class"] == "local_push"
    assert manifest["config_flow"] is True
    assert manifest["dependencies"] == ["assist_satellite", "conversation"]
    assert manifest["version"] == "0.1.0"


@pytest.mark.parametrize("key", ["documentation", "issue_tracker"])
def test_manifest_links_point_at_the_project(key: str) -> None:
    """Documentation and issue links lead to the project's repository."""
    manifest = json.loads(MANIFEST.read_text())
    assert manifest[key].startswith("https://github.com/kiwi-voice/kiwi")
