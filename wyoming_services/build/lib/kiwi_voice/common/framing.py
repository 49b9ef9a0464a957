"""Reading Wyoming events with size limits.

wyoming's `async_read_event` trusts the `data_length` / `payload_length` a client announces
and reads that much into memory. Kiwi's services read through `read_event_bounded`, which
skips (without keeping) an oversized part and reports it, so the connection stays in sync
and the client hears an error instead of the server running out of memory.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from wyoming.event import Event

_SKIP_BLOCK = 64 * 1024


@dataclass(frozen=True)
class FrameLimits:
    max_data_bytes: int = 1 * 1024 * 1024
    max_payload_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class OversizedEvent:
    """An event whose data or payload was over the limits and was skipped."""

    event_type: str
    byte_count: int
    limit: int


@dataclass(frozen=True)
class MalformedFrame:
    """A header that is not a Wyoming event; the stream cannot be resynchronised."""

    reason: str


ReadResult = Event | OversizedEvent | MalformedFrame | None


async def read_event_bounded(reader: asyncio.StreamReader, limits: FrameLimits) -> ReadResult:
    """The next event, an `OversizedEvent` / `MalformedFrame` marker, or None at end of stream."""
    try:
        line = await reader.readline()
    except ValueError:  # asyncio's line limit: a header that long is not Wyoming
        return MalformedFrame("event header line is too long")
    except (ConnectionError, asyncio.IncompleteReadError):
        return None
    if not line:
        return None
    try:
        header = json.loads(line)
        event_type = header["type"]
        data = header.get("data") or {}
        data_length = int(header.get("data_length") or 0)
        payload_length = int(header.get("payload_length") or 0)
        if not isinstance(event_type, str) or not isinstance(data, dict):
            raise TypeError("type must be a string and data an object")
    except (ValueError, KeyError, TypeError) as err:
        return MalformedFrame(f"not a Wyoming event header: {err}")
    if data_length < 0 or payload_length < 0:
        return MalformedFrame("negative data or payload length")

    try:
        if data_length > limits.max_data_bytes or payload_length > limits.max_payload_bytes:
            await _skip(reader, data_length + payload_length)
            too_big, limit = (
                (data_length, limits.max_data_bytes)
                if data_length > limits.max_data_bytes
                else (payload_length, limits.max_payload_bytes)
            )
            return OversizedEvent(event_type, too_big, limit)
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                return MalformedFrame("event data is not a JSON object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except (ConnectionError, asyncio.IncompleteReadError):
        return None
    except ValueError as err:
        return MalformedFrame(f"event data is not JSON: {err}")
    return Event(type=event_type, data=data, payload=payload)


async def _skip(reader: asyncio.StreamReader, byte_count: int) -> None:
    remaining = byte_count
    while remaining > 0:
        block = await reader.read(min(remaining, _SKIP_BLOCK))
        if not block:
            raise asyncio.IncompleteReadError(b"", remaining)
        remaining -= len(block)
