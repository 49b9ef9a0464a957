"""The launcher's pure parts: environment → settings, options.json → options, both → processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiwi_voice.launcher.cli import describe_config, main
from kiwi_voice.launcher.options import KiwiOptions, OptionsError, load_options, parse_options
from kiwi_voice.launcher.settings import (
    LauncherSettings,
    SettingsError,
    core_api_url,
    default_ports,
    settings_from_environ,
    supervisor_url,
)
from kiwi_voice.launcher.specs import PROCESS_NAMES, Protocol, build_process_specs, spec_by_name

SAMPLE_OPTIONS = {
    "language": "de",
    "stt_model": "small",
    "stt_compute_type": "float32",
    "tts_voice": "de_DE-thorsten-medium",
    "wake_word": "alexa",
    "wake_threshold": 0.65,
    "wake_second_look": True,
    "soul": "comedian",
    "anthropic_api_key": "sk-ant-test-secret",
    "anthropic_model": "claude-haiku-4-5",
    "telegram_bot_token": "123:telegram-secret",
    "telegram_chat_id": 424242,
    "guest_policy": "allow",
    "unknown_speaker_policy": "approve",
    "log_level": "debug",
}
SECRETS = ("sk-ant-test-secret", "123:telegram-secret", "supervisor-secret")


def _argv_option(argv: tuple[str, ...], flag: str) -> list[str]:
    """Every value given to `flag` on a command line."""
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


# -- settings from the environment ---------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = settings_from_environ({})
    assert settings.data_dir == Path(".kiwi")
    assert settings.models_dir == Path(".kiwi/models")
    assert settings.token_file == Path(".kiwi/api_token")
    assert settings.bind_host == "127.0.0.1"
    assert dict(settings.ports) == {
        "hub": 7789,
        "stt": 10300,
        "tts": 10200,
        "wake": 10400,
        "speaker": 10500,
        "combined": 10700,
    }


def test_settings_from_variables() -> None:
    settings = settings_from_environ(
        {
            "KIWI_DATA_DIR": "/srv/kiwi",
            "KIWI_PORT": "8000",
            "KIWI_STT_PORT": "9001",
            "KIWI_TTS_PORT": "9002",
            "KIWI_WAKE_PORT": "9003",
            "KIWI_SPEAKER_PORT": "9004",
            "KIWI_WYOMING_PORT": "9005",
            "KIWI_BIND_HOST": "0.0.0.0",
            "KIWI_MODELS_PATH": "/config/models:/share/kiwi/models",
            "KIWI_BUNDLED_MODELS": "/opt/kiwi/models",
        }
    )
    assert settings.data_dir == Path("/srv/kiwi")
    assert [settings.port(n) for n in ("hub", "stt", "tts", "wake", "speaker", "combined")] == [
        8000,
        9001,
        9002,
        9003,
        9004,
        9005,
    ]
    # The user's folders first, then downloads, and the shipped defaults last.
    assert settings.model_roots == (
        Path("/config/models"),
        Path("/share/kiwi/models"),
        Path("/srv/kiwi/models"),
        Path("/opt/kiwi/models"),
    )
    assert settings.bind_host == "0.0.0.0"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"KIWI_PORT": "web"}, "KIWI_PORT='web' is not a port number"),
        ({"KIWI_STT_PORT": "70000"}, "outside 1-65535"),
        ({"KIWI_TTS_PORT": "10300"}, "would both listen on port 10300"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_environ(environ)


# -- options ------------------------------------------------------------------------------------


def test_options_from_the_supervisor_json(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps(SAMPLE_OPTIONS), encoding="utf-8")
    options = load_options(path)
    assert options.language == "de"
    assert options.wake_threshold == 0.65
    assert options.telegram_chat_id == "424242", "a chat id typed as a number stays exact"
    assert options.anthropic_api_key == "sk-ant-test-secret"


def test_whisper_runs_int8_unless_the_user_chooses_float32() -> None:
    # int8 halves kiwi-stt's memory at the same word error rate (bench/RESULTS.md, "rss").
    specs = build_process_specs(parse_options({}), settings_from_environ({}))
    assert _argv_option(spec_by_name(specs, "stt").argv, "--compute-type") == ["int8"]


def test_no_options_file_means_defaults() -> None:
    assert load_options(None) == KiwiOptions()


def test_empty_optional_secrets_are_unset_and_unknown_options_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = parse_options({"anthropic_api_key": "", "telegram_chat_id": None, "shiny": 1})
    assert options.anthropic_api_key is None
    assert options.telegram_chat_id is None
    assert "Ignoring unknown option 'shiny'" in caplog.text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"language": "xx"}, "language='xx' is not one of"),
        ({"wake_threshold": 1.5}, "wake_threshold=1.5 is outside"),
        ({"wake_threshold": "high"}, "wake_threshold must be a number"),
        ({"wake_threshold": True}, "wake_threshold must be a number"),
        ({"guest_policy": "maybe"}, "guest_policy='maybe' is not one of"),
        ({"stt_model": " "}, "stt_model must not be empty"),
        ({"stt_model": 3}, "stt_model must be text"),
        ({"stt_compute_type": "int4"}, "stt_compute_type='int4' is not one of"),
        ({"anthropic_api_key": ["a"]}, "anthropic_api_key must be text"),
    ],
)
def test_bad_options_are_named(raw: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        parse_options(raw)


@pytest.mark.parametrize(
    ("content", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object")]
)
def test_unreadable_options_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "options.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OptionsError, match=message):
        load_options(path)
    with pytest.raises(OptionsError, match="does not exist"):
        load_options(tmp_path / "missing.json")


# -- options + settings → processes -------------------------------------------------------------


@pytest.fixture
def addon_specs() -> dict[str, tuple[tuple[str, ...], dict[str, str], int, Protocol]]:
    settings = settings_from_environ(
        {
            "KIWI_DATA_DIR": "/data",
            "KIWI_BIND_HOST": "0.0.0.0",
            "KIWI_MODELS_PATH": "/config/models",
        }
    )
    specs = build_process_specs(
        parse_options(SAMPLE_OPTIONS),
        settings,
        python="/opt/kiwi/bin/python",
        environ={"SUPERVISOR_TOKEN": "supervisor-secret"},
    )
    return {s.name: (s.argv, dict(s.env), s.port, s.protocol) for s in specs}


def test_every_process_in_start_order_with_the_hub_last(
    addon_specs: dict[str, tuple[tuple[str, ...], dict[str, str], int, Protocol]],
) -> None:
    assert tuple(addon_specs) == PROCESS_NAMES
    assert PROCESS_NAMES[-1] == "hub"
    for name, (argv, _env, _port, _protocol) in addon_specs.items():
        assert argv[:3] == ("/opt/kiwi/bin/python", "-m", f"kiwi_voice.{name}")


def test_wyoming_services_listen_on_their_ports_with_the_users_models(
    addon_specs: dict[str, tuple[tuple[str, ...], dict[str, str], int, Protocol]],
) -> None:
    stt, tts, wake = addon_specs["stt"][0], addon_specs["tts"][0], addon_specs["wake"][0]
    assert _argv_option(stt, "--uri") == ["tcp://0.0.0.0:10300"]
    assert _argv_option(stt, "--model") == ["small"]
    assert _argv_option(stt, "--language") == ["de"]
    assert _argv_option(stt, "--compute-type") == ["float32"]
    assert _argv_option(stt, "--data-dir") == ["/config/models/whisper", "/data/models/whisper"]
    assert _argv_option(stt, "--download-dir") == ["/data/models/whisper"]
    assert _argv_option(tts, "--uri") == ["tcp://0.0.0.0:10200"]
    assert _argv_option(tts, "--voice") == ["de_DE-thorsten-medium"]
    assert _argv_option(tts, "--download-dir") == ["/data/models/piper"]
    assert _argv_option(wake, "--uri") == ["tcp://0.0.0.0:10400"]
    assert _argv_option(wake, "--wake-word") == ["alexa"]
    assert _argv_option(wake, "--threshold") == ["0.65"]
    assert _argv_option(wake, "--second-look-frames") == ["2"]
    assert _argv_option(wake, "--data-dir") == [
        "/config/models/openwakeword",
        "/data/models/openwakeword",
    ]
    speaker_argv, speaker_env, _port, _protocol = addon_specs["speaker"]
    assert _argv_option(speaker_argv, "--uri") == ["tcp://0.0.0.0:10500"]
    assert "NUMBA_CACHE_DIR" not in speaker_env  # no JIT: the encoder runs on onnxruntime
    for name in ("stt", "tts", "wake", "speaker", "combined"):
        assert "--debug" in addon_specs[name][0], "log_level debug reaches every service"


def test_the_combined_endpoint_and_the_hub_reach_the_services_on_loopback(
    addon_specs: dict[str, tuple[tuple[str, ...], dict[str, str], int, Protocol]],
) -> None:
    combined = addon_specs["combined"][0]
    assert _argv_option(combined, "--uri") == ["tcp://0.0.0.0:10700"]
    assert _argv_option(combined, "--stt-uri") == ["tcp://127.0.0.1:10300"]
    assert _argv_option(combined, "--tts-uri") == ["tcp://127.0.0.1:10200"]
    assert _argv_option(combined, "--wake-uri") == ["tcp://127.0.0.1:10400"]
    hub, hub_env, hub_port, protocol = addon_specs["hub"]
    assert (hub_port, protocol) == (7789, Protocol.HTTP)
    assert _argv_option(hub, "--host") == ["0.0.0.0"]
    assert _argv_option(hub, "--port") == ["7789"]
    assert _argv_option(hub, "--data-dir") == ["/data"]
    assert _argv_option(hub, "--speaker-uri") == ["tcp://127.0.0.1:10500"]
    assert _argv_option(hub, "--log-level") == ["debug"]
    assert hub_env["KIWI_LANGUAGE"] == "de"
    assert hub_env["KIWI_SOUL"] == "comedian"
    # kiwi-wake's own option (its --threshold); the hub has no wake threshold to set.
    assert "KIWI_WAKE_THRESHOLD" not in hub_env
    assert hub_env["KIWI_ANTHROPIC_MODEL"] == "claude-haiku-4-5"
    assert hub_env["KIWI_GUEST_POLICY"] == "allow"
    assert hub_env["KIWI_UNKNOWN_SPEAKER_POLICY"] == "approve"
    assert hub_env["KIWI_TELEGRAM_CHAT_ID"] == "424242"


def test_secrets_go_to_the_hubs_environment_only(
    addon_specs: dict[str, tuple[tuple[str, ...], dict[str, str], int, Protocol]],
) -> None:
    _argv, hub_env, _port, _protocol = addon_specs["hub"]
    assert hub_env["ANTHROPIC_API_KEY"] == "sk-ant-test-secret"
    assert hub_env["KIWI_TELEGRAM_BOT_TOKEN"] == "123:telegram-secret"
    assert hub_env["KIWI_HA_TOKEN"] == "supervisor-secret"
    assert hub_env["KIWI_HA_URL"] == "http://supervisor/core"
    for name, (argv, env, _port, _protocol) in addon_specs.items():
        assert not any(secret in arg for arg in argv for secret in SECRETS), name
        if name != "hub":
            assert not any(secret in value for value in env.values() for secret in SECRETS)


def test_outside_the_addon_the_hub_gets_no_home_assistant_token() -> None:
    specs = build_process_specs(KiwiOptions(), LauncherSettings(), environ={})
    hub_env = spec_by_name(specs, "hub").env
    assert "KIWI_HA_TOKEN" not in hub_env
    assert "ANTHROPIC_API_KEY" not in hub_env
    assert all("--debug" not in spec.argv for spec in specs)
    with pytest.raises(KeyError, match="no process named 'mqtt'"):
        spec_by_name(specs, "mqtt")


def test_one_supervisor_url_gives_discovery_and_the_core_api_proxy() -> None:
    assert supervisor_url({}) == "http://supervisor"
    assert core_api_url({}) == "http://supervisor/core"
    moved = {"KIWI_SUPERVISOR_URL": "http://127.0.0.1:8123/", "SUPERVISOR_TOKEN": "t"}
    assert supervisor_url(moved) == "http://127.0.0.1:8123"
    specs = build_process_specs(KiwiOptions(), LauncherSettings(), environ=moved)
    assert spec_by_name(specs, "hub").env["KIWI_HA_URL"] == "http://127.0.0.1:8123/core"


def test_ports_follow_the_environment() -> None:
    ports = dict(zip(default_ports(), range(20001, 20007), strict=True))
    specs = build_process_specs(KiwiOptions(), LauncherSettings(ports=ports))
    assert {spec.name: spec.port for spec in specs} == ports
    hub = spec_by_name(specs, "hub").argv
    assert _argv_option(hub, "--stt-uri") == [f"tcp://127.0.0.1:{ports['stt']}"]


# -- print-config -------------------------------------------------------------------------------


def test_print_config_hides_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps(SAMPLE_OPTIONS), encoding="utf-8")
    monkeypatch.setenv("SUPERVISOR_TOKEN", "supervisor-secret")
    monkeypatch.setenv("KIWI_DATA_DIR", str(tmp_path / "data"))
    main(["print-config", "--options", str(path)])
    printed = capsys.readouterr().out
    shown = json.loads(printed)
    assert not any(secret in printed for secret in SECRETS)
    assert shown["options"]["anthropic_api_key"] == "***"
    assert shown["data_dir"] == str(tmp_path / "data")
    assert [p["name"] for p in shown["processes"]] == list(PROCESS_NAMES)


@pytest.mark.parametrize("before_command", [True, False])
def test_options_may_come_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], before_command: bool
) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"language": "fr"}), encoding="utf-8")
    given = ["--options", str(path)]
    main([*given, "print-config"] if before_command else ["print-config", *given])
    assert json.loads(capsys.readouterr().out)["options"]["language"] == "fr"


def test_print_config_shows_unset_secrets_as_unset() -> None:
    shown = describe_config(KiwiOptions(), LauncherSettings(), [])
    options = shown["options"]
    assert isinstance(options, dict)
    assert options["anthropic_api_key"] is None


def test_a_bad_option_stops_kiwi_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"wake_threshold": 2}), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"kiwi: wake_threshold=2\.0 is outside"):
        main(["print-config", "--options", str(path)])
