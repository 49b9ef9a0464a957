"""Telegram approvals with the real python-telegram-bot, over HTTP, against a local server that
speaks the Bot API (tests/support/fake_telegram.py), reached through the library's base URL.

Each test builds the hub's approval parts on a fresh kiwi.db (store, event bus, registry,
Telegram approver) and plays the owner (and strangers) pressing buttons in their chats.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiwi_voice.hub.approvals.model import Approval
from kiwi_voice.hub.approvals.registry import ApprovalRegistry
from kiwi_voice.hub.approvals.telegram import (
    NOT_ALLOWED,
    TelegramApprover,
    TelegramConfig,
    callback_data,
)
from kiwi_voice.hub.events import EventBus, PublishedEvent
from kiwi_voice.hub.store import Store
from tests.support.fake_telegram import FakeTelegram
from tests.support.ports import free_port
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(30)
OWNER = 424_242  # the owner's private chat (its id is the owner's user id)
STRANGER = 515_151
SECOND_OWNER = 636_363
FAMILY_GROUP = -1_001_234_567  # a group chat (negative id) the owner and others are in


@dataclass
class Parts:
    """The approval parts of one hub run on a data dir."""

    store: Store
    bus: EventBus
    registry: ApprovalRegistry
    approver: TelegramApprover
    events: list[PublishedEvent] = field(default_factory=list)
    decisions: list[tuple[Approval, bool]] = field(default_factory=list)

    def payloads(self, name: str) -> list[dict[str, Any]]:
        return [dict(e.data) for e in self.events if e.event == name]

    async def stop(self) -> None:
        await self.approver.stop()
        self.registry.close()
        self.store.close()


async def start_parts(data_dir: Path, config: TelegramConfig, *, connect: bool = True) -> Parts:
    store = Store(data_dir / "kiwi.db")
    bus = EventBus(store)
    registry = ApprovalRegistry(store, bus)
    approver = TelegramApprover(config, registry, store, bus)
    parts = Parts(store, bus, registry, approver)
    bus.listen(parts.events.append)
    registry.on_resolved(lambda approval, waited: parts.decisions.append((approval, waited)))
    registry.restore()
    approver.start()
    if connect:
        await asyncio.wait_for(approver.wait_connected(), 10)
    return parts


@pytest.fixture
def config(telegram: FakeTelegram) -> TelegramConfig:
    return TelegramConfig(
        bot_token=telegram.token,
        owner_chat_id=OWNER,
        api_url=telegram.url,
        poll_timeout_seconds=1.0,
    )


@pytest.fixture
async def parts(tmp_path: Path, config: TelegramConfig) -> AsyncIterator[Parts]:
    started = await start_parts(tmp_path, config)
    yield started
    await started.stop()


async def prompt_of(telegram: FakeTelegram, request_id: str) -> dict[str, Any]:
    """The message the bot sent the owner about `request_id`."""
    found = await telegram.until(
        lambda fake: [m for m in fake.sent if request_id in m["text"]], timeout_s=10
    )
    return found[0]


async def answer_to(telegram: FakeTelegram, query_id: str) -> dict[str, Any]:
    found = await telegram.until(
        lambda fake: [a for a in fake.callback_answers if a["callback_query_id"] == query_id]
    )
    return found[0]


async def shown_outcome(telegram: FakeTelegram, message: dict[str, Any]) -> dict[str, Any]:
    key = (message["chat"]["id"], message["message_id"])
    return await telegram.until(
        lambda fake: fake.messages[key] if "edit_date" in fake.messages[key] else None
    )


async def decision(registry: ApprovalRegistry, request_id: str) -> Approval:
    """The decided request, without waiting on it (a waiter would change who carries it out)."""

    def decided() -> Approval | None:
        approval = registry.get(request_id)
        return approval if approval is not None and not approval.pending else None

    return await until(decided, f"a decision on {request_id}")


def buttons(message: dict[str, Any]) -> dict[str, str]:
    row = message["reply_markup"]["inline_keyboard"][0]
    return {button["text"]: button["callback_data"] for button in row}


async def test_owner_approves_with_the_button(parts: Parts, telegram: FakeTelegram) -> None:
    approval = parts.registry.open(
        kind="voice", command="turn on the kitchen light", timeout_seconds=30, speaker="Bob"
    )
    message = await prompt_of(telegram, approval.request_id)
    assert message["chat"]["id"] == OWNER
    assert "Bob" in message["text"]
    assert "turn on the kitchen light" in message["text"]
    assert buttons(message) == {
        "✅ Approve": f"kiwi:approve:{approval.request_id}",
        "❌ Deny": f"kiwi:deny:{approval.request_id}",
    }

    query = telegram.press(
        buttons(message)["✅ Approve"], chat_id=OWNER, user_id=OWNER, message=message
    )
    decided = await asyncio.wait_for(parts.registry.wait(approval.request_id), 10)

    assert (decided.status, decided.decided_by) == ("approved", "telegram")
    assert (await answer_to(telegram, query))["text"] == "Approved."
    edited = await shown_outcome(telegram, message)
    assert "✅ Approved" in edited["text"]
    assert "reply_markup" not in edited
    assert parts.payloads("APPROVAL_REQUESTED") == [
        {
            "speaker": "Bob",
            "command": "turn on the kitchen light",
            "request_id": approval.request_id,
            "timeout_seconds": 30.0,
        }
    ]
    assert parts.payloads("APPROVAL_RESOLVED") == [
        {
            "approved": True,
            "speaker": "Bob",
            "request_id": approval.request_id,
            "decided_by": "telegram",
        }
    ]


async def test_owner_denies_a_sensitive_action(parts: Parts, telegram: FakeTelegram) -> None:
    approval = parts.registry.open(
        kind="exec", command="lock.unlock lock.front_door", timeout_seconds=30
    )
    message = await prompt_of(telegram, approval.request_id)
    assert "lock.unlock lock.front_door" in message["text"]

    query = telegram.press(
        buttons(message)["❌ Deny"], chat_id=OWNER, user_id=OWNER, message=message
    )
    decided = await asyncio.wait_for(parts.registry.wait(approval.request_id), 10)

    assert (decided.status, decided.decided_by) == ("denied", "telegram")
    assert (await answer_to(telegram, query))["text"] == "Denied."
    assert "❌ Denied" in (await shown_outcome(telegram, message))["text"]
    assert parts.payloads("EXEC_APPROVAL_REQUESTED") == [
        {
            "command": "lock.unlock lock.front_door",
            "request_id": approval.request_id,
            "timeout_seconds": 30.0,
        }
    ]
    assert parts.payloads("EXEC_APPROVAL_RESOLVED") == [
        {"approved": False, "request_id": approval.request_id, "decided_by": "telegram"}
    ]
    assert parts.payloads("APPROVAL_RESOLVED") == []


async def test_unanswered_request_is_denied_at_its_deadline(
    parts: Parts, telegram: FakeTelegram
) -> None:
    approval = parts.registry.open(
        kind="voice", command="open the garage", timeout_seconds=0.4, speaker="Eve"
    )
    message = await prompt_of(telegram, approval.request_id)

    decided = await asyncio.wait_for(parts.registry.wait(approval.request_id), 10)
    assert (decided.status, decided.decided_by, decided.approved) == ("expired", "timeout", False)
    assert "⌛ Expired" in (await shown_outcome(telegram, message))["text"]

    late = telegram.press(
        buttons(message)["✅ Approve"], chat_id=OWNER, user_id=OWNER, message=message
    )
    assert (await answer_to(telegram, late))["text"] == "Already answered: expired."
    assert parts.registry.get(approval.request_id) == decided
    assert parts.payloads("APPROVAL_RESOLVED") == [
        {
            "approved": False,
            "speaker": "Eve",
            "request_id": approval.request_id,
            "decided_by": "timeout",
        }
    ]


async def test_answers_from_anyone_but_the_owner_are_ignored(
    parts: Parts, telegram: FakeTelegram
) -> None:
    approval = parts.registry.open(
        kind="voice", command="unlock the door", timeout_seconds=30, speaker="Mallory"
    )
    message = await prompt_of(telegram, approval.request_id)
    approve = buttons(message)["✅ Approve"]

    # The same button data from a stranger's chat, and from a stranger in the owner's chat.
    from_other_chat = telegram.press(approve, chat_id=STRANGER, user_id=STRANGER)
    from_other_user = telegram.press(approve, chat_id=OWNER, user_id=STRANGER, message=message)
    for query in (from_other_chat, from_other_user):
        answer = await answer_to(telegram, query)
        assert answer["show_alert"] is True
        assert answer["text"] == NOT_ALLOWED
    assert parts.registry.get(approval.request_id).pending  # type: ignore[union-attr]
    assert parts.payloads("APPROVAL_RESOLVED") == []

    telegram.press(buttons(message)["❌ Deny"], chat_id=OWNER, user_id=OWNER, message=message)
    decided = await asyncio.wait_for(parts.registry.wait(approval.request_id), 10)
    assert decided.status == "denied"


async def test_a_request_resolves_once_however_often_it_is_answered(
    parts: Parts, telegram: FakeTelegram
) -> None:
    approval = parts.registry.open(
        kind="voice", command="turn off the heating", timeout_seconds=30, speaker="Bob"
    )
    message = await prompt_of(telegram, approval.request_id)
    presses = [
        telegram.press(buttons(message)[label], chat_id=OWNER, user_id=OWNER, message=message)
        for label in ("✅ Approve", "✅ Approve", "❌ Deny")
    ]
    answers = [(await answer_to(telegram, query))["text"] for query in presses]

    assert answers == ["Approved.", "Already answered: approved.", "Already answered: approved."]
    assert parts.registry.get(approval.request_id).status == "approved"  # type: ignore[union-attr]
    assert len(parts.payloads("APPROVAL_RESOLVED")) == 1
    assert len(parts.decisions) == 1


async def test_pending_request_survives_a_restart(
    tmp_path: Path, config: TelegramConfig, telegram: FakeTelegram
) -> None:
    first = await start_parts(tmp_path, config)
    approval = first.registry.open(
        kind="exec", command="cover.open_cover cover.garage_door", timeout_seconds=60
    )
    message = await prompt_of(telegram, approval.request_id)
    await first.stop()  # Kiwi stops; the owner answers while it is down
    telegram.press(buttons(message)["✅ Approve"], chat_id=OWNER, user_id=OWNER, message=message)

    second = await start_parts(tmp_path, config)
    try:
        decided = await decision(second.registry, approval.request_id)
        assert (decided.status, decided.decided_by) == ("approved", "telegram")
        assert decided.command == "cover.open_cover cover.garage_door"
        # Nobody in this run waited for it: listeners carry it out (followup.py).
        assert [(a.request_id, waited) for a, waited in second.decisions] == [
            (approval.request_id, False)
        ]
        assert "✅ Approved" in (await shown_outcome(telegram, message))["text"]
        assert second.payloads("EXEC_APPROVAL_RESOLVED") == [
            {"approved": True, "request_id": approval.request_id, "decided_by": "telegram"}
        ]
    finally:
        await second.stop()


async def test_request_whose_deadline_passed_while_down_expires_on_start(
    tmp_path: Path, config: TelegramConfig, telegram: FakeTelegram
) -> None:
    first = await start_parts(tmp_path, config)
    approval = first.registry.open(
        kind="voice", command="open the door", timeout_seconds=0.5, speaker="Eve"
    )
    message = await prompt_of(telegram, approval.request_id)
    first.registry.close()  # disarm: the deadline passes while Kiwi is down
    await first.stop()
    await asyncio.sleep(0.6)  # the time passing is the point: the 0.5 s deadline runs out

    second = await start_parts(tmp_path, config)
    try:
        assert second.registry.pending() == []
        assert second.payloads("APPROVAL_RESOLVED") == [
            {
                "approved": False,
                "speaker": "Eve",
                "request_id": approval.request_id,
                "decided_by": "timeout",
            }
        ]
        assert "⌛ Expired" in (await shown_outcome(telegram, message))["text"]
    finally:
        await second.stop()


async def test_start_tells_a_stranger_the_chat_id_to_configure(
    parts: Parts, telegram: FakeTelegram
) -> None:
    telegram.send_text("/start", chat_id=STRANGER, user_id=STRANGER)
    replies = await telegram.until(
        lambda fake: [m for m in fake.sent if m["chat"]["id"] == STRANGER]
    )
    assert str(STRANGER) in replies[0]["text"]
    assert callback_data(True, "apr_0123456789abcdef") == "kiwi:approve:apr_0123456789abcdef"


async def test_unreachable_telegram_is_reported_and_never_blocks(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    nowhere = TelegramConfig(
        bot_token=telegram.token, owner_chat_id=OWNER, api_url=f"http://127.0.0.1:{free_port()}"
    )
    parts = await start_parts(tmp_path, nowhere, connect=False)
    try:
        errors = await until(lambda: parts.payloads("ERROR"), "an ERROR event", timeout_s=5)
        assert errors[0]["source"] == "telegram"
        assert errors[0]["code"] == "telegram_unavailable"
        assert not parts.approver.connected
        approval = parts.registry.open(
            kind="voice", command="hello", timeout_seconds=30, speaker="Bob"
        )
        assert parts.registry.resolve(approval.request_id, approved=True, by="api").approved
    finally:
        await parts.stop()


def group_config(telegram: FakeTelegram, owners: frozenset[int]) -> TelegramConfig:
    return TelegramConfig(
        bot_token=telegram.token,
        owner_chat_id=FAMILY_GROUP,
        owner_user_ids=owners,
        api_url=telegram.url,
        poll_timeout_seconds=1.0,
    )


async def test_in_a_group_only_the_owner_ids_approve(
    tmp_path: Path, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Everyone in the family group sees the request; a member who is not an owner is told
    "not allowed" (and the refusal is logged); each configured owner can answer."""
    parts = await start_parts(tmp_path, group_config(telegram, frozenset({OWNER, SECOND_OWNER})))
    try:
        first = parts.registry.open(
            kind="voice", command="open the garage", timeout_seconds=30, speaker="Gus"
        )
        message = await prompt_of(telegram, first.request_id)
        assert message["chat"]["id"] == FAMILY_GROUP
        member = telegram.press(
            buttons(message)["✅ Approve"], chat_id=FAMILY_GROUP, user_id=STRANGER, message=message
        )
        answer = await answer_to(telegram, member)
        assert (answer["text"], answer["show_alert"]) == (NOT_ALLOWED, True)
        assert parts.registry.get(first.request_id).pending  # type: ignore[union-attr]
        assert any(
            "Refused an approval answer" in r.getMessage() and str(STRANGER) in r.getMessage()
            for r in caplog.records
        )

        telegram.press(
            buttons(message)["❌ Deny"], chat_id=FAMILY_GROUP, user_id=OWNER, message=message
        )
        assert (await decision(parts.registry, first.request_id)).status == "denied"

        second = parts.registry.open(
            kind="exec", command="lock.unlock lock.front_door", timeout_seconds=30
        )
        message = await prompt_of(telegram, second.request_id)
        telegram.press(
            buttons(message)["✅ Approve"],
            chat_id=FAMILY_GROUP,
            user_id=SECOND_OWNER,
            message=message,
        )
        assert (await decision(parts.registry, second.request_id)).status == "approved"
    finally:
        await parts.stop()


async def test_owner_ids_also_bind_the_private_chat(tmp_path: Path, telegram: FakeTelegram) -> None:
    """With owner ids, the owner chat's own user must be one of them too."""
    config = TelegramConfig(
        bot_token=telegram.token,
        owner_chat_id=OWNER,
        owner_user_ids=frozenset({SECOND_OWNER}),
        api_url=telegram.url,
        poll_timeout_seconds=1.0,
    )
    parts = await start_parts(tmp_path, config)
    try:
        approval = parts.registry.open(kind="voice", command="unlock", timeout_seconds=30)
        message = await prompt_of(telegram, approval.request_id)
        query = telegram.press(
            buttons(message)["✅ Approve"], chat_id=OWNER, user_id=OWNER, message=message
        )
        assert (await answer_to(telegram, query))["text"] == NOT_ALLOWED
        assert parts.registry.get(approval.request_id).pending  # type: ignore[union-attr]
    finally:
        await parts.stop()


async def test_a_group_without_owner_ids_lets_nobody_answer(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    """A group chat with no owner ids: no member may answer, and Kiwi says what to set."""
    parts = await start_parts(tmp_path, group_config(telegram, frozenset()))
    try:
        errors = await until(lambda: parts.payloads("ERROR"), "an ERROR about the owner ids")
        assert errors[0]["code"] == "telegram_owner_ids_missing"
        assert errors[0]["setting"] == "telegram_owner_ids"
        approval = parts.registry.open(kind="voice", command="unlock", timeout_seconds=30)
        message = await prompt_of(telegram, approval.request_id)
        query = telegram.press(
            buttons(message)["✅ Approve"], chat_id=FAMILY_GROUP, user_id=OWNER, message=message
        )
        assert (await answer_to(telegram, query))["text"] == NOT_ALLOWED
        assert parts.registry.get(approval.request_id).pending  # type: ignore[union-attr]
    finally:
        await parts.stop()


def test_owner_ids_come_from_the_environment() -> None:
    base = {"KIWI_TELEGRAM_CHAT_ID": str(FAMILY_GROUP)}
    config = TelegramConfig.from_environ(
        base | {"KIWI_TELEGRAM_OWNER_IDS": f" {OWNER}, {SECOND_OWNER} "}, "token"
    )
    assert config is not None
    assert config.owner_user_ids == {OWNER, SECOND_OWNER}
    legacy = TelegramConfig.from_environ(base | {"KIWI_TELEGRAM_USER_ID": str(OWNER)}, "token")
    assert legacy is not None
    assert legacy.owner_user_ids == {OWNER}
    assert TelegramConfig.from_environ(base | {"KIWI_TELEGRAM_OWNER_IDS": "me"}, "token") is None
