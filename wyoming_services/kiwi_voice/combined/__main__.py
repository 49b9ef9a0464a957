"""`python -m kiwi_voice.combined`: one Wyoming port in front of Kiwi's STT, TTS and wake."""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path

from kiwi_voice.common.server import LOG_FORMAT, run, serve

from .handler import CombinedEventHandler
from .hub_report import HubReporter
from .info import InfoCollector
from .routing import Mode

_LOGGER = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kiwi_voice.combined",
        description="Kiwi's STT, TTS and wake word services on one Wyoming port.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--uri", default="tcp://0.0.0.0:10700", help="where to listen")
    parser.add_argument("--stt-uri", default="tcp://127.0.0.1:10300", help="Kiwi's STT service")
    parser.add_argument("--tts-uri", default="tcp://127.0.0.1:10200", help="Kiwi's TTS service")
    parser.add_argument("--wake-uri", default="tcp://127.0.0.1:10400", help="Kiwi's wake service")
    parser.add_argument(
        "--speaker-uri",
        default=None,
        help="Kiwi's speaker service: identify who spoke the STT audio (none: do not)",
    )
    parser.add_argument(
        "--hub-url",
        default=None,
        help="the Kiwi hub, told of every Assist turn (e.g. http://127.0.0.1:7789; none: not)",
    )
    parser.add_argument(
        "--hub-token-file", type=Path, default=None, help="the hub's API token (api_token)"
    )
    parser.add_argument("--debug", action="store_true", help="log DEBUG messages")
    return parser


async def _main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=LOG_FORMAT)
    backends = {Mode.ASR: args.stt_uri, Mode.TTS: args.tts_uri, Mode.WAKE: args.wake_uri}
    _LOGGER.info(
        "Routing stt to %s, tts to %s, wake to %s", args.stt_uri, args.tts_uri, args.wake_uri
    )
    reporter = HubReporter(args.hub_url, args.hub_token_file) if args.hub_url else None
    handler_factory = partial(
        CombinedEventHandler,
        backends=backends,
        info=InfoCollector(backends),
        reporter=reporter,
        speaker_uri=args.speaker_uri if reporter is not None else None,
    )
    # Shared with the services: stops cleanly on SIGTERM and SIGINT.
    await serve(args.uri, handler_factory)


def main() -> None:
    run(_main)


if __name__ == "__main__":
    main()
