"""kiwi-speaker as a real process on a real port, driven by wyoming's AsyncTcpClient.

Voices are espeak-ng variants, which resemblyzer tells apart (see /work/shared/TESTDATA.md):
`en-us+m3` and `en-us+f2` are the enrolled speakers (three sentences each: a profile is named
only once it has three samples), `en-us+Annie` a stranger and `en-us+klatt` plays Kiwi's own
voice. Test sentences differ from the enrolment sentences. The open-set targets on many more
voices are in test_speaker_open_set.py; bad input in test_speaker_bad_input.py.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import resample_poly
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping

from kiwi_voice.common.info import KIWI_VERSION
from tests.support.speaker_client import (
    describe_when_loaded,
    enroll,
    identify,
    profiles,
    read_one,
    request,
    send_audio,
)
from tests.support.speech import espeak_pcm
from tests.support.voices import ENROL_SENTENCES, TEST_SENTENCES
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(180)

RATE, WIDTH, CHANNELS = 16000, 2, 1
OWNER, FRIEND, STRANGER, KIWI = "en-us+m3", "en-us+f2", "en-us+Annie", "en-us+klatt"
SENTENCES = (*ENROL_SENTENCES, *TEST_SENTENCES)  # 0-2 enrol, 3-8 test
PROFILE_ID = re.compile(r"^spk_[0-9a-f]{8}$")


def speech(voice: str, sentence: int) -> bytes:
    return espeak_pcm(SENTENCES[sentence], voice=voice)


def start_speaker(db: Path, log: Path, *extra: str) -> ServiceProcess:
    return start_service("kiwi-speaker", ["--db", str(db), "--workers", "2", *extra], log)


@pytest.fixture(scope="module")
def speaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("speaker")
    service = start_speaker(folder / "speakers.db", folder / "kiwi-speaker.log")
    yield service
    assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log(), service.log()


async def enroll_voice(port: int, voice: str, **data: Any) -> dict[str, Any]:
    """A new profile from the three enrolment sentences of `voice`; the last answer."""
    first = await enroll(port, speech(voice, 0), **data)
    await enroll(port, speech(voice, 1), id=first["id"])
    return await enroll(port, speech(voice, 2), id=first["id"])


async def error_then_alive(client: AsyncTcpClient, code: str) -> None:
    error = await read_one(client)
    assert (error.type, error.data.get("code")) == ("error", code), error
    assert error.data["text"]
    await client.write_event(Ping(text="alive?").event())
    assert (await read_one(client)).type == "pong"


async def test_describe_states_the_program_and_its_model(speaker: ServiceProcess) -> None:
    async with AsyncTcpClient("127.0.0.1", speaker.port) as client:
        await client.write_event(Describe().event())
        info = await read_one(client)
    assert info.type == "info"
    assert info.data["wake"] == info.data["asr"] == []  # nothing Home Assistant could misuse
    program = await describe_when_loaded(speaker.port)
    assert info.data["speaker"][0]["name"] == program["name"]
    assert program["name"] == "kiwi-speaker"
    assert program["installed"]
    assert program["version"] == KIWI_VERSION
    assert program["thresholds"] == {"identify": 0.81, "self": 0.85, "score": 0.0, "margin": 0.03}
    assert program["workers"] == 2
    assert program["problems"] == []
    assert program["store"]["set_aside"] is None
    assert program["background_cohort"]["in_use"]
    assert program["background_cohort"]["voices"] >= 80
    assert "speaker-identify" in program["events"]
    [model] = program["models"]
    assert model["name"] == "resemblyzer-voice-encoder"
    assert model["installed"]
    assert model["attribution"]["url"] == "https://github.com/resemble-ai/Resemblyzer"


async def test_voices_are_enrolled_told_apart_and_strangers_are_unknown(
    speaker: ServiceProcess,
) -> None:
    owner = await enroll(speaker.port, speech(OWNER, 0), name="Owner", priority=0)
    assert PROFILE_ID.match(owner["id"])
    assert (owner["name"], owner["priority"], owner["sample_count"]) == ("Owner", 0, 1)
    assert (owner["ready"], owner["samples_needed"], owner["threshold"]) == (False, 2, None)
    early = await identify(speaker.port, speech(OWNER, 3))
    assert (early["id"], early["decision"], early["reason"]) == (
        None,
        "unknown",
        "incomplete_profile",
    )
    assert early["best"]["id"] == owner["id"]  # closest, but not enough enrolment speech yet
    again = await enroll(speaker.port, speech(OWNER, 1), id=owner["id"])
    assert (again["id"], again["sample_count"], again["samples_needed"]) == (owner["id"], 2, 1)
    assert 0.81 <= again["threshold"] <= 0.91
    done = await enroll(speaker.port, speech(OWNER, 2), id=owner["id"])
    assert (done["sample_count"], done["ready"], done["samples_needed"]) == (3, True, 0)
    friend = await enroll_voice(speaker.port, FRIEND, name="Friend", priority=1)
    assert friend["id"] != owner["id"]

    # New sentences, concurrently, one of them as 44.1 kHz stereo.
    samples = np.frombuffer(speech(OWNER, 4), dtype="<i2").astype(np.float32)
    owner_stereo = np.repeat(resample_poly(samples, 441, 160), 2).astype("<i2").tobytes()
    async with AsyncTcpClient("127.0.0.1", speaker.port) as client:
        await client.write_event(Event(type="speaker-identify"))
        await send_audio(client, owner_stereo, rate=44100, channels=2)
        as_stereo = (await read_one(client)).data
    found_friend, stranger = await asyncio.gather(
        identify(speaker.port, speech(FRIEND, 4)), identify(speaker.port, speech(STRANGER, 4))
    )
    assert (as_stereo["id"], as_stereo["name"], as_stereo["priority"]) == (owner["id"], "Owner", 0)
    assert found_friend["id"] == friend["id"]
    for match in (as_stereo, found_friend):
        assert (match["decision"], match["reason"]) == ("known", "match")
        assert match["confidence"] >= match["threshold"] >= 0.81
        assert match["score"] >= 0.0
        assert match["margin"] >= 0.03
        assert match["best"]["id"] == match["id"]
        assert not match["is_self"]
        assert not match["is_blocked"]
    assert stranger["id"] is stranger["name"] is stranger["priority"] is None
    assert stranger["decision"] == "unknown"
    assert stranger["reason"] in ("below_threshold", "close_to_others", "ambiguous")
    assert 0 < stranger["confidence"] < 1
    assert not stranger["is_self"]

    listed = await profiles(speaker.port)
    assert listed[owner["id"]]["sample_count"] == 3
    assert listed[owner["id"]]["last_seen"] is not None  # set by the identification
    assert listed[friend["id"]]["auto_learned"] is False


async def test_profiles_are_listed_updated_and_deleted(speaker: ServiceProcess) -> None:
    guest = await enroll_voice(speaker.port, STRANGER, name="Guest", auto_learned=True)
    assert guest["priority"] == 2  # guests unless told otherwise
    listed = await profiles(speaker.port)
    assert listed[guest["id"]] == {
        "id": guest["id"],
        "name": "Guest",
        "priority": 2,
        "is_blocked": False,
        "auto_learned": True,
        "sample_count": 3,
        "last_seen": None,
    }

    changes = {"id": guest["id"], "name": "Neighbour", "priority": 3, "is_blocked": True}
    updated = await request(speaker.port, "speaker-update", changes)
    assert updated.type == "speaker-profile"
    assert updated.data["profile"] == {**listed[guest["id"]], **changes}
    blocked = await identify(speaker.port, speech(STRANGER, 5))
    assert (blocked["id"], blocked["is_blocked"]) == (guest["id"], True)

    deleted = await request(speaker.port, "speaker-delete", {"id": guest["id"]})
    assert (deleted.type, deleted.data) == ("speaker-deleted", {"id": guest["id"]})
    assert guest["id"] not in await profiles(speaker.port)
    for event_type, data in (
        ("speaker-delete", {"id": guest["id"]}),
        ("speaker-update", {"id": guest["id"], "name": "x"}),
    ):
        gone = await request(speaker.port, event_type, data)
        assert (gone.type, gone.data["code"]) == ("error", "unknown_profile")


async def test_kiwis_own_voice_is_recognised_as_self(speaker: ServiceProcess) -> None:
    kiwi = await enroll(speaker.port, speech(KIWI, 0), id="self", name="Kiwi")
    assert (kiwi["id"], kiwi["name"]) == ("self", "Kiwi")
    assert kiwi["ready"]  # Kiwi's own voice needs one sample: its TTS voice does not vary
    echo = await identify(speaker.port, speech(KIWI, 3))
    assert echo["id"] == "self"
    assert (echo["is_self"], echo["decision"], echo["reason"]) == (True, "self", "self")
    assert echo["confidence"] >= 0.85
    person = await identify(speaker.port, speech(FRIEND, 5))
    assert not person["is_self"]


async def test_bad_input_gets_errors_and_the_server_lives(speaker: ServiceProcess) -> None:
    async with AsyncTcpClient("127.0.0.1", speaker.port) as client:
        await client.write_event(AudioChunk(RATE, WIDTH, CHANNELS, b"\0\0" * 160).event())
        await error_then_alive(client, "unexpected_event")
        await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
        await error_then_alive(client, "unexpected_event")  # audio without a request
        await client.write_event(AudioStop().event())  # ends the refused utterance quietly

        invalid_enrolls: list[dict[str, Any]] = [
            {},
            {"name": ""},
            {"name": "A", "priority": 7},
            {"name": "A", "priority": True},
            {"name": 5},
        ]
        for data in invalid_enrolls:
            await client.write_event(Event(type="speaker-enroll", data=data))
            await error_then_alive(client, "bad_request")
        await client.write_event(Event(type="speaker-enroll", data={"id": "spk_00000000"}))
        await error_then_alive(client, "unknown_profile")
        await client.write_event(Event(type="speaker-update", data={"name": "no id"}))
        await error_then_alive(client, "bad_request")

        for bad in (
            {"rate": 16000, "width": 5, "channels": 1},
            {"rate": 16000, "width": 2, "channels": 0},
            {"rate": 0, "width": 2, "channels": 1},
        ):
            await client.write_event(Event(type="speaker-identify"))
            await client.write_event(Event(type="audio-start", data=bad))
            await error_then_alive(client, "bad_audio")
            await client.write_event(AudioStop().event())

        await client.write_event(Event(type="speaker-identify"))
        await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
        await client.write_event(AudioChunk(RATE, WIDTH, CHANNELS, b"\0" * 3).event())
        await client.write_event(AudioChunk(RATE, WIDTH, CHANNELS, b"\0\0" * 160).event())
        await client.write_event(AudioStop().event())
        await error_then_alive(client, "bad_audio")  # one error for the torn utterance

        await client.write_event(Event(type="speaker-identify"))
        await send_audio(client, b"")
        await error_then_alive(client, "no_audio")
        await client.write_event(Event(type="speaker-identify"))
        await send_audio(client, b"\0\0" * RATE * 2)  # 2 s of silence: no voice in it
        await error_then_alive(client, "no_audio")

        await client.write_event(Event(type="speaker-identify"))
        await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
        await client.write_event(AudioChunk(RATE, WIDTH, CHANNELS, b"\0" * (5 << 20)).event())
        await client.write_event(AudioStop().event())
        await error_then_alive(client, "payload_too_large")

    answer = await identify(speaker.port, speech(OWNER, 6))  # the server still works
    assert isinstance(answer["confidence"], float)


async def test_profiles_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "speakers.db"
    first = start_speaker(db, tmp_path / "first.log")
    try:
        owner = await enroll_voice(first.port, OWNER, name="Owner", priority=0)
    finally:
        assert first.stop() == 0, first.log()

    with sqlite3.connect(db) as check:  # what is on disk: WAL mode, float32 embeddings
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        [(blob, count)] = check.execute("SELECT embedding, sample_count FROM profiles").fetchall()
        assert check.execute("PRAGMA user_version").fetchone()[0] == 2
    assert (len(blob), count) == (256 * 4, 3)
    assert np.linalg.norm(np.frombuffer(blob, dtype="<f4")) == pytest.approx(1.0, abs=1e-5)

    second = start_speaker(db, tmp_path / "second.log")
    try:
        assert (await profiles(second.port))[owner["id"]]["name"] == "Owner"
        assert (await identify(second.port, speech(OWNER, 3)))["id"] == owner["id"]
    finally:
        assert second.stop() == 0, second.log()


async def test_missing_encoder_weights_keep_the_service_up(tmp_path: Path) -> None:
    service = start_speaker(
        tmp_path / "speakers.db",
        tmp_path / "kiwi-speaker.log",
        "--weights",
        str(tmp_path / "no.pt"),
    )
    try:
        async with AsyncTcpClient("127.0.0.1", service.port) as client:
            await client.write_event(Describe().event())
            [program] = (await read_one(client)).data["speaker"]
            assert not program["installed"]
            assert "NOT AVAILABLE" in program["models"][0]["description"]
            await client.write_event(Event(type="speaker-identify"))
            await send_audio(client, speech(OWNER, 3))
            await error_then_alive(client, "model_missing")
            await client.write_event(Event(type="speaker-list"))
            assert (await read_one(client)).data == {"profiles": []}  # profiles still answer
    finally:
        assert service.stop() == 0, service.log()


async def test_fifteen_seconds_of_speech_in_one_clip_make_a_profile_ready(
    speaker: ServiceProcess,
) -> None:
    """One long recording instead of three: it is cut into samples of 5 s or more."""
    long_clip = b"".join(speech("en-us+m7", index) for index in range(4))  # ~18 s of speech
    answer = await enroll(speaker.port, long_clip, name="Long talker")
    assert answer["samples_added"] >= 3
    assert (answer["ready"], answer["samples_needed"], answer["sample_count"]) == (
        True,
        0,
        answer["samples_added"],
    )
    short = await enroll(speaker.port, speech("en-us+m7", 0), name="Short talker")
    assert (short["samples_added"], short["ready"]) == (1, False)
