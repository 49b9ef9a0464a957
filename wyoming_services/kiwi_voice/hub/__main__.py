"""kiwi-hub: Kiwi's REST API and event stream (default port 7789).

Exit codes: 0 after a shutdown (POST /api/shutdown, SIGTERM, SIGINT); 75 after POST /api/restart,
which the launcher and the add-on's service restart on; 1 when it cannot start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web

from .access_log import RedactingAccessLogger
from .context import describe
from .options import HubOptions, parse_options
from .wiring import build_hub

_LOGGER = logging.getLogger("kiwi_voice.hub")
SHUTDOWN_TIMEOUT_SECONDS = 3.0


async def serve(options: HubOptions, environ: Mapping[str, str]) -> int:
    hub = build_hub(options, environ)
    context = hub.context
    runner = web.AppRunner(
        hub.app,
        access_log_class=RedactingAccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, options.host, options.port).start()
    except OSError as err:
        _LOGGER.error("Cannot listen on %s:%s: %s", options.host, options.port, err)
        await runner.cleanup()
        return 1
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, context.lifecycle.request_stop, "signal")
    host, port = runner.addresses[0][:2]
    _LOGGER.info(
        "Kiwi hub %s listening on http://%s:%s %s", context.version, host, port, describe(context)
    )
    await context.lifecycle.wait()
    _LOGGER.info("Stopping (%s)", context.lifecycle.reason)
    await runner.cleanup()
    return context.lifecycle.exit_code


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["feed"]:  # `kiwi-hub feed FILE.wav`: a client of a running hub
        from .audio.feed_cli import main as feed_main

        sys.exit(feed_main(arguments[1:]))
    if arguments[:1] in (["talk"], ["say"]):  # one spoken or typed turn, events as they happen
        from .audio.talk_cli import main as talk_main

        sys.exit(talk_main(arguments[0], arguments[1:]))
    options = parse_options(arguments)
    logging.basicConfig(
        level=options.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    sys.exit(asyncio.run(serve(options, os.environ)))


if __name__ == "__main__":
    main()
