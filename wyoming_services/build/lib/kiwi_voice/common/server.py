"""The command line and run loop every Kiwi Wyoming service shares.

CLI conventions follow the rhasspy/OHF wyoming services (`--uri`, repeatable `--data-dir`,
`--download-dir`, `--zeroconf [NAME]`, `--debug`), with defaults from Kiwi's environment
(`KIWI_DATA_DIR`, `KIWI_<SERVICE>_PORT`). SIGTERM and SIGINT stop the server gracefully:
it stops accepting, closes open connections and returns, so supervisors see a clean exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from wyoming.server import AsyncServer, AsyncTcpServer, HandlerFactory

from .info import KIWI_VERSION

_LOGGER = logging.getLogger(__name__)

DEFAULT_DATA_DIR = ".kiwi"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones ("default: None" says nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def kiwi_models_dir() -> Path:
    """`$KIWI_DATA_DIR/models` (default ./.kiwi/models)."""
    return Path(os.environ.get("KIWI_DATA_DIR", DEFAULT_DATA_DIR)) / "models"


def build_parser(
    *,
    prog: str,
    description: str,
    port_env: str,
    default_port: int,
    models_subdir: str,
    zeroconf_name: str,
    default_workers: int = 1,
) -> argparse.ArgumentParser:
    """A parser with the options every service has; the service adds its own."""
    port = os.environ.get(port_env, str(default_port))
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--uri",
        default=f"tcp://0.0.0.0:{port}",
        help=f"tcp://HOST:PORT or unix://PATH ({port_env})",
    )
    parser.add_argument(
        "--data-dir",
        action="append",
        type=Path,
        help="directory searched for models, in the order given (repeatable; "
        f"default: $KIWI_DATA_DIR/models/{models_subdir})",
    )
    parser.add_argument(
        "--download-dir",
        type=Path,
        help="where missing models are downloaded (default: the first --data-dir)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers,
        help="engine worker threads: at most this many requests run at once, the rest queue",
    )
    parser.add_argument(
        "--zeroconf",
        nargs="?",
        const=zeroconf_name,
        help=f"announce the service over mDNS, optionally as NAME (default: {zeroconf_name})",
    )
    parser.add_argument("--debug", action="store_true", help="log DEBUG messages")
    parser.add_argument("--log-format", default=LOG_FORMAT, help="format of log lines")
    parser.add_argument("--version", action="version", version=KIWI_VERSION)
    parser.set_defaults(models_subdir=models_subdir)
    return parser


def parse_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    """Parse, fill the data/download dir defaults and configure logging."""
    args = parser.parse_args(argv)
    if not args.data_dir:
        args.data_dir = [kiwi_models_dir() / args.models_subdir]
    if args.download_dir is None:
        args.download_dir = args.data_dir[0]
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=args.log_format)
    _LOGGER.debug("arguments: %s", args)
    return args


async def serve(
    uri: str,
    handler_factory: HandlerFactory,
    *,
    zeroconf_name: str | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> None:
    """Serve Wyoming on `uri` until SIGTERM/SIGINT, then shut down cleanly."""
    server = AsyncServer.from_uri(uri)
    if not hasattr(server, "start") or uri.startswith("stdio"):
        raise ValueError("Kiwi services listen on tcp:// or unix:// URIs")
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)

    await server.start(handler_factory)
    if zeroconf_name:
        try:
            await _announce(server, zeroconf_name)
        except (OSError, ValueError) as err:  # no multicast route: serve unannounced
            _LOGGER.warning("Zeroconf announcement failed, serving without it: %s", err)
    _LOGGER.info("Ready on %s", uri)
    try:
        await stop_requested.wait()
        _LOGGER.info("Stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await server.stop()
        if on_shutdown is not None:
            on_shutdown()
    _LOGGER.info("Stopped")


async def _announce(server: AsyncServer, name: str) -> None:
    if not isinstance(server, AsyncTcpServer):
        raise ValueError("--zeroconf needs a tcp:// URI")
    from wyoming.zeroconf import HomeAssistantZeroconf

    host = server.host if server.host not in ("0.0.0.0", "::", "") else None
    await HomeAssistantZeroconf(port=server.port, name=name, host=host).register_server()
    _LOGGER.info("Announced over zeroconf as %s", name)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async `main`; Ctrl-C before the signal handlers are installed exits quietly."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
