"""Options + environment → the processes Kiwi runs: a pure mapping, the heart of the launcher.

The standalone launcher and the add-on's s6 services both start exactly these command lines, so
what a developer runs with `kiwi` is what the add-on runs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .options import KiwiOptions
from .settings import LauncherSettings, core_api_url


class Protocol(StrEnum):
    WYOMING = "wyoming"
    HTTP = "http"


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    """One child process: its command line, what it adds to the environment, where it listens."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    port: int
    protocol: Protocol = Protocol.WYOMING


# Start order: the hub last, because it is a client of every other process.
PROCESS_NAMES = ("stt", "tts", "wake", "speaker", "combined", "hub")
# The add-on's wake_second_look: the wake word must reach the trigger level again within this
# many 80 ms frames (the setting measured in docs/wake.md).
WAKE_SECOND_LOOK_FRAMES = 2


def build_process_specs(
    options: KiwiOptions,
    settings: LauncherSettings,
    python: str = sys.executable,
    environ: Mapping[str, str] | None = None,
) -> list[ProcessSpec]:
    """Every process Kiwi runs, in start order.

    `environ` is read only for what the add-on's container provides (SUPERVISOR_TOKEN); secrets go
    to children in their environment, never on a command line that `ps` shows.
    """
    env = {} if environ is None else environ
    host = settings.bind_host
    local = "127.0.0.1"  # children reach each other on loopback whatever interface they bind
    common_env = {"PYTHONUNBUFFERED": "1"}
    # The Wyoming services share one CLI (kiwi_voice.common.server): INFO, or DEBUG with --debug.
    debug = ("--debug",) if options.log_level == "debug" else ()

    def wyoming_uri(process: str, bind: str) -> str:
        return f"tcp://{bind}:{settings.port(process)}"

    def model_dirs(kind: str) -> tuple[str, ...]:
        args: list[str] = []
        for root in settings.model_roots:
            args += ["--data-dir", str(root / kind)]
        return (*args, "--download-dir", str(settings.models_dir / kind))

    def module(name: str) -> tuple[str, ...]:
        return (python, "-m", f"kiwi_voice.{name}")

    def service(name: str, process: str) -> tuple[str, ...]:
        return (*module(name), "--uri", wyoming_uri(process, host), *debug)

    stt = ProcessSpec(
        name="stt",
        argv=(
            *service("stt", "stt"),
            "--model", options.stt_model,
            "--compute-type", options.stt_compute_type,
            "--language", options.language,
            *model_dirs("whisper"),
        ),
        env=common_env,
        port=settings.port("stt"),
    )  # fmt: skip
    tts = ProcessSpec(
        name="tts",
        argv=(
            *service("tts", "tts"),
            "--voice", options.tts_voice,
            *model_dirs("piper"),
        ),
        env=common_env,
        port=settings.port("tts"),
    )  # fmt: skip
    wake = ProcessSpec(
        name="wake",
        argv=(
            *service("wake", "wake"),
            "--wake-word", options.wake_word,
            "--threshold", f"{options.wake_threshold:g}",
            *(("--second-look-frames", str(WAKE_SECOND_LOOK_FRAMES))
              if options.wake_second_look else ()),
            *model_dirs("openwakeword"),
        ),
        env=common_env,
        port=settings.port("wake"),
    )  # fmt: skip
    speaker = ProcessSpec(
        name="speaker",
        argv=(
            *service("speaker", "speaker"),
            "--db", str(settings.data_dir / "speakers.db"),
            *model_dirs("resemblyzer"),
        ),
        env=common_env,
        port=settings.port("speaker"),
    )  # fmt: skip
    combined = ProcessSpec(
        name="combined",
        argv=(
            *service("combined", "combined"),
            "--stt-uri", wyoming_uri("stt", local),
            "--tts-uri", wyoming_uri("tts", local),
            "--wake-uri", wyoming_uri("wake", local),
            # Assist turns through this endpoint reach the hub (kiwi_voice/combined/hub_report.py).
            "--speaker-uri", wyoming_uri("speaker", local),
            "--hub-url", f"http://{local}:{settings.port('hub')}",
            "--hub-token-file", str(settings.data_dir / "api_token"),
        ),
        env=common_env,
        port=settings.port("combined"),
    )  # fmt: skip
    hub = ProcessSpec(
        name="hub",
        argv=(
            *module("hub"),
            "--host", host,
            "--port", str(settings.port("hub")),
            "--data-dir", str(settings.data_dir),
            "--stt-uri", wyoming_uri("stt", local),
            "--tts-uri", wyoming_uri("tts", local),
            "--wake-uri", wyoming_uri("wake", local),
            "--speaker-uri", wyoming_uri("speaker", local),
            "--log-level", options.log_level,
        ),
        env={**common_env, **_hub_env(options, env)},
        port=settings.port("hub"),
        protocol=Protocol.HTTP,
    )  # fmt: skip
    return [stt, tts, wake, speaker, combined, hub]


def _hub_env(options: KiwiOptions, environ: Mapping[str, str]) -> dict[str, str]:
    """The hub's settings (kiwi_voice.hub.settings reads KIWI_<FIELD>, secrets from the env)."""
    hub_env = {
        "KIWI_LANGUAGE": options.language,
        "KIWI_SOUL": options.soul,
        "KIWI_STT_MODEL": options.stt_model,
        "KIWI_TTS_VOICE": options.tts_voice,
        "KIWI_WAKE_WORD": options.wake_word,
        "KIWI_ANTHROPIC_MODEL": options.anthropic_model,
        "KIWI_GUEST_POLICY": options.guest_policy,
        "KIWI_UNKNOWN_SPEAKER_POLICY": options.unknown_speaker_policy,
        "KIWI_APPROVALS_VIA_API": "true" if options.approvals_via_api else "false",
    }
    if options.anthropic_api_key:
        hub_env["ANTHROPIC_API_KEY"] = options.anthropic_api_key
    if options.telegram_bot_token:
        hub_env["KIWI_TELEGRAM_BOT_TOKEN"] = options.telegram_bot_token
    if options.telegram_chat_id:
        hub_env["KIWI_TELEGRAM_CHAT_ID"] = options.telegram_chat_id
    if options.telegram_owner_ids:
        hub_env["KIWI_TELEGRAM_OWNER_IDS"] = options.telegram_owner_ids
    if supervisor_token := environ.get("SUPERVISOR_TOKEN"):
        # Inside the add-on, Home Assistant's API is the Supervisor's proxy (homeassistant_api).
        hub_env["KIWI_HA_URL"] = core_api_url(environ)
        hub_env["KIWI_HA_TOKEN"] = supervisor_token
    return hub_env


def spec_by_name(specs: list[ProcessSpec], name: str) -> ProcessSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    raise KeyError(f"no process named {name!r}; Kiwi runs {', '.join(s.name for s in specs)}")
