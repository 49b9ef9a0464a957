"""Does a port answer? Used to log readiness and to hold discovery until the services are up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

CONNECT_TIMEOUT_S = 1.0


async def port_answers(host: str, port: int, limit_s: float = CONNECT_TIMEOUT_S) -> bool:
    """True when a TCP connection to host:port is accepted."""
    try:
        async with asyncio.timeout(limit_s):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_for_ports(
    host: str, ports: Iterable[int], wait_s: float, poll_s: float = 0.5
) -> list[int]:
    """Wait until every port answers or `wait_s` passes; the ports that still do not answer."""
    waiting = list(ports)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while waiting:
        answers = await asyncio.gather(*(port_answers(host, p) for p in waiting))
        waiting = [p for p, ok in zip(waiting, answers, strict=True) if not ok]
        if not waiting or loop.time() >= deadline:
            break
        await asyncio.sleep(poll_s)
    return waiting
