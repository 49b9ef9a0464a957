"""Sensitive Home Assistant actions (EXEC_APPROVAL_*) end to end, in a real kiwi-hub process.

Claude is the local Anthropic server (tests/support/fake_anthropic.py): asked to "unlock the
front door" it answers with a `call_home_assistant_service` tool_use. The hub asks the owner —
Telegram (the local Bot API server, driven by the real python-telegram-bot inside the hub),
GET/POST /api/approvals (Home Assistant's kiwi.approve, the dashboard) — runs the action on the
local Home Assistant only when approved, and sends Claude the tool result. Every REST answer
and event frame is checked against the OpenAPI document the hub serves.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.support.fake_anthropic import ScriptedReply, ToolUse, echo_reply
from tests.support.fake_telegram import FakeTelegram
from tests.support.hub_openapi import Answer, CheckedClient, OpenApiContract
from tests.support.hub_process import HubProcess, restart_hub
from tests.support.pipeline_stack import PipelineStack, stack_fixture
from tests.support.waiting import until, until_async

pytestmark = pytest.mark.timeout(60)
OWNER = 777_001
UNLOCK = ToolUse(
    "call_home_assistant_service",
    {"domain": "lock", "service": "unlock", "entity_id": "lock.front_door"},
)
BRIGHTEN = ToolUse(
    "call_home_assistant_service",
    {
        "domain": "light",
        "service": "turn_on",
        "entity_id": "light.kitchen",
        "data": {"brightness_pct": 80},
    },
)


def claude_with_tools(request: dict[str, Any]) -> ScriptedReply:
    """Calls the tool for the two commands below; reports the tool's result when it comes."""
    last = request["messages"][-1]
    if isinstance(last["content"], list):
        results = [b for b in last["content"] if b.get("type") == "tool_result"]
        if results:
            return ScriptedReply(f"Tool said: {results[0]['content']}")
    text = last["content"] if isinstance(last["content"], str) else ""
    if "unlock the front door" in text:
        return ScriptedReply("One moment.", (UNLOCK,))
    if "brighten the kitchen" in text:
        return ScriptedReply("", (BRIGHTEN,))
    return echo_reply(request)


def telegram_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The hub asks the owner over the module's fake Telegram."""
    telegram: FakeTelegram = request.getfixturevalue("telegram")
    return {
        "KIWI_TELEGRAM_BOT_TOKEN": telegram.token,
        "KIWI_TELEGRAM_CHAT_ID": str(OWNER),
        "KIWI_TELEGRAM_API_URL": telegram.url,
        "KIWI_TELEGRAM_POLL_TIMEOUT": "1",
    }


stack = stack_fixture(env=telegram_env, claude_reply=claude_with_tools)


async def event_seq(client: CheckedClient) -> int:
    return int((await client.call("GET", "/api/status")).body["event_seq"])


async def events_until(client: CheckedClient, since: int, event: str) -> list[dict[str, Any]]:
    socket = await client.events(since=since)
    try:
        assert (await socket.next())["event"] == "hello"
        return await socket.until(event, timeout_s=20)
    finally:
        await socket.close()


def ask(client: CheckedClient, text: str) -> asyncio.Task[Answer]:
    return asyncio.create_task(client.call("POST", "/api/conversation", json={"text": text}))


async def pending_one(client: CheckedClient) -> dict[str, Any]:
    async def listed() -> list[dict[str, Any]]:
        return list((await client.call("GET", "/api/approvals")).body["approvals"])

    found = await until_async(listed, "an approval request in GET /api/approvals")
    assert len(found) == 1
    return dict(found[0])


async def prompt_of(telegram: FakeTelegram, request_id: str) -> dict[str, Any]:
    found = await telegram.until(
        lambda fake: [m for m in fake.sent if request_id in m["text"]], timeout_s=15
    )
    return found[0]


def button(message: dict[str, Any], label: str) -> str:
    row = message["reply_markup"]["inline_keyboard"][0]
    return next(b["callback_data"] for b in row if b["text"] == label)


async def test_sensitive_action_runs_once_the_owner_approves_on_telegram(
    stack: PipelineStack, client: CheckedClient, telegram: FakeTelegram
) -> None:
    assert stack.homeassistant is not None
    assert stack.claude is not None
    seq = await event_seq(client)
    answer = ask(client, "unlock the front door")
    pending = await pending_one(client)
    assert pending["kind"] == "exec"
    assert pending["command"] == "lock.unlock lock.front_door"
    assert pending["speaker"] is None
    assert stack.homeassistant.service_calls == []  # nothing runs before the owner says yes

    message = await prompt_of(telegram, pending["request_id"])
    assert message["chat"]["id"] == OWNER
    telegram.press(button(message, "✅ Approve"), chat_id=OWNER, user_id=OWNER, message=message)
    reply = await asyncio.wait_for(answer, 20)

    assert reply.status == 200
    assert reply.body["route"] == "claude"
    assert reply.body["response"] == "One moment. Tool said: Done: lock.unlock lock.front_door."
    assert stack.homeassistant.service_calls[-1] == {
        "domain": "lock",
        "service": "unlock",
        "data": {"entity_id": ["lock.front_door"]},
    }
    tool_result = stack.claude.last_request()["messages"][-1]["content"][0]
    assert tool_result["tool_use_id"] == UNLOCK.id
    assert tool_result["is_error"] is False
    frames = await events_until(client, seq, "EXEC_APPROVAL_RESOLVED")
    requested = next(f["data"] for f in frames if f["event"] == "EXEC_APPROVAL_REQUESTED")
    assert requested["command"] == "lock.unlock lock.front_door"
    assert requested["request_id"] == pending["request_id"]
    assert frames[-1]["data"] == {
        "approved": True,
        "request_id": pending["request_id"],
        "decided_by": "telegram",
    }
    assert (await client.call("GET", "/api/approvals")).body == {"approvals": []}


async def test_owner_denies_through_the_rest_endpoint(
    stack: PipelineStack, client: CheckedClient, telegram: FakeTelegram
) -> None:
    assert stack.homeassistant is not None
    calls_before = len(stack.homeassistant.service_calls)
    answer = ask(client, "unlock the front door")
    pending = await pending_one(client)
    message = await prompt_of(telegram, pending["request_id"])

    path = f"/api/approvals/{pending['request_id']}"
    denied = await client.call("POST", path, json={"approved": False})
    assert (denied.status, denied.body) == (
        200,
        {"request_id": pending["request_id"], "approved": False, "status": "denied"},
    )
    again = await client.call("POST", path, json={"approved": True})
    assert again.status == 409
    assert again.body["error"]["code"] == "approval_already_resolved"
    unknown = await client.call(
        "POST", "/api/approvals/apr_00000000deadbeef", json={"approved": True}
    )
    assert unknown.status == 404
    assert unknown.body["error"]["code"] == "approval_not_found"
    bad = await client.call("POST", path, json={"approved": "yes"})
    assert bad.status == 400

    reply = await asyncio.wait_for(answer, 20)
    assert reply.body["response"].endswith(
        "Tool said: Not done: the owner declined lock.unlock lock.front_door."
    )
    assert len(stack.homeassistant.service_calls) == calls_before
    key = (OWNER, message["message_id"])
    edited = await telegram.until(
        lambda fake: fake.messages[key].get("edit_date") and fake.messages[key]
    )
    assert "❌ Denied (via api)" in edited["text"]


async def test_ordinary_actions_run_without_asking(
    stack: PipelineStack, client: CheckedClient, telegram: FakeTelegram
) -> None:
    assert stack.homeassistant is not None
    sent_before = telegram.snapshot(lambda fake: len(fake.sent))
    reply = await asyncio.wait_for(ask(client, "brighten the kitchen"), 20)
    assert (
        reply.body["response"] == "Tool said: Done: light.turn_on light.kitchen brightness_pct=80."
    )
    assert stack.homeassistant.service_calls[-1] == {
        "domain": "light",
        "service": "turn_on",
        "data": {"brightness_pct": 80, "entity_id": ["light.kitchen"]},
    }
    assert telegram.snapshot(lambda fake: len(fake.sent)) == sent_before


async def test_unanswered_action_is_denied_after_the_timeout(
    stack: PipelineStack, client: CheckedClient
) -> None:
    assert stack.homeassistant is not None
    calls_before = len(stack.homeassistant.service_calls)
    patched = await client.call("PATCH", "/api/config", json={"approval_timeout_seconds": 0.5})
    assert patched.body["updated"] == {"approval_timeout_seconds": 0.5}
    seq = await event_seq(client)
    try:
        reply = await asyncio.wait_for(ask(client, "unlock the front door"), 20)
    finally:
        await client.call("PATCH", "/api/config", json={"approval_timeout_seconds": None})
    assert reply.body["response"].endswith(
        "Tool said: Not done: the owner did not approve lock.unlock lock.front_door in time."
    )
    frames = await events_until(client, seq, "EXEC_APPROVAL_RESOLVED")
    assert frames[-1]["data"]["approved"] is False
    assert frames[-1]["data"]["decided_by"] == "timeout"
    assert len(stack.homeassistant.service_calls) == calls_before


async def test_pending_action_survives_a_hub_restart(
    stack: PipelineStack, hub: HubProcess, client: CheckedClient, telegram: FakeTelegram
) -> None:
    assert stack.homeassistant is not None
    answer = ask(client, "unlock the front door")
    pending = await pending_one(client)
    message = await prompt_of(telegram, pending["request_id"])

    assert (await client.call("POST", "/api/restart")).body == {"status": "restarting"}
    assert hub.wait(20) == 75
    try:  # that conversation ended with the process
        cut = await answer
    except aiohttp.ClientError:
        pass
    else:
        assert cut.status >= 500
    restart_hub(hub)

    after = await pending_one(client)
    assert after == pending  # same id, command and deadline
    calls_before = len(stack.homeassistant.service_calls)
    telegram.press(button(message, "✅ Approve"), chat_id=OWNER, user_id=OWNER, message=message)
    # Nobody waits for it in this run: the hub carries the approved action out itself.
    home = stack.homeassistant
    calls = await until(lambda: home.service_calls[calls_before:], "the call", timeout_s=15)
    assert calls == [
        {"domain": "lock", "service": "unlock", "data": {"entity_id": ["lock.front_door"]}}
    ]
    assert (await client.call("GET", "/api/approvals")).body == {"approvals": []}


def test_the_bot_token_stays_out_of_the_log(hub: HubProcess, telegram: FakeTelegram) -> None:
    log = hub.log()
    assert "Telegram approvals ready (bot @kiwi_test_bot)" in log
    assert telegram.token not in log
    assert telegram.token.split(":")[1] not in log


def test_every_approvals_operation_was_exercised(contract: OpenApiContract) -> None:
    contract.check_document()
    assert contract.unseen_successes(("approvals",)) == []
