"""One request/response exchange with a Wyoming service over a fresh TCP connection.

Each call connects, writes its events, and reads until the expected answer or an `error` event.
A connection per request keeps the hub robust: a service restart never leaves a stale socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from urllib.parse import urlparse

from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event

from .errors import ServiceError, ServiceProtocolError, ServiceUnavailable, service_refused

__all__ = ["ServiceError", "ServiceProtocolError", "ServiceUnavailable", "exchange", "tcp_client"]


def tcp_client(
    uri: str, service: str, connect_timeout: float, read_timeout: float
) -> AsyncTcpClient:
    parsed = urlparse(uri)
    if parsed.scheme != "tcp" or not parsed.hostname or not parsed.port:
        raise ServiceUnavailable(service, f"{service} URI {uri!r} must look like tcp://HOST:PORT")
    return AsyncTcpClient(
        parsed.hostname, parsed.port, connect_timeout=connect_timeout, read_timeout=read_timeout
    )


async def exchange(
    uri: str,
    service: str,
    requests: Sequence[Event],
    expect: str,
    *,
    connect_timeout: float = 3.0,
    read_timeout: float = 30.0,
) -> Event:
    """Send `requests`, return the first event of type `expect` (other events are skipped)."""
    client = tcp_client(uri, service, connect_timeout, read_timeout)
    try:
        await client.connect()
    except (TimeoutError, OSError) as err:
        raise ServiceUnavailable(
            service, f"cannot reach the {service} service at {uri}: {err}"
        ) from err
    try:
        for request in requests:
            await client.write_event(request)
        while True:
            event = await client.read_event()
            if event is None:
                raise ServiceUnavailable(service, f"the {service} service at {uri} hung up")
            if Error.is_type(event.type):
                error = Error.from_event(event)
                raise service_refused(service, error.code, error.text)
            if event.type == expect:
                return event
    except TimeoutError as err:
        raise ServiceUnavailable(service, f"the {service} service at {uri} did not answer") from err
    # A service killed mid-event leaves a torn frame: wyoming raises IncompleteReadError.
    except (OSError, ConnectionError, asyncio.IncompleteReadError) as err:
        raise ServiceUnavailable(service, f"lost the {service} service at {uri}: {err}") from err
    finally:
        with contextlib.suppress(OSError, ConnectionError):
            await client.disconnect()
