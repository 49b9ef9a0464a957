"""Requests to a running kiwi-speaker over Wyoming (wyoming's AsyncTcpClient), for tests and bench.

Each request uses its own connection, as the hub does. Helpers assert the answer's type, so a
test reads as what it checks.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe

from tests.support.voices import wav_samples
from tests.support.waiting import until_async
from tests.support.wyoming_events import send_audio as send_events_audio

ANSWER_TIMEOUT_S = 60
send_audio = partial(send_events_audio, chunk_bytes=4096)


async def read_one(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), timeout=ANSWER_TIMEOUT_S)
    assert event is not None, "connection closed"
    return event


async def request(
    port: int, event_type: str, data: dict[str, Any], pcm: bytes | None = None
) -> Event:
    """One request (with an utterance when `pcm` is given) on its own connection; its answer."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Event(type=event_type, data=data))
        if pcm is not None:
            await send_audio(client, pcm)
        return await read_one(client)


async def enroll(port: int, pcm: bytes, **data: Any) -> dict[str, Any]:
    answer = await request(port, "speaker-enroll", data, pcm)
    assert answer.type == "speaker-enrolled", answer
    return answer.data


async def enroll_clips(port: int, clips: tuple[Path, ...], **data: Any) -> dict[str, Any]:
    """A new profile from WAV clips (the first creates it); the last answer."""
    answer = await enroll(port, wav_samples(clips[0]), **data)
    for clip in clips[1:]:
        answer = await enroll(port, wav_samples(clip), id=answer["id"])
    return answer


async def identify(port: int, pcm: bytes) -> dict[str, Any]:
    answer = await request(port, "speaker-identify", {}, pcm)
    assert answer.type == "speaker-identified", answer
    return answer.data


async def profiles(port: int) -> dict[str, dict[str, Any]]:
    answer = await request(port, "speaker-list", {})
    assert answer.type == "speaker-profiles", answer
    return {p["id"]: p for p in answer.data["profiles"]}


async def describe_when_loaded(port: int, timeout_s: float = 60.0) -> dict[str, Any]:
    """The `speaker` program of `describe`, once the encoder has loaded (or failed)."""

    async def loaded() -> dict[str, Any] | None:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info = await read_one(client)
        program: dict[str, Any] = info.data["speaker"][0]
        return None if "loading from" in program["models"][0]["description"] else program

    return await until_async(loaded, "the voice encoder loaded", timeout_s=timeout_s, every_s=0.1)
