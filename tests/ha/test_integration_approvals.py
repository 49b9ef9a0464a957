"""kiwi.approve / kiwi.deny answering a real hub's approval request.

Assist asks the Kiwi agent to "unlock the front door". The hub's Home Assistant (the local fake
of tests/support/fake_homeassistant.py, which records service calls) does not understand it, so
the hub asks Claude (the local fake Anthropic server), which wants to call `lock.unlock`: a
sensitive action. Without Telegram, `approvals_via_api` makes the hub wait for the owner's
answer through its REST API, which is what the integration's actions call.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from homeassistant.components import conversation
from homeassistant.const import Platform
from homeassistant.core import Context, Event, HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.kiwi.const import DOMAIN, KIWI_EVENT
from tests.ha.kiwi_common import entry_for, wait_for
from tests.support.fake_anthropic import ScriptedReply, ToolUse, echo_reply
from tests.support.pipeline_stack import PipelineStack, stack_fixture

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

AGENT = "conversation.kiwi"
EVENTS = "event.kiwi_voice_events"
COMMAND = "unlock the front door"
UNLOCK = ToolUse(
    "call_home_assistant_service",
    {"domain": "lock", "service": "unlock", "entity_id": "lock.front_door"},
)


def claude_unlocks(request: dict[str, Any]) -> ScriptedReply:
    """Asks for `lock.unlock` when told to unlock; reports the tool's result when it comes."""
    last = request["messages"][-1]
    if isinstance(last["content"], list):
        results = [b for b in last["content"] if b.get("type") == "tool_result"]
        if results:
            return ScriptedReply(f"Tool said: {results[0]['content']}")
    if isinstance(last["content"], str) and COMMAND in last["content"]:
        return ScriptedReply("One moment.", (UNLOCK,))
    return echo_reply(request)


# A dedicated hub that asks for approvals over its API, with its fake Claude and Home Assistant.
approval_hub = stack_fixture(
    name="approval_hub",
    scope="function",
    requires=("socket_enabled",),
    claude_reply=claude_unlocks,
    env={
        "KIWI_APPROVALS_VIA_API": "true",
        # The typed turn has no voice: an unknown speaker may give commands.
        "KIWI_UNKNOWN_SPEAKER_POLICY": "allow",
        "KIWI_TELEGRAM_BOT_TOKEN": "",
    },
)


@pytest.fixture
def platforms() -> list[Platform]:
    """The agent that starts the turn and the entity that reports the request."""
    return [Platform.CONVERSATION, Platform.EVENT]


@pytest.fixture
def mock_config_entry(approval_hub: PipelineStack) -> MockConfigEntry:
    """`init_integration` sets the integration up against this test's hub."""
    return entry_for(approval_hub.hub)


def of_type(events: list[Event], event_type: str) -> list[dict[str, Any]]:
    """The data of the captured kiwi_event events of one hub event type."""
    return [dict(e.data["data"]) for e in events if e.data["type"] == event_type]


async def unlock_until_asked(
    hass: HomeAssistant, events: list[Event]
) -> tuple[asyncio.Task[conversation.ConversationResult], str]:
    """Ask the Kiwi agent to unlock; once the hub asks the owner: the running turn, request id."""
    turn = asyncio.create_task(
        conversation.async_converse(hass, COMMAND, None, Context(), language="en", agent_id=AGENT)
    )
    await wait_for(
        hass,
        lambda: bool(of_type(events, "EXEC_APPROVAL_REQUESTED")) or turn.done(),
        "the hub never asked to approve the unlock",
    )
    [requested] = of_type(events, "EXEC_APPROVAL_REQUESTED")
    assert requested["command"] == "lock.unlock lock.front_door"
    request_id = str(requested["request_id"])
    # The event entity reports the same request, so automations can answer it.
    state = hass.states.get(EVENTS)
    assert state is not None
    assert state.attributes["event_type"] == "exec_approval_requested"
    assert state.attributes["request_id"] == request_id
    return turn, request_id


async def resolved(hass: HomeAssistant, events: list[Event]) -> dict[str, Any]:
    """The EXEC_APPROVAL_RESOLVED event's data, once it arrived."""
    await wait_for(
        hass,
        lambda: bool(of_type(events, "EXEC_APPROVAL_RESOLVED")),
        "the hub never reported the decision",
    )
    [decision] = of_type(events, "EXEC_APPROVAL_RESOLVED")
    return decision


async def test_approve_runs_the_sensitive_action(
    hass: HomeAssistant, approval_hub: PipelineStack, init_integration: MockConfigEntry
) -> None:
    """kiwi.approve with the request's id: the hub unlocks, and Claude hears it was done."""
    events = async_capture_events(hass, KIWI_EVENT)
    turn, request_id = await unlock_until_asked(hass, events)
    assert approval_hub.homeassistant.service_calls == []  # nothing runs before the owner's yes

    await hass.services.async_call(
        DOMAIN,
        "approve",
        {"config_entry_id": init_integration.entry_id, "request_id": request_id},
        blocking=True,
    )

    assert await resolved(hass, events) == {
        "approved": True,
        "request_id": request_id,
        "decided_by": "api",
    }
    result = await asyncio.wait_for(turn, 30)
    assert result.response.speech["plain"]["speech"] == (
        "One moment. Tool said: Done: lock.unlock lock.front_door."
    )
    assert approval_hub.homeassistant.service_calls == [
        {"domain": "lock", "service": "unlock", "data": {"entity_id": ["lock.front_door"]}}
    ]


async def test_deny_leaves_the_lock_alone(
    hass: HomeAssistant, approval_hub: PipelineStack, init_integration: MockConfigEntry
) -> None:
    """kiwi.deny with the request's id: nothing runs, and Claude hears the owner declined."""
    events = async_capture_events(hass, KIWI_EVENT)
    turn, request_id = await unlock_until_asked(hass, events)

    await hass.services.async_call(
        DOMAIN,
        "deny",
        {"config_entry_id": init_integration.entry_id, "request_id": request_id},
        blocking=True,
    )

    decision = await resolved(hass, events)
    assert (decision["approved"], decision["request_id"]) == (False, request_id)
    assert decision["decided_by"] == "api"
    result = await asyncio.wait_for(turn, 30)
    assert result.response.speech["plain"]["speech"].endswith(
        "Tool said: Not done: the owner declined lock.unlock lock.front_door."
    )
    assert approval_hub.homeassistant.service_calls == []
    assert approval_hub.claude.last_request()["messages"][-1]["content"][0]["is_error"] is True
