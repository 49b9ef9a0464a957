"""The sensitive-action gate against a real Home Assistant: disguised calls do not pass.

Home Assistant (the test harness's, with its HTTP server on 127.0.0.1) has a garage door (a
template cover), a front door lock (a template lock), both in the area "Garage" on the "Ground
floor", labelled "Security" and on a device, plus scripts, a scene and automations that act on
them. Each template entity's actions flip an input_boolean, so an action that ran leaves a trace.

A real kiwi-hub (HA's URL and an admin token) gets every disguise of "open the garage" or "unlock
the door" we could think of: as Claude's tool call (the fake Claude asks for exactly that call),
and as a command for Home Assistant's own agent (POST /api/conversation and POST
/api/homeassistant/command). No approval channel is set up, so a call the gate holds back is not
run, and says why. Two plain calls on a light must still run: the gate is not simply shut.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import floor_registry as fr
from homeassistant.helpers import label_registry as lr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.support.fake_anthropic import FakeAnthropic, ScriptedReply, ToolUse
from tests.support.hub_process import HubProcess
from tests.support.waiting import until_async

pytestmark = pytest.mark.timeout(300)

TOOL = "call_home_assistant_service"
GARAGE = "cover.garage_door"
DOOR = "lock.front_door"
LIGHT = "input_boolean.hall_light"
# What the sensitive entities' actions flip: a change here means an action ran.
TRACES = ("input_boolean.garage_open", "input_boolean.door_unlocked")
SENSITIVE_DOMAINS = {"cover", "lock", "script", "scene", "automation"}
SENSITIVE_ACTIONS = "cover,lock"


def flip(entity: str, on: bool) -> dict[str, Any]:
    return {
        "action": f"input_boolean.turn_{'on' if on else 'off'}",
        "target": {"entity_id": entity},
    }


def home_config(device_id: str) -> dict[str, Any]:
    """Scripts and automations; the device id is the lock's (for device-targeted actions)."""
    scripts = {
        "open_garage": {"alias": "Open garage", "sequence": [
            {"action": "cover.open_cover", "target": {"entity_id": GARAGE}}]},
        "leave_home": {"alias": "Leave home", "sequence": [{"choose": [{
            "conditions": [{"condition": "state", "entity_id": LIGHT, "state": "on"}],
            "sequence": [
                {"action": "script.turn_on", "target": {"entity_id": "script.open_garage"}}],
        }], "default": [flip(LIGHT, True)]}]},
        "unlock_if": {"alias": "Unlock if dark", "sequence": [{
            "if": [{"condition": "state", "entity_id": LIGHT, "state": "off"}],
            "then": [{"action": "lock.unlock", "target": {"device_id": device_id}}],
        }]},
        "parallel_garage": {"alias": "Parallel garage", "sequence": [{"parallel": [
            flip(LIGHT, True),
            {"sequence": [{"action": "homeassistant.turn_on", "target": {"area_id": "garage"}}]},
        ]}]},
        "templated": {"alias": "Templated", "sequence": [
            {"action": "{{ 'cover.open_cover' }}", "target": {"entity_id": GARAGE}}]},
        "scene_shorthand": {"alias": "Scene shorthand",
                            "sequence": [{"scene": "scene.garage_open"}]},
        "labelled": {"alias": "Labelled", "sequence": [
            {"action": "homeassistant.turn_on", "target": {"label_id": "security"}}]},
        "repeat_unlock": {"alias": "Repeat unlock", "sequence": [{"repeat": {
            "count": 1, "sequence": [{"action": "lock.unlock", "data": {"entity_id": DOOR}}]}}]},
    }  # fmt: skip
    automations = [
        {"id": "garage_helper", "alias": "Garage helper",
         "triggers": [{"trigger": "event", "event_type": "kiwi_test_never"}],
         "actions": [{"action": "cover.open_cover", "target": {"entity_id": GARAGE}}]},
        {"id": "let_car_in", "alias": "Let the car in",
         "triggers": [{"trigger": "conversation", "command": ["let the car in"]}],
         "actions": [{"action": "lock.unlock", "target": {"entity_id": DOOR}}]},
    ]  # fmt: skip
    return {"script": scripts, "automation": automations}


@dataclass(frozen=True)
class Row:
    name: str
    call: dict[str, Any] | None = None  # Claude's tool input
    text: str | None = None  # a command for Home Assistant's agent
    runs: bool = False  # a control: it must run


def rows(device_id: str) -> list[Row]:
    def tool(name: str, domain: str, service: str, **fields: Any) -> Row:
        return Row(name, {"domain": domain, "service": service, **fields})

    def say(name: str, text: str) -> Row:  # conversation.process through Claude's tool
        return tool(name, "conversation", "process", data={"text": text})

    return [
        tool("plain cover", "cover", "open_cover", entity_id=GARAGE),
        tool("plain lock", "lock", "unlock", entity_id=DOOR),
        tool("entity id in data", "cover", "open_cover", data={"entity_id": GARAGE}),
        tool("entity id in target", "lock", "unlock", target={"entity_id": [DOOR]}),
        tool("homeassistant.toggle", "homeassistant", "toggle", entity_id=GARAGE),
        tool("homeassistant.turn_on", "homeassistant", "turn_on", entity_id=GARAGE),
        tool("homeassistant.turn_off a lock", "homeassistant", "turn_off", entity_id=DOOR),
        tool("mixed with a light", "homeassistant", "toggle", entity_id=f"{LIGHT},{DOOR}"),
        tool("cover by area", "cover", "open_cover", target={"area_id": "garage"}),
        tool("area in data", "cover", "open_cover", data={"area_id": "garage"}),
        tool("lock by device", "lock", "unlock", target={"device_id": device_id}),
        tool("device in data", "lock", "unlock", data={"device_id": [device_id]}),
        tool("anything in an area", "homeassistant", "turn_on", target={"area_id": "garage"}),
        tool("anything with a label", "homeassistant", "turn_on", target={"label_id": "security"}),
        tool("cover by label", "cover", "open_cover", data={"label_id": "security"}),
        tool("anything on a floor", "homeassistant", "toggle", target={"floor_id": "ground_floor"}),
        tool("every cover", "cover", "open_cover", entity_id="all"),
        tool("script.turn_on", "script", "turn_on", entity_id="script.open_garage"),
        tool("the script's own service", "script", "open_garage"),
        tool("script via homeassistant", "homeassistant", "turn_on",
             entity_id="script.open_garage"),
        tool("script in a choose", "script", "turn_on", entity_id="script.leave_home"),
        tool("script with if/then on a device", "script", "turn_on", entity_id="script.unlock_if"),
        tool("script with parallel by area", "script", "turn_on",
             entity_id="script.parallel_garage"),
        tool("script with a templated action", "script", "turn_on", entity_id="script.templated"),
        tool("script with a scene", "script", "toggle", entity_id="script.scene_shorthand"),
        tool("script by label", "script", "turn_on", entity_id="script.labelled"),
        tool("script with repeat", "script", "turn_on",
             target={"entity_id": "script.repeat_unlock"}),
        tool("scene.turn_on", "scene", "turn_on", entity_id="scene.garage_open"),
        tool("scene via homeassistant", "homeassistant", "turn_on", entity_id="scene.garage_open"),
        tool("scene.apply", "scene", "apply", data={"entities": {GARAGE: "open"}}),
        tool("automation.trigger", "automation", "trigger", entity_id="automation.garage_helper"),
        say("conversation.process", "open the garage door"),
        say("conversation.process unlock", "unlock the front door"),
        say("conversation.process sentence trigger", "let the car in"),
        Row("agent: open the garage door", text="open the garage door"),
        Row("agent: unlock the front door", text="unlock the front door"),
        Row("agent: a script by name", text="turn on open garage"),
        Row("agent: a scene by name", text="activate garage open"),
        Row("agent: a sentence trigger", text="let the car in"),
        # Controls: plain calls on a light pass the gate.
        Row("control: tool on a light", {"domain": "input_boolean", "service": "turn_on",
                                         "entity_id": LIGHT}, runs=True),
        Row("control: agent on a light", text="turn on the hall light", runs=True),
    ]  # fmt: skip


def claude_calls(calls: dict[str, dict[str, Any]]) -> Callable[[dict[str, Any]], ScriptedReply]:
    """The fake Claude: "row N" asks for row N's call; a tool result is echoed back."""

    def reply(request: dict[str, Any]) -> ScriptedReply:
        last = request["messages"][-1]
        if isinstance(last["content"], list):
            results = [b for b in last["content"] if b.get("type") == "tool_result"]
            if results:
                return ScriptedReply(f"TOOL RESULT: {results[0]['content']}")
        text = last["content"] if isinstance(last["content"], str) else ""
        if text in calls:
            return ScriptedReply("", (ToolUse(TOOL, calls[text]),))
        return ScriptedReply("I do not know.")

    return reply


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.start()
    yield fake
    fake.stop()


async def build_home(hass: HomeAssistant) -> str:
    """The home of the module docstring; returns the lock's device id."""
    for component in ("homeassistant", "http", "api", "websocket_api", "config", "conversation"):
        assert await async_setup_component(hass, component, {})
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": {
        "hall_light": {"name": "Hall light"},
        "garage_open": {"name": "Garage open trace"},
        "door_unlocked": {"name": "Door unlocked trace"},
    }})  # fmt: skip
    assert await async_setup_component(hass, "cover", {"cover": [{
        "platform": "template",
        "covers": {"garage_door": {
            "friendly_name": "Garage door",
            "unique_id": "garage_door",
            "value_template": "{{ is_state('input_boolean.garage_open', 'on') }}",
            "open_cover": flip("input_boolean.garage_open", True),
            "close_cover": flip("input_boolean.garage_open", False),
        }},
    }]})  # fmt: skip
    assert await async_setup_component(hass, "lock", {"lock": [{
        "platform": "template",
        "name": "Front door",
        "unique_id": "front_door",
        "value_template": "{{ is_state('input_boolean.door_unlocked', 'off') }}",
        "lock": flip("input_boolean.door_unlocked", False),
        "unlock": flip("input_boolean.door_unlocked", True),
    }]})  # fmt: skip
    await hass.async_block_till_done()
    floor = fr.async_get(hass).async_create("Ground floor")
    area = ar.async_get(hass).async_create("Garage", floor_id=floor.floor_id)
    label = lr.async_get(hass).async_create("Security")
    owner = MockConfigEntry(domain="kiwi_test_devices")
    owner.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=owner.entry_id, identifiers={("kiwi_test", "front_door")}, name="Door lock"
    )
    entities = er.async_get(hass)
    entities.async_update_entity(GARAGE, area_id=area.id, labels={label.label_id})
    entities.async_update_entity(DOOR, device_id=device.id)
    dr.async_get(hass).async_update_device(device.id, area_id=area.id)
    config = home_config(device.id)
    assert await async_setup_component(hass, "script", {"script": config["script"]})
    assert await async_setup_component(hass, "automation", {"automation": config["automation"]})
    assert await async_setup_component(hass, "scene", {"scene": [
        {"name": "Garage open", "entities": {GARAGE: "open"}}]})  # fmt: skip
    await hass.async_block_till_done()
    for exposed in (GARAGE, DOOR, LIGHT, "script.open_garage", "scene.garage_open"):
        async_expose_entity(hass, conversation.DOMAIN, exposed, True)
    return device.id


async def test_no_disguised_call_passes_unapproved(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    start_kiwi_hub: Callable[..., HubProcess],
    hub_session: aiohttp.ClientSession,
    claude: FakeAnthropic,
) -> None:
    device_id = await build_home(hass)
    table = rows(device_id)
    assert len([row for row in table if not row.runs]) >= 30
    calls = {f"row {n}": row.call for n, row in enumerate(table) if row.call is not None}
    claude.reply = claude_calls(calls)
    home_url = str((await hass_client()).make_url("/")).rstrip("/")
    hub = start_kiwi_hub(
        env={
            "KIWI_HA_TOKEN": hass_access_token,
            "KIWI_HA_URL": home_url,
            "ANTHROPIC_API_KEY": claude.api_key,
            "ANTHROPIC_BASE_URL": claude.url,
        }
    )
    service_calls: list[Event] = []
    hass.bus.async_listen("call_service", service_calls.append)

    async def post(
        path: str, body: dict[str, Any], method: str = "POST"
    ) -> tuple[int, dict[str, Any]]:
        async with hub_session.request(
            method, hub.base_url + path, json=body, headers=hub.auth_headers
        ) as answer:
            return answer.status, json.loads(await answer.text())

    # Only domains: a script or scene must be caught by what it does, not by its name.
    status, _ = await post("/api/config", {"sensitive_actions": SENSITIVE_ACTIONS}, "PATCH")
    assert status == 200
    failures: list[str] = []
    for number, row in enumerate(table):
        service_calls.clear()
        text = f"row {number}" if row.call is not None else str(row.text)
        status, answer = await post("/api/conversation", {"text": text, "language": "en"})
        await hass.async_block_till_done()
        reply = str(answer.get("response", answer))
        ran = sorted(
            f"{e.data['domain']}.{e.data['service']}"
            for e in service_calls
            if e.data["domain"] in SENSITIVE_DOMAINS or e.data["domain"] == "input_boolean"
        )
        traces = [t for t in TRACES if hass.states.get(t).state != "off"]
        if row.runs:
            if status != 200 or not ran or "Not done" in reply:
                failures.append(f"{row.name}: should run; got {status} {reply!r}, ran {ran}")
            continue
        held = (
            "needs the owner's approval" in reply
            if row.call is not None
            else answer.get("route") == "refusal"
        )
        if traces or any(name.split(".")[0] in SENSITIVE_DOMAINS for name in ran) or not held:
            failures.append(f"{row.name}: passed ({status} {reply!r}; ran {ran}; traces {traces})")
        for trace in traces:  # put the home back for the next row
            await hass.services.async_call("input_boolean", "turn_off", {"entity_id": trace})
        if LIGHT in (e.data.get("service_data", {}).get("entity_id") for e in service_calls):
            await hass.services.async_call("input_boolean", "turn_off", {"entity_id": LIGHT})
    # The REST route to HA's agent is guarded too.
    status, answer = await post("/api/homeassistant/command", {"text": "open the garage door"})
    if status != 403 or answer["error"]["code"] != "approval_unavailable":
        failures.append(f"/api/homeassistant/command: {status} {answer}")
    assert hass.states.get("input_boolean.garage_open").state == "off"
    assert not failures, "\n".join(failures)


async def test_the_owner_approves_a_command_for_home_assistants_agent(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    start_kiwi_hub: Callable[..., HubProcess],
    hub_session: aiohttp.ClientSession,
) -> None:
    """Held back, the command waits for the owner; approved, Home Assistant carries it out;
    declined, it never reaches Home Assistant."""
    await build_home(hass)
    home_url = str((await hass_client()).make_url("/")).rstrip("/")
    hub = start_kiwi_hub(
        env={
            "KIWI_HA_TOKEN": hass_access_token,
            "KIWI_HA_URL": home_url,
            "KIWI_APPROVALS_VIA_API": "true",
        }
    )

    async def ask(text: str, approve: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        asked = asyncio.create_task(
            hub_session.post(
                hub.base_url + "/api/conversation", json={"text": text}, headers=hub.auth_headers
            )
        )

        async def pending() -> list[dict[str, Any]]:
            async with hub_session.get(
                hub.base_url + "/api/approvals", headers=hub.auth_headers
            ) as answer:
                return list((await answer.json())["approvals"])

        [request] = await until_async(pending, "the approval request")
        async with hub_session.post(
            f"{hub.base_url}/api/approvals/{request['request_id']}",
            json={"approved": approve},
            headers=hub.auth_headers,
        ) as decided:
            assert decided.status == 200
        async with await asyncio.wait_for(asked, 30) as answer:
            return request, await answer.json()

    request, answer = await ask("unlock the front door", approve=False)
    assert request["kind"] == "exec"
    assert "unlock the front door" in request["command"]
    assert (answer["route"], answer["response"]) == ("refusal", "Sorry, the owner declined that.")
    assert hass.states.get("input_boolean.door_unlocked").state == "off"

    request, answer = await ask("open the garage door", approve=True)
    assert "open the garage door" in request["command"]
    assert answer["route"] == "homeassistant"
    await hass.async_block_till_done()
    assert hass.states.get("input_boolean.garage_open").state == "on"
