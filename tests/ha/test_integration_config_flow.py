"""Config flows against real hubs: user, Supervisor discovery, reauth, reconfigure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from unittest.mock import patch

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kiwi.const import DOMAIN
from tests.support.hub_process import HubProcess
from tests.support.ports import free_port

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

ADDON_UUID = "6f0c0b2a6d3f4c55b9a1c0ffee000001"


def instance_id(hub: HubProcess) -> str:
    """The hub's identity (made on its first start, kept in its data dir)."""
    return (hub.data_dir / "instance_id").read_text(encoding="utf-8").strip()


@pytest.fixture(autouse=True)
async def flows_only(hass: HomeAssistant) -> AsyncIterator[None]:
    """Flows are tested on their own: entries they create or change are not set up here."""
    assert await async_setup_component(hass, "homeassistant", {})
    with patch("custom_components.kiwi.async_setup_entry", return_value=True):
        yield


def discovery(hub: HubProcess, **config: object) -> HassioServiceInfo:
    """What the Supervisor hands over when the Kiwi add-on announces its hub."""
    payload = {"host": "127.0.0.1", "port": hub.port, "token": hub.token, **config}
    return HassioServiceInfo(config=payload, name="Kiwi", slug="local_kiwi", uuid=ADDON_UUID)


def connection(hub: HubProcess, **overrides: object) -> dict[str, object]:
    """The user step's input for `hub`."""
    return {CONF_HOST: "127.0.0.1", CONF_PORT: hub.port, CONF_TOKEN: hub.token, **overrides}


@pytest.fixture
async def not_kiwi(socket_enabled: None) -> AsyncIterator[int]:
    """A web server that is not a Kiwi hub (every path is 404); its port."""
    async with TestServer(web.Application(), host="127.0.0.1") as server:
        yield server.port


async def test_user_flow(hass: HomeAssistant, kiwi_hub: HubProcess) -> None:
    """Address and token are tried, then the entry is created."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], connection(kiwi_hub))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Kiwi"
    assert result["data"] == connection(kiwi_hub)
    assert result["result"].unique_id == instance_id(kiwi_hub)


async def test_user_flow_errors_then_success(
    hass: HomeAssistant, kiwi_hub: HubProcess, not_kiwi: int
) -> None:
    """Each failure shows its error on the form; fixing the input creates the entry."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    flow_id = result["flow_id"]
    cases = [
        (connection(kiwi_hub, port=free_port()), "cannot_connect"),
        (connection(kiwi_hub, token="wrong"), "invalid_auth"),
        (connection(kiwi_hub, port=not_kiwi), "not_kiwi"),
    ]
    for user_input, error in cases:
        result = await hass.config_entries.flow.async_configure(flow_id, user_input)
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": error}

    with patch(
        "custom_components.kiwi.config_flow.KiwiClient.health", side_effect=RuntimeError("boom")
    ):
        result = await hass.config_entries.flow.async_configure(flow_id, connection(kiwi_hub))
    assert result["errors"] == {"base": "unknown"}

    result = await hass.config_entries.flow.async_configure(flow_id, connection(kiwi_hub))
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("known_as", ["instance id", "address (before instance ids)"])
async def test_user_flow_one_entry_per_hub(
    hass: HomeAssistant, kiwi_hub: HubProcess, known_as: str
) -> None:
    """The same hub twice is refused, however its entry knows it."""
    unique_id = instance_id(kiwi_hub) if known_as == "instance id" else f"127.0.0.1:{kiwi_hub.port}"
    MockConfigEntry(domain=DOMAIN, unique_id=unique_id, data=connection(kiwi_hub)).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], connection(kiwi_hub))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("announced", [True, False], ids=["id announced", "id asked"])
async def test_hassio_discovery(hass: HomeAssistant, kiwi_hub: HubProcess, announced: bool) -> None:
    """The add-on's announcement, confirmed by the user, creates the entry; its unique id is
    the hub's instance id (announced by the add-on, or asked from the hub)."""
    extra = {"instance_id": instance_id(kiwi_hub)} if announced else {}
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery(kiwi_hub, **extra)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {"addon": "Kiwi"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == connection(kiwi_hub)
    assert result["result"].unique_id == instance_id(kiwi_hub)


async def test_hassio_discovery_of_a_hub_that_cannot_say_who_it_is(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """The hub does not answer /api/health yet: the discovery's id serves until set-up."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery(kiwi_hub, port=free_port())
    )
    assert result["step_id"] == "hassio_confirm"
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["unique_id"] == ADDON_UUID


async def test_hassio_discovery_hub_not_answering(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """The add-on's hub does not answer yet: the confirm form says so and can be retried."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery(kiwi_hub, token="stale")
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}


async def test_hassio_discovery_incomplete(hass: HomeAssistant, kiwi_hub: HubProcess) -> None:
    """An announcement without a token is refused."""
    info = discovery(kiwi_hub)
    del info.config["token"]
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery_info"


async def test_hassio_discovery_updates_its_entry(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """The add-on announces again with a new port and token: its entry is updated."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=instance_id(kiwi_hub),
        source=SOURCE_HASSIO,
        data={CONF_HOST: "127.0.0.1", CONF_PORT: 1, CONF_TOKEN: "old"},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery(kiwi_hub)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == connection(kiwi_hub)


async def test_hassio_discovery_of_an_entry_from_before_instance_ids(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """The add-on's entry still known by its discovery id takes the hub's instance id."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ADDON_UUID,
        source=SOURCE_HASSIO,
        data={CONF_HOST: "127.0.0.1", CONF_PORT: 1, CONF_TOKEN: "old"},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery(kiwi_hub)
    )
    assert result["type"] is FlowResultType.ABORT
    assert entry.unique_id == instance_id(kiwi_hub)
    assert entry.data == connection(kiwi_hub)


async def test_hassio_discovery_adopts_a_hand_made_entry(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """A hub added by hand and then announced by the add-on stays one entry."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"127.0.0.1:{kiwi_hub.port}",
        data=connection(kiwi_hub, token="old"),
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery(kiwi_hub)
    )
    assert result["type"] is FlowResultType.ABORT
    assert entry.unique_id == instance_id(kiwi_hub)
    assert entry.data[CONF_TOKEN] == kiwi_hub.token
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_reauth(hass: HomeAssistant, kiwi_hub: HubProcess) -> None:
    """A refused token: the flow asks for the new one, tries it, and updates the entry."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"127.0.0.1:{kiwi_hub.port}",
        data=connection(kiwi_hub, token="old"),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: kiwi_hub.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_TOKEN] == kiwi_hub.token


async def test_reconfigure_to_another_address(
    hass: HomeAssistant, kiwi_hub: HubProcess, start_kiwi_hub: Callable[..., HubProcess]
) -> None:
    """The hub moved (an entry from before instance ids): the new address is tried, then the
    entry follows it and takes the hub's instance id."""
    moved = start_kiwi_hub()
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=f"127.0.0.1:{kiwi_hub.port}", data=connection(kiwi_hub)
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], connection(moved, token="wrong")
    )
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], connection(moved))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == connection(moved)
    assert entry.unique_id == instance_id(moved)


async def test_reconfigure_finds_the_same_hub_or_refuses_another(
    hass: HomeAssistant, kiwi_hub: HubProcess, start_kiwi_hub: Callable[..., HubProcess]
) -> None:
    """An entry that knows its hub's identity follows that hub (a new port, a new token), and
    refuses to become another hub."""
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=instance_id(kiwi_hub), data=connection(kiwi_hub, port=1)
    )
    entry.add_to_hass(hass)
    other = start_kiwi_hub()
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], connection(other))
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "wrong_hub")
    assert entry.data[CONF_PORT] == 1

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], connection(kiwi_hub))
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == connection(kiwi_hub)


async def test_reconfigure_onto_another_entrys_hub(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """Reconfiguring onto a hub another entry has is refused."""
    MockConfigEntry(
        domain=DOMAIN, unique_id=instance_id(kiwi_hub), data=connection(kiwi_hub)
    ).add_to_hass(hass)
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="127.0.0.1:1", data=connection(kiwi_hub, port=1)
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], connection(kiwi_hub))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure_gives_an_addon_entry_the_hub_identity(
    hass: HomeAssistant, kiwi_hub: HubProcess
) -> None:
    """An add-on entry from before instance ids takes the hub's when its address changes."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=ADDON_UUID,
        source=SOURCE_HASSIO,
        data=connection(kiwi_hub, port=1),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], connection(kiwi_hub))
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == instance_id(kiwi_hub)
    assert entry.data[CONF_PORT] == kiwi_hub.port
