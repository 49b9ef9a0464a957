"""Bad input to kiwi-speaker: each gets a clear coded error, nothing is lost, the service lives.

Audio: empty, silent, too short, too quiet, clipped, and every PCM layout Wyoming allows (rates,
widths, channels), mislabelled chunks. The profile store: a file that is not SQLite, a damaged
row, a store from a newer Kiwi: the service starts anyway, keeps the file (renamed), says so in
`describe` and in the hub's /api/status, and serves. Concurrent enrolments of one name.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.ping import Ping

from tests.support.hub_process import start_hub
from tests.support.speaker_client import (
    describe_when_loaded,
    enroll,
    enroll_clips,
    identify,
    profiles,
    read_one,
    send_audio,
)
from tests.support.voices import voice_clips, wav_samples
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(300)

RATE = 16000
OWNER = voice_clips("espeak:en-us+m3")


def pcm16(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def owner_samples(index: int = 0) -> np.ndarray:
    return np.frombuffer(wav_samples(OWNER.test[index]), "<i2").astype(np.float64)


def start_speaker(folder: Path) -> ServiceProcess:
    return start_service(
        "kiwi-speaker", ["--db", str(folder / "speakers.db")], folder / "kiwi-speaker.log"
    )


@pytest.fixture(scope="module")
def speaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, str]]:
    """A service with the owner (espeak m3) enrolled: (service, owner id)."""
    folder = tmp_path_factory.mktemp("speaker-bad-input")
    service = start_speaker(folder)

    async def prepare() -> str:
        await describe_when_loaded(service.port)
        return str((await enroll_clips(service.port, OWNER.enrol, name="Owner"))["id"])

    try:
        yield service, asyncio.run(prepare())
    finally:
        assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log(), service.log()


async def answer_to(
    port: int,
    request: str,
    pcm: bytes,
    *,
    rate: int = RATE,
    width: int = 2,
    channels: int = 1,
    **data: Any,
) -> Event:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Event(type=request, data=data))
        frames = 1024 * width * channels  # whole sample frames in every chunk
        await send_audio(client, pcm, rate=rate, width=width, channels=channels, chunk_bytes=frames)
        answer = await read_one(client)
        await client.write_event(Ping(text="alive?").event())  # the connection stays usable
        assert (await read_one(client)).type == "pong"
        return answer


def assert_error(answer: Event, code: str) -> None:
    assert (answer.type, answer.data.get("code")) == ("error", code), answer
    assert len(answer.data["text"]) > 20  # says what was wrong and what to do


# -- audio ---------------------------------------------------------------------------------------


async def test_audio_that_holds_no_voice_is_refused_with_its_reason(
    speaker: tuple[ServiceProcess, str],
) -> None:
    service, owner_id = speaker
    speech = owner_samples()
    middle = len(speech) // 2
    noise = np.random.default_rng(3).standard_normal(2 * RATE) * 32768 * 10 ** (-75 / 20)
    cases = [
        ("speaker-identify", b"", "no_audio"),  # empty
        ("speaker-enroll", b"", "no_audio"),
        ("speaker-identify", pcm16(np.zeros(2 * RATE)), "no_audio"),  # digital silence
        ("speaker-identify", pcm16(noise), "no_audio"),  # a quiet room at -75 dBFS
        ("speaker-identify", pcm16(speech[middle : middle + 4000]), "audio_too_short"),  # 0.25 s
        ("speaker-enroll", pcm16(speech[middle - 8000 : middle + 8000]), "audio_too_short"),
        ("speaker-enroll", pcm16(speech * 10 ** (-50 / 20)), "audio_too_quiet"),
        ("speaker-enroll", pcm16(speech * 8), "audio_clipped"),
        ("speaker-identify", pcm16(speech * 20), "audio_clipped"),
    ]
    before = await profiles(service.port)
    for request, pcm, code in cases:
        data = {"id": owner_id} if request == "speaker-enroll" else {}
        assert_error(await answer_to(service.port, request, pcm, **data), code)
    after = await profiles(service.port)
    counts = {key: profile["sample_count"] for key, profile in after.items()}
    assert counts == {key: profile["sample_count"] for key, profile in before.items()}
    # A little gain is not clipping, a quieter room is not silence: both still identify.
    for gain in (0.1, 1.5):
        assert (await identify(service.port, pcm16(speech * gain)))["id"] == owner_id


async def test_every_pcm_layout_is_converted_and_still_identifies(
    speaker: tuple[ServiceProcess, str],
) -> None:
    from scipy.signal import resample_poly

    service, owner_id = speaker
    speech = owner_samples(1) / 32768
    stereo_48k = np.repeat(resample_poly(speech, 3, 1), 2)
    layouts = {
        "s24 48 kHz stereo": (
            # little-endian int32 without its top byte: signed 24-bit
            np.round(stereo_48k * 2**23 * 0.9)
            .astype("<i4")
            .view(np.uint8)
            .reshape(-1, 4)[:, :3]
            .tobytes(),
            48000,
            3,
            2,
        ),
        "s32 22.05 kHz": (
            (np.round(resample_poly(speech, 441, 320) * 2**31 * 0.9)).astype("<i4").tobytes(),
            22050,
            4,
            1,
        ),
        "u8 16 kHz": ((np.round(speech * 127) + 128).astype(np.uint8).tobytes(), 16000, 1, 1),
    }
    for name, (pcm, rate, width, channels) in layouts.items():
        answer = await answer_to(
            service.port, "speaker-identify", pcm, rate=rate, width=width, channels=channels
        )
        assert answer.type == "speaker-identified", (name, answer)
        assert answer.data["id"] == owner_id, (name, answer.data)
    telephone = pcm16(resample_poly(speech, 1, 2) * 32768)  # 8 kHz: answered, whatever it decides
    answer = await answer_to(service.port, "speaker-identify", telephone, rate=8000)
    assert answer.type == "speaker-identified"


async def test_a_chunk_in_another_format_than_announced_is_refused(
    speaker: tuple[ServiceProcess, str],
) -> None:
    service, _ = speaker
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Event(type="speaker-identify"))
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        await client.write_event(AudioChunk(RATE, 2, 1, b"\0\0" * 1600).event())
        await client.write_event(AudioChunk(44100, 2, 1, b"\0\0" * 1600).event())
        assert_error(await read_one(client), "bad_audio")
        await client.write_event(AudioStop().event())  # ends the refused utterance quietly
        await client.write_event(Ping(text="alive?").event())
        assert (await read_one(client)).type == "pong"


# -- concurrent enrolments ------------------------------------------------------------------------


async def test_one_name_enrolled_twice_at_once_is_refused_once_and_loses_nothing(
    speaker: tuple[ServiceProcess, str],
) -> None:
    service, _ = speaker
    voice = voice_clips("festival:kal_diphone")
    pcm = wav_samples(voice.enrol[0])
    async with (
        AsyncTcpClient("127.0.0.1", service.port) as first,
        AsyncTcpClient("127.0.0.1", service.port) as second,
    ):
        await first.write_event(Event(type="speaker-enroll", data={"name": "Alice"}))
        await first.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        await first.write_event(AudioChunk(RATE, 2, 1, pcm[:32000]).event())
        await second.write_event(Event(type="speaker-enroll", data={"name": " alice "}))
        assert_error(await read_one(second), "enrollment_busy")
        for offset in range(32000, len(pcm), 32000):
            await first.write_event(AudioChunk(RATE, 2, 1, pcm[offset : offset + 32000]).event())
        await first.write_event(AudioStop().event())
        alice = (await read_one(first)).data
        assert alice["sample_count"] == 1
        # The name is free again once the first enrolment is answered.
        await second.write_event(Event(type="speaker-enroll", data={"name": "Alice"}))
        await send_audio(second, pcm)
        assert (await read_one(second)).type == "speaker-enrolled"

    # Samples for one profile from two connections at once: both are kept.
    results = await asyncio.gather(
        enroll(service.port, wav_samples(voice.enrol[1]), id=alice["id"]),
        enroll(service.port, wav_samples(voice.enrol[2]), id=alice["id"]),
    )
    assert sorted(r["sample_count"] for r in results) == [2, 3]
    assert (await profiles(service.port))[alice["id"]]["sample_count"] == 3


async def test_an_enrolment_that_breaks_off_frees_its_name(
    speaker: tuple[ServiceProcess, str],
) -> None:
    service, _ = speaker
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Event(type="speaker-enroll", data={"name": "Bob"}))
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
    await asyncio.sleep(0.2)  # the service sees the connection close
    bob = await enroll(service.port, wav_samples(OWNER.enrol[0]), name="Bob")
    assert bob["name"] == "Bob"


# -- the profile store ---------------------------------------------------------------------------


def _damaged_row(db: Path) -> None:
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("UPDATE samples SET embedding = x'00112233' WHERE id = 1")


def _from_the_future(db: Path) -> None:
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("PRAGMA user_version = 99")


async def _store_with_a_profile(folder: Path) -> bytes:
    service = start_speaker(folder)
    try:
        await describe_when_loaded(service.port)
        await enroll_clips(service.port, OWNER.enrol, name="Owner")
    finally:
        assert service.stop() == 0
    return (folder / "speakers.db").read_bytes()


@pytest.mark.parametrize("damage", ["not sqlite", "damaged row", "newer schema"])
async def test_a_store_that_cannot_be_used_is_set_aside_and_the_service_serves(
    damage: str, tmp_path: Path
) -> None:
    db = tmp_path / "speakers.db"
    if damage == "not sqlite":
        db.write_bytes(b"these are not the profiles you are looking for\n" * 100)
    else:
        await _store_with_a_profile(tmp_path)
        (_damaged_row if damage == "damaged row" else _from_the_future)(db)
    original = db.read_bytes()

    service = start_speaker(tmp_path)
    try:
        program = await describe_when_loaded(service.port)
        set_aside = program["store"]["set_aside"]
        assert set_aside["original"] == str(db)
        kept = Path(set_aside["moved_to"])
        assert kept.name.startswith("speakers.db.corrupt-")
        assert await asyncio.to_thread(kept.read_bytes) == original  # renamed, never changed
        assert set_aside["reason"]
        assert any(str(kept) in problem for problem in program["problems"])
        # It serves: an empty new store that enrols and identifies.
        assert await profiles(service.port) == {}
        owner = await enroll_clips(service.port, OWNER.enrol, name="Owner")
        assert (await identify(service.port, wav_samples(OWNER.test[0])))["id"] == owner["id"]
        with closing(sqlite3.connect(db)) as check:
            assert check.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log()


async def test_the_hub_reports_a_set_aside_store_in_its_status(tmp_path: Path) -> None:
    speaker_dir = tmp_path / "speaker"
    speaker_dir.mkdir()
    (speaker_dir / "speakers.db").write_bytes(b"garbage" * 500)
    service = start_speaker(speaker_dir)
    try:
        hub = start_hub(tmp_path / "hub", speaker=service)
        try:
            await describe_when_loaded(service.port)
            request = urllib.request.Request(hub.base_url + "/api/status", headers=hub.auth_headers)
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: ASYNC210
                status = json.load(answer)
            [problem] = status["speaker_problems"]
            assert "speakers.db.corrupt-" in problem
            assert status["state"]  # the rest of the status is as always
        finally:
            hub.stop()
    finally:
        assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log()
