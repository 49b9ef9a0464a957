"""The base of every Kiwi Wyoming handler: bounded reads, errors as events, a live connection.

A subclass implements `handle_event` for its own events and raises `ServiceError` for bad
input; this base turns that into a Wyoming `error` event and keeps reading, so one bad
event never takes the server down. One exception: when the event that failed is one the
client now waits on for its answer (`ANSWERED_EVENTS`, e.g. STT's audio-stop), the
connection closes after the error event. Home Assistant's Wyoming client ignores `error`
events and waits for the answer or the end of the connection, as the reference servers
close it; an open connection would leave it waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from typing import TypeVar, cast

from wyoming.event import Event, Eventable
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler

from .errors import ErrorCode, ServiceError
from .framing import FrameLimits, MalformedFrame, OversizedEvent, read_event_bounded

_LOGGER = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=Eventable)


def parse_event(event_class: type[EventT], event: Event) -> EventT:
    """`event_class.from_event(event)`, with missing or mistyped fields as `bad_request`."""
    try:
        return cast(EventT, event_class.from_event(event))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ServiceError(ErrorCode.BAD_REQUEST, f"malformed {event.type} event: {err!r}") from err


class ServiceEventHandler(AsyncEventHandler):
    """One connection of a Kiwi Wyoming service."""

    #: Event types that complete a request: if one fails, the error ends the connection.
    ANSWERED_EVENTS: frozenset[str] = frozenset()

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        frame_limits: FrameLimits | None = None,
    ) -> None:
        super().__init__(reader, writer)
        self.frame_limits = frame_limits or FrameLimits()
        peer = writer.get_extra_info("peername")
        self.client_id = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "local"

    @abstractmethod
    async def handle_event(self, event: Event) -> bool:
        """Handle one event; raise ServiceError for bad input. False closes the connection."""

    def reset_request(self) -> None:
        """Forget a half-received request after an error (override when there is state)."""

    def client_gone(self) -> bool:
        """True once the client closed its side; long work checks it between steps."""
        return self.writer.is_closing() or self.reader.at_eof()

    async def write_error(self, error: ServiceError) -> None:
        _LOGGER.warning("%s: %s: %s", self.client_id, error.code, error.text)
        await self.write_event(error.event())

    async def run(self) -> None:
        """Read events until the client leaves; never let a bad request end the loop."""
        self._is_running = True
        try:
            while self._is_running:
                result = await read_event_bounded(self.reader, self.frame_limits)
                if result is None:
                    break
                if isinstance(result, MalformedFrame):
                    await self.write_error(ServiceError(ErrorCode.BAD_REQUEST, result.reason))
                    break
                if isinstance(result, OversizedEvent):
                    self.reset_request()
                    await self.write_error(
                        ServiceError(
                            ErrorCode.PAYLOAD_TOO_LARGE,
                            f"{result.event_type} event of {result.byte_count} bytes is over "
                            f"the limit of {result.limit} bytes",
                        )
                    )
                    if result.event_type in self.ANSWERED_EVENTS:
                        break
                    continue
                if not await self._dispatch(result):
                    break
        except ConnectionError:
            _LOGGER.debug("%s: connection lost", self.client_id)
        finally:
            self.reset_request()
            await self.disconnect()
            self.writer.close()

    async def _dispatch(self, event: Event) -> bool:
        _LOGGER.debug("%s: received %s", self.client_id, event.type)
        if Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
            return True
        try:
            return await self.handle_event(event)
        except ServiceError as error:
            self.reset_request()
            await self.write_error(error)
        except ConnectionError:
            raise
        except Exception:
            _LOGGER.exception("%s: unexpected failure handling %s", self.client_id, event.type)
            self.reset_request()
            await self.write_error(
                ServiceError(ErrorCode.INTERNAL_ERROR, f"internal error handling {event.type}")
            )
        return event.type not in self.ANSWERED_EVENTS
