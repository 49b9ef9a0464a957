"""The hub's parts in-process: shapes and the generated document, event payload builders for
every event (including those only the pipeline emits), the bus, state machine, settings, souls,
auth and options."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from aiohttp.test_utils import make_mocked_request

from kiwi_voice.hub import event_payloads as ev
from kiwi_voice.hub.api import ENDPOINTS
from kiwi_voice.hub.audio.feed_cli import cli_token
from kiwi_voice.hub.auth import INGRESS_PROXY_ADDRESS, is_authorized, load_or_create_token
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.openapi import build_document
from kiwi_voice.hub.options import Secrets, parse_options
from kiwi_voice.hub.protocol import (
    ConfigResponse,
    LanguagesResponse,
    SoulDetail,
    SoulSummary,
    SoulSwitchResponse,
    SpeakerProfile,
    StatusResponse,
)
from kiwi_voice.hub.settings import DEFAULTS, SettingsStore, defaults_from_environ
from kiwi_voice.hub.shapes import field_names, required_keys
from kiwi_voice.hub.souls import ActiveSoul, SoulNotAllowed, SoulRegistry, UnknownSoul
from kiwi_voice.hub.state import AssistantState, InvalidTransition, StateMachine
from kiwi_voice.hub.store import Store
from tests.support.hub_openapi import OpenApiContract


@pytest.fixture(scope="module")
def contract() -> OpenApiContract:
    return OpenApiContract(build_document(ENDPOINTS, "test"))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "kiwi.db")
    yield opened
    opened.close()


# ---- the seed's names are all declared ----------------------------------------------------------

SEED_REST_FIELDS: list[tuple[Any, set[str]]] = [
    (StatusResponse, {"state", "language", "tts_provider", "is_speaking", "is_processing",
                      "is_running", "uptime_seconds", "active_speaker", "active_soul",
                      "homeassistant_connected"}),
    (ConfigResponse, {"language", "tts_provider", "tts_qwen_backend", "tts_voice", "stt_model",
                      "stt_device", "wake_word", "wake_word_engine"}),
    (SpeakerProfile, {"id", "name", "priority", "is_blocked", "auto_learned", "sample_count",
                      "last_seen"}),
    (LanguagesResponse, {"current", "available"}),
    (SoulSummary, {"id", "name", "description", "nsfw"}),
    (SoulDetail, {"id", "name", "description", "nsfw", "model"}),
    (SoulSwitchResponse, {"soul", "name", "nsfw", "model"}),
]  # fmt: skip
SEED_EVENTS: dict[str, set[str]] = {
    "STATE_CHANGED": {"old", "new"},
    "WAKE_WORD_DETECTED": {"text"},
    "SPEECH_RECOGNIZED": {"text", "language"},
    "SPEAKER_IDENTIFIED": {"name", "priority", "confidence"},
    "LLM_TOKEN": {"token"},
    "LLM_COMPLETE": {"text"},
    "TTS_STARTED": {"text", "provider"},
    "TTS_FINISHED": set(),
    "APPROVAL_REQUESTED": {"speaker", "command"},
    "APPROVAL_RESOLVED": {"approved", "speaker"},
    "EXEC_APPROVAL_REQUESTED": {"command", "request_id"},
    "EXEC_APPROVAL_RESOLVED": {"approved", "request_id"},
    "SOUL_CHANGED": {"soul", "name"},
    "ERROR": {"message", "source"},
}
SEED_PATHS = {
    ("GET", "/api/status"), ("GET", "/api/config"), ("PATCH", "/api/config"),
    ("GET", "/api/speakers"), ("DELETE", "/api/speakers/{speaker_id}"),
    ("POST", "/api/speakers/{speaker_id}/block"), ("POST", "/api/speakers/{speaker_id}/unblock"),
    ("GET", "/api/languages"), ("POST", "/api/language"), ("GET", "/api/souls"),
    ("GET", "/api/soul/current"), ("POST", "/api/soul"), ("POST", "/api/tts/test"),
    ("POST", "/api/stop"), ("POST", "/api/reset-context"), ("POST", "/api/restart"),
    ("POST", "/api/shutdown"), ("GET", "/api/homeassistant/status"),
    ("POST", "/api/homeassistant/command"), ("GET", "/api/events"),
}  # fmt: skip


def test_every_seed_path_and_method_is_served_and_documented(contract: OpenApiContract) -> None:
    documented = {(o.method, o.template) for o in contract.operations}
    assert documented >= SEED_PATHS
    contract.check_document()


@pytest.mark.parametrize(("shape", "fields"), SEED_REST_FIELDS)
def test_seed_rest_fields_are_required_in_the_shapes(shape: Any, fields: set[str]) -> None:
    assert fields <= required_keys(shape)


def test_seed_events_and_their_payload_fields_are_declared() -> None:
    assert set(SEED_EVENTS) == {str(e) for e in ev.SEED_EVENTS}
    for name, fields in SEED_EVENTS.items():
        payload = ev.EVENT_PAYLOADS[name]
        assert fields <= set(field_names(payload)), name
        assert fields <= required_keys(payload), name


BUILT: list[tuple[str, dict[str, Any]]] = [
    ("STATE_CHANGED", ev.state_changed("IDLE", "LISTENING")),
    ("WAKE_WORD_DETECTED", ev.wake_word_detected("kiwi", 0.93)),
    ("WAKE_WORD_DETECTED", ev.wake_word_detected("kiwi")),
    ("SPEECH_RECOGNIZED", ev.speech_recognized("turn on the lights", "en")),
    ("SPEAKER_IDENTIFIED", ev.speaker_identified("Owner", 0, 0.95, "spk_0123abcd")),
    ("SPEAKER_IDENTIFIED", ev.speaker_identified(None, None, 0.41)),
    ("LLM_TOKEN", ev.llm_token("Hello")),
    ("LLM_COMPLETE", ev.llm_complete("Hello! How can I help?", "claude-sonnet-4-5")),
    ("TTS_STARTED", ev.tts_started("Hello!", "piper", "en_US-lessac-medium")),
    ("TTS_FINISHED", ev.tts_finished()),
    ("TTS_FINISHED", ev.tts_finished(True, 1.25)),
    ("APPROVAL_REQUESTED", ev.approval_requested("Guest", "unlock the door", "apr_1")),
    ("APPROVAL_RESOLVED", ev.approval_resolved(True, "Guest", "apr_1")),
    ("EXEC_APPROVAL_REQUESTED", ev.exec_approval_requested("git push", "req_1")),
    ("EXEC_APPROVAL_RESOLVED", ev.exec_approval_resolved(False, "req_1")),
    ("SOUL_CHANGED", ev.soul_changed("comedian", "Comedian", "claude-haiku-4-5", False)),
    ("ERROR", ev.error("TTS service unreachable", "tts", "tts_unavailable")),
    ("CONFIG_CHANGED", ev.config_changed({"language": "ru"})),
    ("CONTEXT_RESET", ev.context_reset()),
    ("SPEAKER_ENROLLED", ev.speaker_enrolled("spk_0123abcd", "Ann", 1, 3)),
    ("SPEAKER_UPDATED", ev.speaker_updated("spk_0123abcd", "Ann", 1, True)),
    ("SPEAKER_DELETED", ev.speaker_deleted("spk_0123abcd")),
    ("HUB_STOPPING", ev.hub_stopping("restart")),
]


@pytest.mark.parametrize(("name", "payload"), BUILT)
def test_payload_builders_match_the_served_document(
    contract: OpenApiContract, name: str, payload: dict[str, Any], store: Store
) -> None:
    contract.check_schema(
        f"Event_{name}", {"event": name, "data": payload, "timestamp": 1.5, "source": "x", "seq": 1}
    )
    # Published through a real bus, the frame is one of the documented server frames.
    published = EventBus(store).publish(name, payload, "unit")
    contract.check_frame(json.loads(published.frame))
    assert set(json.loads(published.frame)) == {"event", "data", "timestamp", "source", "seq"}


def test_seed_payload_examples_validate(contract: OpenApiContract) -> None:
    """The seed's own example payloads are valid Kiwi payloads."""
    examples = {
        "STATE_CHANGED": {"old": "IDLE", "new": "LISTENING"},
        "WAKE_WORD_DETECTED": {"text": "kiwi"},
        "SPEAKER_IDENTIFIED": {"name": "Owner", "priority": 0, "confidence": 0.95},
        "TTS_STARTED": {"text": "Hello!", "provider": "kokoro"},
        "TTS_FINISHED": {},
        "APPROVAL_RESOLVED": {"approved": True, "speaker": "Guest"},
        "SOUL_CHANGED": {"soul": "comedian", "name": "Comedian"},
        "ERROR": {"message": "...", "source": "tts"},
    }
    for name, data in examples.items():
        frame = {
            "event": name,
            "data": data,
            "timestamp": 1709000000.0,
            "source": "listener",
            "seq": 3,
        }
        contract.check_frame(frame)


def test_a_wrong_payload_is_rejected_by_the_document(contract: OpenApiContract) -> None:
    with pytest.raises(AssertionError):
        contract.check_frame(
            {
                "event": "STATE_CHANGED",
                "data": {"old": "IDLE"},
                "timestamp": 1.0,
                "source": "x",
                "seq": 1,
            }
        )
    with pytest.raises(AssertionError):
        contract.check_frame(
            {
                "event": "LLM_TOKEN",
                "data": {"token": "a", "extra": 1},
                "timestamp": 1.0,
                "source": "x",
                "seq": 1,
            }
        )


# ---- the bus ------------------------------------------------------------------------------------


async def test_publish_never_waits_for_a_full_subscriber(store: Store) -> None:
    bus = EventBus(store)
    slow = bus.subscribe(max_queue=3)
    fast = bus.subscribe(max_queue=100)
    for _ in range(10):
        bus.publish("CONTEXT_RESET", {}, "unit")
    assert slow.overflowed.is_set()
    assert not fast.overflowed.is_set()
    assert [(await fast.next()).seq for _ in range(10)] == list(range(1, 11))


async def test_a_failing_listener_does_not_stop_the_others(store: Store) -> None:
    bus = EventBus(store)
    seen: list[int] = []

    def broken(_event: Any) -> None:
        raise RuntimeError("boom")

    bus.listen(broken)
    bus.listen(lambda event: seen.append(event.seq))
    bus.publish("CONTEXT_RESET", {}, "unit")
    assert seen == [1]


def test_unknown_event_types_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        EventBus(store).publish("MADE_UP", {}, "unit")


def test_seq_and_log_survive_reopening(tmp_path: Path) -> None:
    first = Store(tmp_path / "kiwi.db")
    bus = EventBus(first, log_capacity=150)
    for _ in range(250):
        bus.publish("CONTEXT_RESET", {}, "unit")
    first.close()
    second = Store(tmp_path / "kiwi.db")
    reopened = EventBus(second, log_capacity=150)
    assert reopened.last_seq == 250
    assert reopened.oldest_replayable_seq() == 101
    assert [e.seq for e in reopened.replay(240, 250)] == list(range(241, 251))
    assert reopened.replay(0, 250)[0].seq == 101
    assert reopened.publish("CONTEXT_RESET", {}, "unit").seq == 251
    second.close()


# ---- state --------------------------------------------------------------------------------------


def test_every_transition_is_an_event(store: Store) -> None:
    bus = EventBus(store)
    machine = StateMachine(bus)
    assert machine.transition(AssistantState.LISTENING)
    assert not machine.transition(AssistantState.LISTENING)  # same state: no event
    assert machine.transition(AssistantState.PROCESSING)
    assert machine.transition(AssistantState.WAITING_APPROVAL)
    with pytest.raises(InvalidTransition):
        machine.transition(AssistantState.LISTENING)
    machine.reset()
    events = [(e.data["old"], e.data["new"]) for e in bus.replay(0, bus.last_seq)]
    assert events == [
        ("IDLE", "LISTENING"),
        ("LISTENING", "PROCESSING"),
        ("PROCESSING", "WAITING_APPROVAL"),
        ("WAITING_APPROVAL", "IDLE"),
    ]


# ---- settings -----------------------------------------------------------------------------------


def test_settings_layers_env_over_defaults_and_changes_over_env(store: Store) -> None:
    env = {
        "KIWI_LANGUAGE": "ru",
        "KIWI_ANTHROPIC_MODEL": "claude-opus-4-1",
        "KIWI_ALLOW_NSFW": "maybe",
        "KIWI_VAD_SILENCE_SECONDS": "0.7",
        "KIWI_HA_URL": "http://supervisor/core",
    }
    defaults = defaults_from_environ(env)
    assert defaults["language"] == "ru"
    assert defaults["llm_model"] == "claude-opus-4-1"
    assert defaults["allow_nsfw"] is False  # "maybe" is not a boolean: ignored, not fatal
    assert defaults["vad_silence_seconds"] == 0.7
    settings = SettingsStore(store, defaults)
    changes: list[dict[str, Any]] = []
    settings.on_change(changes.append)
    assert settings.update({"language": "de", "stt_model": defaults["stt_model"]}) == {
        "language": "de"
    }
    assert SettingsStore(store, defaults).get("language") == "de"  # persisted
    assert settings.update({"language": None}) == {"language": "ru"}  # back to the env layer
    assert changes == [{"language": "de"}, {"language": "ru"}]
    with pytest.raises(vol.Invalid):
        settings.update({"language": "de", "vad_silence_seconds": 50})
    assert settings.get("language") == "ru"  # all or nothing


def test_settings_from_an_older_version_are_ignored(store: Store) -> None:
    store.write_namespace(
        "settings", {"language": "klingon", "removed_setting": 1, "tts_voice": "x"}
    )
    settings = SettingsStore(store, DEFAULTS)
    assert settings.get("language") == DEFAULTS["language"]
    assert settings.get("tts_voice") == "x"


# ---- souls --------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_and_user_souls(tmp_path: Path) -> None:
    write(tmp_path / "pirate.md", "---\nname: Pirate\ndescription: Arr\n---\nYou are a pirate.\n")
    write(tmp_path / "comedian.md", "---\nname: My Comedian\n---\nTell dad jokes.\n")
    write(tmp_path / "empty.md", "---\nname: Empty\n---\n\n")
    write(tmp_path / "badyaml.md", "---\nname: [unclosed\n---\nx\n")
    write(tmp_path / "extra.md", "---\nname: X\ncolour: blue\n---\nx\n")
    write(tmp_path / "badid.md", "---\nid: Bad Id\nname: X\n---\nx\n")
    registry = SoulRegistry(tmp_path)
    souls = {soul.id: soul for soul in registry.all()}
    assert {"default", "comedian", "siren", "butler", "storyteller", "pirate"} == set(souls)
    assert souls["comedian"].source == "user"  # the user's file replaces the built-in
    assert souls["siren"].nsfw
    assert len(registry.problems) == 4
    write(tmp_path / "ninja.md", "---\nname: Ninja\n---\nSilent.\n")
    assert registry.get("ninja") is not None  # picked up without a restart


def test_active_soul_policy_and_persistence(store: Store, tmp_path: Path) -> None:
    bus = EventBus(store)
    settings = SettingsStore(store, DEFAULTS)
    registry = SoulRegistry(None)
    active = ActiveSoul(registry, settings, store, bus, "siren")
    assert active.current().id == "default"  # NSFW not allowed: the default instead
    with pytest.raises(UnknownSoul):
        active.switch("nobody")
    with pytest.raises(SoulNotAllowed):
        active.switch("siren")
    assert active.model_of(active.switch("comedian")) == "claude-haiku-4-5"
    assert active.model_of(registry.get("default")) == DEFAULTS["llm_model"]
    # Restarted with the same option: the run-time switch stays.
    assert ActiveSoul(registry, settings, store, bus, "siren").current().id == "comedian"
    # The option was changed since: it wins over the switch, then a switch wins again.
    assert ActiveSoul(registry, settings, store, bus, "butler").current().id == "butler"
    ActiveSoul(registry, settings, store, bus, "butler").switch("comedian")
    assert ActiveSoul(registry, settings, store, bus, "butler").current().id == "comedian"
    settings.update({"allow_nsfw": True})
    active.switch("siren")
    settings.update({"allow_nsfw": False})
    assert active.current().id == "default"
    changed = [e.data["soul"] for e in bus.replay(0, bus.last_seq) if e.event == "SOUL_CHANGED"]
    assert changed == ["comedian", "comedian", "siren", "default"]


# ---- auth and options ---------------------------------------------------------------------------


def test_token_file_is_created_once(tmp_path: Path) -> None:
    token, created = load_or_create_token(tmp_path / "sub" / "api_token")
    assert created
    assert stat.S_IMODE(os.stat(tmp_path / "sub" / "api_token").st_mode) == 0o600
    assert load_or_create_token(tmp_path / "sub" / "api_token") == (token, False)


class _Transport:
    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.address, 12345) if name == "peername" else default


@pytest.mark.parametrize(
    ("remote", "headers", "allowed"),
    [
        (INGRESS_PROXY_ADDRESS, {"X-Ingress-Path": "/api/hassio_ingress/abc"}, True),
        (INGRESS_PROXY_ADDRESS, {}, False),
        ("172.30.32.9", {"X-Ingress-Path": "/api/hassio_ingress/abc"}, False),
        ("127.0.0.1", {"Authorization": "Bearer secret"}, True),
        ("127.0.0.1", {"Authorization": "Basic secret"}, False),
        ("127.0.0.1", {"Authorization": "Bearer wrong"}, False),
    ],
)
def test_who_is_authorized(remote: str, headers: dict[str, str], allowed: bool) -> None:
    request = make_mocked_request(
        "GET", "/api/status", headers=headers, transport=_Transport(remote)
    )
    assert is_authorized(request, "secret") is allowed


def test_options_fall_back_to_the_environment() -> None:
    env = {"KIWI_PORT": "8123", "KIWI_DATA_DIR": "/tmp/k", "KIWI_TTS_PORT": "10222",
           "KIWI_SPEAKER_URI": "tcp://10.0.0.2:10500", "KIWI_SOUL": "butler"}  # fmt: skip
    options = parse_options([], env)
    assert options.port == 8123
    assert options.data_dir == Path("/tmp/k")
    assert options.tts_uri == "tcp://127.0.0.1:10222"
    assert options.speaker_uri == "tcp://10.0.0.2:10500"
    assert options.souls_dir == Path("/tmp/k/souls")
    assert options.initial_soul == "butler"
    overridden = parse_options(["--port", "9000", "--souls-dir", "/s"], env)
    assert overridden.port == 9000
    assert overridden.souls_dir == Path("/s")
    addon = parse_options([], {"SUPERVISOR_TOKEN": "t"})
    assert addon.data_dir == Path("/data")
    assert addon.souls_dir == Path("/share/kiwi/souls")


def test_secrets_come_from_the_environment_and_never_print() -> None:
    secrets = Secrets.from_environ({"ANTHROPIC_API_KEY": "sk-1", "SUPERVISOR_TOKEN": "sup"})
    assert secrets.anthropic_api_key == "sk-1"
    assert secrets.homeassistant_token == "sup"
    assert "sk-1" not in repr(secrets)
    assert "sup" not in repr(secrets)


def test_home_assistant_target(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiwi_voice.hub.homeassistant import HomeAssistantClient

    settings = SettingsStore(store, DEFAULTS)
    assert HomeAssistantClient(settings, None, in_addon=True).target() is None  # no token
    addon = HomeAssistantClient(settings, "sup", in_addon=True).target()
    assert addon is not None
    assert (addon.base_url, addon.mode) == ("http://supervisor/core", "supervisor")
    assert HomeAssistantClient(settings, "llat", in_addon=False).target() is None  # no URL
    settings.update({"homeassistant_url": "http://ha.local:8123/"})
    direct = HomeAssistantClient(settings, "llat", in_addon=False).target()
    assert direct is not None
    assert (direct.base_url, direct.mode) == ("http://ha.local:8123", "direct")
    # A Supervisor elsewhere (KIWI_SUPERVISOR_URL): its Core API proxy is still the proxy.
    monkeypatch.setenv("KIWI_SUPERVISOR_URL", "http://127.0.0.1:8999")
    settings.update({"homeassistant_url": "http://127.0.0.1:8999/core"})
    moved = HomeAssistantClient(settings, "sup", in_addon=True).target()
    assert moved is not None
    assert moved.mode == "supervisor"


async def test_an_unexpected_exception_is_a_coded_500_and_an_error_event(store: Store) -> None:
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from kiwi_voice.hub.middleware import error_middleware

    async def broken(_request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    bus = EventBus(store)
    app = web.Application(middlewares=[error_middleware(SimpleNamespace(bus=bus))])
    app.router.add_get("/broken", broken)
    async with TestClient(TestServer(app)) as http:
        response = await http.get("/broken")
        assert response.status == 500
        assert (await response.json())["error"]["code"] == "internal_error"
        assert (await http.get("/missing")).status == 404
    (event,) = bus.replay(0, bus.last_seq)
    assert event.event == "ERROR"
    assert event.data["source"] == "hub"
    assert event.data["code"] == "internal_error"


def test_command_line_clients_read_the_token_or_say_why_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KIWI_TOKEN", raising=False)
    assert cli_token("kiwi-hub talk", tmp_path / "missing") is None
    assert "kiwi-hub talk: no token (KIWI_TOKEN, --token-file)" in capsys.readouterr().err
    (tmp_path / "api_token").write_text("from-file\n", encoding="utf-8")
    assert cli_token("kiwi-hub talk", tmp_path / "api_token") == "from-file"
    monkeypatch.setenv("KIWI_TOKEN", " from-env ")
    assert cli_token("kiwi-hub talk", tmp_path / "missing") == "from-env"
