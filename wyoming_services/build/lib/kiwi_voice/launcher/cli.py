"""`kiwi`: start Kiwi. The command line; each subcommand is a few lines over the modules beside it.

kiwi [--options FILE]                      every process, supervised (what `make run` does)
kiwi run-service NAME [--options FILE]     exec one process (an s6 longrun in the add-on)
kiwi service-finished NAME CODE [SIGNAL]   an s6 finish script: restart, or stop the add-on
kiwi discovery [--options FILE]            tell Home Assistant about Kiwi once its ports answer
kiwi print-config [--options FILE]         show the processes and settings, secrets hidden
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from .options import KiwiOptions, OptionsError, load_options
from .settings import LauncherSettings, SettingsError, settings_from_environ
from .specs import PROCESS_NAMES, ProcessSpec, build_process_specs, spec_by_name

_LOGGER = logging.getLogger("kiwi")

EXIT_CONFIG_ERROR = 2
SECRET_ENV = frozenset(
    {"ANTHROPIC_API_KEY", "KIWI_TELEGRAM_BOT_TOKEN", "KIWI_HA_TOKEN", "SUPERVISOR_TOKEN"}
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiwi",
        description="Start Kiwi: the hub and the Wyoming services.",
        epilog="Environment: KIWI_DATA_DIR (default ./.kiwi), KIWI_PORT (7789), KIWI_STT_PORT "
        "(10300), KIWI_TTS_PORT (10200), KIWI_WAKE_PORT (10400), KIWI_SPEAKER_PORT (10500), "
        "KIWI_WYOMING_PORT (10700), KIWI_BIND_HOST (127.0.0.1), KIWI_MODELS_PATH.",
    )
    options = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand without --options keeps one given before it (`kiwi --options F run`).
    options.add_argument(
        "--options",
        type=Path,
        default=argparse.SUPPRESS,
        help="the add-on's options.json (default: built-in defaults)",
    )
    parser.add_argument("--options", type=Path, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", parents=[options], help="start every process (the default)")
    run_one = sub.add_parser("run-service", parents=[options], help="exec one process")
    run_one.add_argument("name", choices=PROCESS_NAMES)
    finished = sub.add_parser("service-finished", help="decide after an s6 service exited")
    finished.add_argument("name", choices=PROCESS_NAMES)
    finished.add_argument("exit_code", type=int)
    finished.add_argument("signal", type=int, nargs="?", default=0)
    discovery = sub.add_parser("discovery", parents=[options], help="send Supervisor discovery")
    discovery.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds to wait for the ports (models may download first)",
    )
    sub.add_parser("print-config", parents=[options], help="show what would run")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_environ()
        options = load_options(args.options)
    except (OptionsError, SettingsError) as err:
        sys.exit(f"kiwi: {err}")
    logging.basicConfig(
        level=logging.DEBUG if options.log_level == "debug" else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    specs = build_process_specs(options, settings, environ=os.environ)
    command = args.command or "run"
    if command == "run":
        sys.exit(_run_all(specs, settings))
    if command == "run-service":
        _exec_one(spec_by_name(specs, args.name))
    if command == "service-finished":
        from .s6 import service_finished

        sys.exit(service_finished(args.name, args.exit_code, args.signal))
    if command == "discovery":
        sys.exit(_discovery(settings, args.timeout))
    if command == "print-config":
        print(json.dumps(describe_config(options, settings, specs), indent=2))


def _run_all(specs: list[ProcessSpec], settings: LauncherSettings) -> int:
    from .models_report import log_model_roots
    from .supervisor import ProcessGroup

    _LOGGER.info("Kiwi data in %s", settings.data_dir.resolve())
    log_model_roots(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> int:
        group = ProcessGroup(specs, probe_host="127.0.0.1")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, group.request_stop)
        return await group.run()

    return asyncio.run(run())


def _exec_one(spec: ProcessSpec) -> None:
    """Replace this process with the service, so s6 supervises and signals it directly."""
    from .s6 import wait_before_start

    wait_before_start(spec.name)
    _LOGGER.info("Starting %s on port %d", spec.name, spec.port)
    os.execvpe(spec.argv[0], list(spec.argv), {**os.environ, **spec.env})


def _discovery(settings: LauncherSettings, timeout: float) -> int:
    from .discovery import DiscoveryError, announce

    try:
        asyncio.run(announce(settings, ports_wait_s=timeout))
    except DiscoveryError as err:
        _LOGGER.error("Discovery not sent: %s", err)
        return 1
    return 0


def describe_config(
    options: KiwiOptions, settings: LauncherSettings, specs: list[ProcessSpec]
) -> dict[str, object]:
    """What `print-config` shows: enough to debug a setup, never a secret."""
    option_values = {
        key: ("***" if value and key in {"anthropic_api_key", "telegram_bot_token"} else value)
        for key, value in asdict(options).items()
    }
    return {
        "data_dir": str(settings.data_dir),
        "model_roots": [str(p) for p in settings.model_roots],
        "options": option_values,
        "processes": [
            {
                "name": spec.name,
                "port": spec.port,
                "argv": list(spec.argv),
                "env": {k: ("***" if k in SECRET_ENV else v) for k, v in spec.env.items()},
            }
            for spec in specs
        ],
    }
