"""Talking to a Kiwi Wyoming service from a test: send an utterance, read events up to one type.

Uses the `wyoming` client library (both test environments have it).
"""

from __future__ import annotations

import asyncio

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

EVENT_TIMEOUT_S = 30


async def read_until(client: AsyncTcpClient, *types: str, limit: int) -> list[Event]:
    """Events up to and including the first one of `types` (or an error).

    `limit` bounds how many events a test waits through, so a runaway stream fails the test.
    """
    events: list[Event] = []
    for _ in range(limit):
        event = await asyncio.wait_for(client.read_event(), timeout=EVENT_TIMEOUT_S)
        assert event is not None, f"connection closed after {[e.type for e in events[-5:]]}"
        events.append(event)
        if event.type in types or event.type == "error":
            return events
    raise AssertionError(f"no {types} in {limit} events")


async def send_audio(
    client: AsyncTcpClient,
    pcm: bytes,
    *,
    rate: int = 16_000,
    width: int = 2,
    channels: int = 1,
    chunk_bytes: int = 3200,
    first_timestamp: int | None = None,
) -> None:
    """audio-start, `pcm` in audio-chunks of `chunk_bytes` (timestamped in ms from
    `first_timestamp` when given), audio-stop."""
    await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
    bytes_per_ms = rate * width * channels // 1000
    for offset in range(0, len(pcm), chunk_bytes):
        timestamp = None if first_timestamp is None else first_timestamp + offset // bytes_per_ms
        chunk = AudioChunk(rate, width, channels, pcm[offset : offset + chunk_bytes], timestamp)
        await client.write_event(chunk.event())
    await client.write_event(AudioStop().event())
