"""The approval registry, the owner's gate and the sensitive-action checks, on a real kiwi.db
and event bus (no network: Telegram and Home Assistant are covered by the other approval tests)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiwi_voice.hub.approvals.followup import ApprovedWork
from kiwi_voice.hub.approvals.gate import OwnerApprovalGate
from kiwi_voice.hub.approvals.ha_actions import (
    HomeAssistantActions,
    InvalidServiceCall,
    service_call,
)
from kiwi_voice.hub.approvals.home_guard import HomeGuard
from kiwi_voice.hub.approvals.home_state import HomeStateReader
from kiwi_voice.hub.approvals.model import REQUEST_ID_PATTERN, Approval, ServiceCall, new_request_id
from kiwi_voice.hub.approvals.registry import (
    KEEP_DECIDED_SECONDS,
    AlreadyResolved,
    ApprovalRegistry,
    UnknownApproval,
)
from kiwi_voice.hub.approvals.sensitivity import judge
from kiwi_voice.hub.approvals.targets import Resolution, TargetResolver, Touch
from kiwi_voice.hub.approvals.tools import TOOL_NAME, HomeAssistantTools
from kiwi_voice.hub.events import EventBus, PublishedEvent
from kiwi_voice.hub.homeassistant import HomeAssistantClient
from kiwi_voice.hub.pipeline.policy import Speaker
from kiwi_voice.hub.settings import DEFAULTS, SettingsStore
from kiwi_voice.hub.store import Store
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(20)
GUEST = Speaker(id="spk_0000beef", name="Bob", priority=2, confidence=0.9)
OWNER = Speaker(id="spk_0000cafe", name="Olivia", priority=0, confidence=0.9)


@dataclass
class World:
    store: Store
    bus: EventBus
    settings: SettingsStore
    registry: ApprovalRegistry
    events: list[PublishedEvent] = field(default_factory=list)
    decisions: list[tuple[Approval, bool]] = field(default_factory=list)
    telegram: bool = False

    def payloads(self, name: str) -> list[dict[str, Any]]:
        return [dict(e.data) for e in self.events if e.event == name]

    def gate(self) -> OwnerApprovalGate:
        actions = HomeAssistantActions(HomeAssistantClient(self.settings, None, in_addon=False))
        return OwnerApprovalGate(
            registry=self.registry,
            settings=self.settings,
            work=ApprovedWork(actions, self.bus),
            telegram_configured=lambda: self.telegram,
        )


def open_world(path: Path, clock: Any = None) -> World:
    store = Store(path)
    bus = EventBus(store)
    registry = ApprovalRegistry(store, bus, clock) if clock else ApprovalRegistry(store, bus)
    world = World(store, bus, SettingsStore(store, DEFAULTS), registry)
    bus.listen(world.events.append)
    registry.on_resolved(lambda approval, waited: world.decisions.append((approval, waited)))
    registry.restore()
    return world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    opened = open_world(tmp_path / "kiwi.db")
    yield opened
    opened.registry.close()
    opened.store.close()


def test_request_ids_are_unique_and_not_timestamps() -> None:
    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(REQUEST_ID_PATTERN, request_id) for request_id in ids)


async def test_a_request_is_published_stored_and_decided_once(tmp_path: Path) -> None:
    world = open_world(tmp_path / "kiwi.db")
    approval = world.registry.open(
        kind="voice", command="open the door", timeout_seconds=60, speaker="Bob"
    )
    assert world.registry.pending() == [approval]
    decided = world.registry.resolve(approval.request_id, approved=False, by="api")
    assert (decided.status, decided.decided_by) == ("denied", "api")
    with pytest.raises(AlreadyResolved) as second:
        world.registry.resolve(approval.request_id, approved=True, by="telegram")
    assert second.value.approval.status == "denied"
    with pytest.raises(UnknownApproval):
        world.registry.resolve("apr_0000000000000000", approved=True, by="api")
    assert world.payloads("APPROVAL_REQUESTED") == [
        {
            "speaker": "Bob",
            "command": "open the door",
            "request_id": approval.request_id,
            "timeout_seconds": 60.0,
        }
    ]
    assert len(world.payloads("APPROVAL_RESOLVED")) == 1
    world.registry.close()
    world.store.close()

    # The decision is on disk: after a restart a late answer is "already resolved".
    again = open_world(tmp_path / "kiwi.db")
    try:
        assert again.registry.pending() == []
        assert again.registry.get(approval.request_id) == decided
        with pytest.raises(AlreadyResolved):
            again.registry.resolve(approval.request_id, approved=True, by="api")
    finally:
        again.registry.close()
        again.store.close()


async def test_who_waits_decides_who_carries_the_request_out(world: World) -> None:
    waited_for = world.registry.open(kind="voice", command="a", timeout_seconds=60)
    abandoned = world.registry.open(kind="voice", command="b", timeout_seconds=60)
    waiter = asyncio.create_task(world.registry.wait(waited_for.request_id))
    gone = asyncio.create_task(world.registry.wait(abandoned.request_id))
    await asyncio.sleep(0)  # one turn of the loop: both tasks start waiting
    gone.cancel()  # e.g. a barge-in interrupted the turn that asked
    await asyncio.gather(gone, return_exceptions=True)
    assert [a.request_id for a in world.registry.pending()] == [
        waited_for.request_id,
        abandoned.request_id,
    ]

    world.registry.resolve(waited_for.request_id, approved=True, by="telegram")
    world.registry.resolve(abandoned.request_id, approved=True, by="telegram")
    assert (await waiter).approved
    assert [(a.request_id, waited) for a, waited in world.decisions] == [
        (waited_for.request_id, True),
        (abandoned.request_id, False),
    ]


async def test_decided_requests_are_forgotten_after_a_day(tmp_path: Path) -> None:
    now = [1_000_000.0]
    first = open_world(tmp_path / "kiwi.db", clock=lambda: now[0])
    approval = first.registry.open(kind="exec", command="lock.unlock", timeout_seconds=60)
    first.registry.resolve(approval.request_id, approved=True, by="api")
    now[0] += KEEP_DECIDED_SECONDS / 2
    recent = first.registry.open(kind="exec", command="lock.lock", timeout_seconds=60)
    first.registry.resolve(recent.request_id, approved=False, by="api")
    now[0] += KEEP_DECIDED_SECONDS / 2 + 1
    # A long-running hub forgets too: the next request clears what is over a day old.
    first.registry.open(kind="exec", command="lock.open", timeout_seconds=60)
    assert first.registry.get(approval.request_id) is None
    assert first.registry.get(recent.request_id) is not None
    first.registry.close()
    first.store.close()

    now[0] += KEEP_DECIDED_SECONDS
    later = open_world(tmp_path / "kiwi.db", clock=lambda: now[0])
    try:
        assert later.registry.get(recent.request_id) is None
        stored = later.store.read_namespace("approvals")
        assert [raw["command"] for raw in stored.values()] == ["lock.open"]
    finally:
        later.registry.close()
        later.store.close()


async def test_without_a_channel_to_the_owner_guests_are_refused_at_once(world: World) -> None:
    result = await world.gate().request(GUEST, "turn on the heating", "en")
    assert result.approved is False
    assert result.answer is not None
    assert result.answer.startswith("Sorry Bob, that needs the owner's approval")
    assert "Telegram" in result.answer
    assert world.payloads("APPROVAL_REQUESTED") == []
    assert world.registry.pending() == []


async def test_approvals_via_api_wait_for_home_assistant_or_the_dashboard(world: World) -> None:
    world.settings.update({"approvals_via_api": True})
    gate = world.gate()
    asked = asyncio.create_task(gate.request(GUEST, "turn on the heating", "en"))
    requested = await until(lambda: world.payloads("APPROVAL_REQUESTED"), "APPROVAL_REQUESTED")
    world.registry.resolve(requested[0]["request_id"], approved=False, by="api")
    result = await asyncio.wait_for(asked, 5)
    assert (result.approved, result.answer) == (False, "Sorry Bob, the owner declined that.")

    world.settings.update({"approval_timeout_seconds": 0.2})
    expired = await asyncio.wait_for(gate.request(GUEST, "open the garage", "en"), 5)
    assert expired.answer == "Sorry Bob, the owner did not answer in time, so I did not do that."


async def test_only_the_identified_owner_answers_by_voice(world: World) -> None:
    world.telegram = True
    gate = world.gate()
    assert await gate.answer_by_voice(OWNER, "yes") is None  # nothing pending: just talk
    asked = asyncio.create_task(gate.request(GUEST, "turn on the heating", "en"))
    await until(world.registry.pending, "a pending request")

    typed_owner = Speaker.client("dashboard")
    echo = Speaker(id="self", name="Kiwi", priority=0, confidence=0.99, is_self=True)
    for speaker in (GUEST, typed_owner, echo):
        assert await gate.answer_by_voice(speaker, "yes") is None
    assert await gate.answer_by_voice(OWNER, "yes, and turn on the lights") is None
    assert world.registry.pending() != []

    answer = await gate.answer_by_voice(OWNER, "Yes, go ahead.")
    assert answer == "Okay, approved: turn on the heating."  # the waiting turn runs it
    assert (await asyncio.wait_for(asked, 5)).approved
    assert world.payloads("APPROVAL_RESOLVED")[-1]["decided_by"] == "voice"


async def test_the_owner_can_say_no(world: World) -> None:
    world.telegram = True
    gate = world.gate()
    asked = asyncio.create_task(gate.request(GUEST, "unlock the door", "en"))
    await until(world.registry.pending, "a pending request")
    assert await gate.answer_by_voice(OWNER, "No, I do not approve that.") == (
        "Okay, I declined: unlock the door."
    )
    assert (await asyncio.wait_for(asked, 5)).approved is False


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"domain": "../api", "service": "x"}, "domain"),
        ({"domain": "light", "service": "turn on"}, "service"),
        ({"domain": "light", "service": "turn_on", "entity_id": "kitchen"}, "entity_id"),
        ({"domain": "light", "service": "turn_on", "entity_id": 7}, "entity_id"),
        ({"domain": "light", "service": "turn_on", "data": ["x"]}, "data"),
        ({"domain": "lock", "service": "unlock", "data": {"area_id": "../x"}}, "area_id"),
        ({"domain": "lock", "service": "unlock", "target": {"room": "x"}}, "target"),
        ({"domain": "lock", "service": "unlock", "target": {"label_id": 3}}, "target.label_id"),
    ],
)
def test_tool_arguments_are_checked_before_they_reach_a_url(
    arguments: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidServiceCall, match=f"^{problem}:"):
        service_call(
            arguments.get("domain"),
            arguments.get("service"),
            arguments.get("entity_id"),
            arguments.get("data"),
            arguments.get("target"),
        )


def test_targets_count_wherever_they_are_written() -> None:
    call = service_call(
        "homeassistant",
        "toggle",
        "cover.gate",
        {"entity_id": ["lock.door"], "area_id": "garage", "brightness": 3},
        {"label_id": ["security"], "area_id": ["garage"]},
    )
    assert call.entity_ids == ("cover.gate", "lock.door")
    assert call.target == {"area_id": ("garage",), "label_id": ("security",)}
    assert call.data == {"brightness": 3}
    assert ServiceCall.from_json(call.to_json()) == call


def touched(call: ServiceCall) -> Resolution:
    """What the call touches when its entity ids are all it names (no registries needed)."""
    return Resolution(touches=[Touch(e, call.name) for e in call.entity_ids], services=[call.name])


@pytest.mark.parametrize(
    ("domain", "service", "entity", "sensitive"),
    [
        ("lock", "unlock", "lock.front_door", True),
        ("alarm_control_panel", "alarm_disarm", "alarm_control_panel.home", True),
        ("cover", "open_cover", "cover.garage_door", True),
        ("switch", "turn_on", "switch.garage_opener", True),  # *garage*
        ("light", "turn_on", "light.kitchen", False),
        ("media_player", "media_pause", "media_player.tv", False),
    ],
)
def test_default_sensitive_actions(domain: str, service: str, entity: str, sensitive: bool) -> None:
    call = service_call(domain, service, entity)
    assert judge(touched(call), str(DEFAULTS["sensitive_actions"])).sensitive is sensitive


def test_sensitive_actions_match_domains_services_and_entities() -> None:
    call = service_call("light", "turn_off", "light.nursery, light.hall")
    assert call.entity_ids == ("light.nursery", "light.hall")
    assert judge(touched(call), "light.turn_off").sensitive
    assert judge(touched(call), "lock, light.nursery").sensitive
    assert not judge(touched(call), "light.turn_on, switch").sensitive
    assert not judge(touched(call), "").sensitive
    # The entity's domain counts whatever service reaches it (homeassistant.toggle on a cover).
    toggled = service_call("homeassistant", "toggle", "cover.front_gate")
    resolution = Resolution([Touch("cover.front_gate", "cover.toggle")], ["homeassistant.toggle"])
    assert judge(resolution, "cover").sensitive
    assert not judge(touched(toggled), "lock").sensitive
    # What cannot be followed is the owner's to decide.
    assert judge(Resolution(unknown=["a templated target"]), "lock").sensitive


async def test_sensitive_tool_call_without_a_channel_is_not_run(world: World) -> None:
    home = HomeAssistantClient(world.settings, "token", in_addon=False)
    world.settings.update({"homeassistant_url": "http://127.0.0.1:9"})  # never reached
    guard = HomeGuard(
        resolver=TargetResolver(home, HomeStateReader(home)),
        gate=world.gate(),
        settings=world.settings,
        registry=world.registry,
    )
    tools = HomeAssistantTools(HomeAssistantActions(home), guard)
    assert [d["name"] for d in tools.definitions()] == [TOOL_NAME]
    arguments = {"domain": "lock", "service": "unlock", "entity_id": "lock.front_door"}
    outcome = await tools.run(TOOL_NAME, arguments)
    assert outcome.is_error
    # Home Assistant cannot be reached: the call is not run, and nobody is asked about it.
    assert outcome.text.startswith("Not done: Home Assistant cannot be reached")
    assert (await tools.run("delete_everything", {})).is_error
    assert (await tools.run(TOOL_NAME, {"domain": "lock"})).is_error
    assert world.payloads("EXEC_APPROVAL_REQUESTED") == []
    await home.close()
