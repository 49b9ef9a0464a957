"""Who may do what, role by role: the policy the pipeline asks before a command runs, with the
settings it reads (stored in a real kiwi.db), and the owner's spoken answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import voluptuous as vol

from kiwi_voice.hub.approvals.voice_answers import yes_or_no
from kiwi_voice.hub.pipeline.policy import Action, Role, Speaker, SpeakerPolicy, role_of
from kiwi_voice.hub.settings import DEFAULTS, SettingsStore
from kiwi_voice.hub.store import Store


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[SettingsStore]:
    store = Store(tmp_path / "kiwi.db")
    yield SettingsStore(store, DEFAULTS)
    store.close()


def voice(priority: int | None, *, blocked: bool = False, is_self: bool = False) -> Speaker:
    speaker_id = None if priority is None else "spk_0000abcd"
    return Speaker(
        id=speaker_id,
        name="Someone",
        priority=priority,
        confidence=0.9,
        is_blocked=blocked,
        is_self=is_self,
    )


OWNER, FRIEND, GUEST, BLOCKED_ROLE, UNKNOWN = (voice(0), voice(1), voice(2), voice(3), voice(None))


@pytest.mark.parametrize(
    ("speaker", "role"),
    [
        (OWNER, Role.OWNER),
        (FRIEND, Role.FRIEND),
        (GUEST, Role.GUEST),
        (BLOCKED_ROLE, Role.BLOCKED),
        (voice(0, blocked=True), Role.BLOCKED),  # a blocked profile, whatever its priority
        (UNKNOWN, Role.UNKNOWN),
        (Speaker.client("dashboard"), Role.OWNER),  # typed with the owner's token
    ],
)
def test_roles_follow_priority_and_the_blocked_flag(speaker: Speaker, role: Role) -> None:
    assert role_of(speaker) is role


def test_defaults_owner_and_friend_run_guests_ask_unknown_voices_only_chat(
    settings: SettingsStore,
) -> None:
    policy = SpeakerPolicy(settings)
    actions = {
        role: policy.decide(speaker).action
        for role, speaker in (
            ("owner", OWNER),
            ("friend", FRIEND),
            ("guest", GUEST),
            ("blocked", BLOCKED_ROLE),
            ("unknown", UNKNOWN),
        )
    }
    assert actions == {
        "owner": Action.RUN,
        "friend": Action.RUN,
        "guest": Action.APPROVE,
        "blocked": Action.DROP,
        "unknown": Action.CHAT_ONLY,
    }


@pytest.mark.parametrize(
    ("value", "action"),
    [("allow", Action.RUN), ("approve", Action.APPROVE), ("deny", Action.CHAT_ONLY)],
)
@pytest.mark.parametrize(
    ("setting", "speaker"),
    [
        ("friend_policy", FRIEND),
        ("guest_policy", GUEST),
        ("unknown_speaker_policy", UNKNOWN),
    ],
)
def test_each_role_setting_decides_its_role_only(
    settings: SettingsStore, setting: str, speaker: Speaker, value: str, action: Action
) -> None:
    settings.update({setting: value})
    policy = SpeakerPolicy(settings)
    decision = policy.decide(speaker)
    assert decision.action is action
    assert decision.reason == f"{setting}={value}"
    # The owner always runs and the blocked are always ignored, whatever the settings say.
    assert policy.decide(OWNER).action is Action.RUN
    assert policy.decide(BLOCKED_ROLE).action is Action.DROP


def test_kiwis_own_voice_is_ignored_even_as_the_owner(settings: SettingsStore) -> None:
    decision = SpeakerPolicy(settings).decide(voice(0, is_self=True))
    assert decision.action is Action.DROP
    assert "echo" in decision.reason


def test_policy_settings_are_checked_and_survive_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "kiwi.db")
    settings = SettingsStore(store, DEFAULTS)
    with pytest.raises(vol.Invalid):
        settings.update({"friend_policy": "sometimes"})
    with pytest.raises(vol.Invalid):
        settings.update({"approval_timeout_seconds": 0})
    settings.update({"friend_policy": "approve", "approval_timeout_seconds": 30.0})
    store.close()

    reopened = Store(tmp_path / "kiwi.db")
    try:
        again = SettingsStore(reopened, DEFAULTS)
        assert again.get("friend_policy") == "approve"
        assert again.get("approval_timeout_seconds") == 30.0
        assert SpeakerPolicy(again).decide(FRIEND).action is Action.APPROVE
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Yes.", True),
        ("Yes, go ahead, I approve it.", True),
        ("okay Kiwi, do it", True),
        ("Да", True),
        ("No.", False),
        ("No, I do not approve that, thank you.", False),
        ("Don't.", False),
        ("nein", False),
        ("yes and turn on the lights", None),  # a request of its own
        ("turn on the lights", None),
        ("please", None),
        ("", None),
    ],
)
def test_spoken_answers(text: str, answer: bool | None) -> None:
    assert yes_or_no(text) is answer
