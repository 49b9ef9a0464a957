"""kiwi-hub's command line, with an environment variable behind every option, and its secrets.

Secrets are read only from the environment (the launcher passes the add-on's options that way),
so they never show up in `ps` or in the API.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .events import DEFAULT_CLIENT_QUEUE, DEFAULT_LOG_CAPACITY

DEFAULT_PORT = 7789
ADDON_SOULS_DIR = Path("/share/kiwi/souls")


@dataclass(frozen=True, kw_only=True)
class Secrets:
    anthropic_api_key: str | None = None
    telegram_bot_token: str | None = None
    homeassistant_token: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Secrets:
        def first(*names: str) -> str | None:
            return next((environ[n].strip() for n in names if environ.get(n, "").strip()), None)

        return cls(
            anthropic_api_key=first("KIWI_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
            telegram_bot_token=first("KIWI_TELEGRAM_BOT_TOKEN"),
            homeassistant_token=first("KIWI_HA_TOKEN", "SUPERVISOR_TOKEN"),
        )

    def __repr__(self) -> str:  # never print a secret by accident
        return "Secrets(<redacted>)"


@dataclass(frozen=True, kw_only=True)
class HubOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path(".kiwi")
    stt_uri: str = "tcp://127.0.0.1:10300"
    tts_uri: str = "tcp://127.0.0.1:10200"
    wake_uri: str = "tcp://127.0.0.1:10400"
    speaker_uri: str = "tcp://127.0.0.1:10500"
    souls_dir: Path | None = None
    event_log_size: int = DEFAULT_LOG_CAPACITY
    client_queue_size: int = DEFAULT_CLIENT_QUEUE
    initial_soul: str = "default"
    in_addon: bool = False
    log_level: str = "info"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "api_token"

    @property
    def instance_file(self) -> Path:
        return self.data_dir / "instance_id"

    @property
    def database(self) -> Path:
        return self.data_dir / "kiwi.db"


def parse_options(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> HubOptions:
    env = os.environ if environ is None else environ

    def env_port_uri(variable: str, port: int) -> str:
        return f"tcp://127.0.0.1:{env.get(variable) or port}"

    in_addon = bool(env.get("SUPERVISOR_TOKEN"))
    data_dir = Path(env.get("KIWI_DATA_DIR") or ("/data" if in_addon else ".kiwi"))
    parser = argparse.ArgumentParser(prog="kiwi-hub", description="Kiwi's REST and event hub")
    parser.add_argument(
        "--host", default=env.get("KIWI_HOST") or env.get("KIWI_BIND_HOST") or "127.0.0.1"
    )
    parser.add_argument("--port", type=int, default=int(env.get("KIWI_PORT") or DEFAULT_PORT))
    parser.add_argument("--data-dir", type=Path, default=data_dir)
    parser.add_argument(
        "--stt-uri", default=env.get("KIWI_STT_URI") or env_port_uri("KIWI_STT_PORT", 10300)
    )
    parser.add_argument(
        "--tts-uri", default=env.get("KIWI_TTS_URI") or env_port_uri("KIWI_TTS_PORT", 10200)
    )
    parser.add_argument(
        "--wake-uri", default=env.get("KIWI_WAKE_URI") or env_port_uri("KIWI_WAKE_PORT", 10400)
    )
    parser.add_argument(
        "--speaker-uri",
        default=env.get("KIWI_SPEAKER_URI") or env_port_uri("KIWI_SPEAKER_PORT", 10500),
    )
    parser.add_argument(
        "--souls-dir",
        type=Path,
        default=env.get("KIWI_SOULS_DIR") or (ADDON_SOULS_DIR if in_addon else None),
        help="folder of the user's souls (*.md); default <data-dir>/souls",
    )
    parser.add_argument(
        "--event-log-size",
        type=int,
        default=int(env.get("KIWI_EVENT_LOG_SIZE") or DEFAULT_LOG_CAPACITY),
        help="events kept for replay (?since=)",
    )
    parser.add_argument(
        "--client-queue-size",
        type=int,
        default=int(env.get("KIWI_CLIENT_QUEUE_SIZE") or DEFAULT_CLIENT_QUEUE),
        help="events a WebSocket client may fall behind before it is disconnected",
    )
    parser.add_argument(
        "--log-level",
        default=env.get("KIWI_LOG_LEVEL") or "info",
        choices=("debug", "info", "warning", "error"),
    )
    args = parser.parse_args(argv)
    for name in ("event_log_size", "client_queue_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return HubOptions(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        stt_uri=args.stt_uri,
        tts_uri=args.tts_uri,
        wake_uri=args.wake_uri,
        speaker_uri=args.speaker_uri,
        souls_dir=args.souls_dir if args.souls_dir is not None else args.data_dir / "souls",
        event_log_size=args.event_log_size,
        client_queue_size=args.client_queue_size,
        initial_soul=(env.get("KIWI_SOUL") or "default").strip(),
        in_addon=in_addon,
        log_level=args.log_level,
    )
