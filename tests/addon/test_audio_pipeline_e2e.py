"""One utterance end to end through the four real Wyoming services on the offline models.

espeak-ng says "hey jarvis", a pause, and a command; the audio goes into /api/audio (or
/api/audio/file) and the test watches /api/events. The offline whisper model has random
weights, so what it transcribes is not asserted, only that a transcript with a language came
back and went on through routing (the local Home Assistant and Claude answer any text).
"""

from __future__ import annotations

import json
import os
import subprocess
import wave
from io import BytesIO
from pathlib import Path

import aiohttp
import pytest
from wyoming.audio import AudioChunk, AudioChunkConverter

from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import AudioClient, EventLog, is_subsequence
from tests.support.pipeline_stack import PipelineStack, stack_fixture
from tests.support.speech import espeak_pcm, espeak_wav
from tests.support.voices import ENROL_SENTENCES
from tests.support.wyoming_process import ADDON_BIN

pytestmark = pytest.mark.timeout(90)
COMMAND = "turn on the kitchen light"
SILENCE = b"\x00\x00" * 16000  # one second at 16 kHz


stack = stack_fixture(services=("stt", "tts", "wake", "speaker"))


def _utterance(voice: str = "en-us+m3") -> bytes:
    """The wake word, a pause, a command: 16 kHz mono s16 with silence at both ends."""
    return espeak_pcm("hey jarvis", voice) + espeak_pcm(COMMAND, voice)


def _wav(pcm: bytes, rate: int = 16000) -> bytes:
    out = BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def _resampled(pcm: bytes, rate: int) -> bytes:
    converter = AudioChunkConverter(rate=rate, width=2, channels=1)
    return converter.convert(AudioChunk(rate=16000, width=2, channels=1, audio=pcm)).audio


async def test_a_spoken_command_goes_through_every_stage_in_order(
    stack: PipelineStack, hub: HubProcess
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio")) as speaker_client,
        AudioClient.connect(session, hub.ws_url("/api/audio")) as bystander,
    ):
        # Kiwi's original web-microphone protocol: binary PCM16 16 kHz, no handshake.
        await speaker_client.send_audio(_utterance())
        await bystander.send_audio(SILENCE)
        metrics = await events.wait("TURN_METRICS", wait_s=40)
        await speaker_client.send_audio(SILENCE)  # the socket is still served afterwards

    names = events.names()
    assert is_subsequence(
        [
            "WAKE_WORD_DETECTED",
            "STATE_CHANGED",
            "STATE_CHANGED",
            "SPEECH_RECOGNIZED",
            "SPEAKER_IDENTIFIED",
            "STATE_CHANGED",
            "TTS_STARTED",
            "TTS_FINISHED",
            "STATE_CHANGED",
            "TURN_METRICS",
        ],
        names,
    ), names
    assert "ERROR" not in names
    wake = events.of("WAKE_WORD_DETECTED")[0]
    assert wake["text"] == "hey_jarvis"
    assert wake["trigger"] == "wake_word"
    states = [(e["old"], e["new"]) for e in events.of("STATE_CHANGED")]
    assert states == [
        ("IDLE", "LISTENING"),
        ("LISTENING", "PROCESSING"),
        ("PROCESSING", "SPEAKING"),
        ("SPEAKING", "IDLE"),
    ]
    recognized = events.of("SPEECH_RECOGNIZED")[0]
    assert isinstance(recognized["text"], str)
    assert recognized["language"] == "en"
    identified = events.of("SPEAKER_IDENTIFIED")[0]
    assert identified["name"] == "Unknown"  # nobody enrolled this voice
    assert 0.0 <= identified["confidence"] <= 1.0
    assert stack.homeassistant is not None
    assert stack.homeassistant.texts()[-1] == recognized["text"]  # routed: HA asked first
    data = metrics["data"]
    assert data["stt_ms"] > 0
    assert data["speaker_ms"] > 0
    assert data["first_audio_ms"] > 0
    assert data["total_ms"] >= data["first_audio_ms"]
    # The answer came back as raw PCM16 16 kHz on the speaking socket only, as binary frames.
    spoken_seconds = events.of("TTS_FINISHED")[0]["audio_seconds"]
    assert speaker_client.frames() == []
    assert abs(speaker_client.audio_bytes() - spoken_seconds * 32000) < 64
    assert bystander.received == []


async def test_push_to_talk_with_a_handshake_resamples_both_ways(hub: HubProcess) -> None:
    hello = {"sample_rate": 48000, "output_sample_rate": 24000, "mode": "push_to_talk"}
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello=hello) as client,
    ):
        ack = client.frames("hello_ack")[0]
        await client.send({"t": "start_speaking", "stamp": "seg_001"})  # AstrBot's envelope
        listening = await client.wait_frame("listening")
        await client.send_audio(_resampled(espeak_pcm(COMMAND), 48000), chunk_bytes=9600)
        await client.send({"type": "end_speaking", "stamp": "seg_001"})
        end = await client.wait_frame("end", wait_s=40)
        finished = await events.wait("TTS_FINISHED")

    assert ack["sample_rate"] == 48000
    assert ack["output_sample_rate"] == 24000
    assert ack["mode"] == "push_to_talk"
    assert len(ack["session_id"]) == 8
    turn_id = listening["turn_id"]
    assert listening["trigger"] == "push_to_talk"
    assert end["turn_id"] == turn_id
    assert events.of("WAKE_WORD_DETECTED")[0]["trigger"] == "push_to_talk"
    user = client.frames("user_text", turn_id=turn_id)[0]
    assert user["language"] == "en"
    assert events.of("SPEECH_RECOGNIZED")[0]["text"] == user["text"]
    start = client.frames("audio_start", turn_id=turn_id)[0]
    assert start == {
        "type": "audio_start",
        "turn_id": turn_id,
        "sample_rate": 24000,
        "channels": 1,
        "width": 2,
        "format": "binary",
    }
    assert abs(client.audio_bytes() - finished["data"]["audio_seconds"] * 48000) < 96
    assert [f["type"] for f in client.frames(turn_id=turn_id)][-2:] == ["end", "metrics"]


async def test_the_wake_word_barges_in_while_kiwi_speaks(
    stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.claude is not None
    stack.claude.hold_after_tokens = 5  # Kiwi keeps speaking its first sentence
    try:
        async with (
            aiohttp.ClientSession() as session,
            EventLog.connect(session, hub.ws_url("/api/events")) as events,
            AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
        ):
            await client.send({"type": "text_input", "text": "tell me a long story"})
            first = await client.wait_frame("audio_start")
            stack.claude.hold_after_tokens = None
            await client.send_audio(_utterance())
            old_end = await client.wait_frame("end", turn_id=first["turn_id"], wait_s=30)
            listening = await client.wait_frame("listening")
            new_end = await client.wait_frame("end", turn_id=listening["turn_id"], wait_s=40)
            stop_index = client.index_of("stop_play", turn_id=first["turn_id"])
            new_start = client.index_of("audio_start", turn_id=listening["turn_id"])
    finally:
        stack.claude.hold_after_tokens = None
        stack.claude.release()

    assert old_end["interrupted"] is True
    assert new_end["interrupted"] is False
    names = events.names()
    assert names.index("WAKE_WORD_DETECTED") > names.index("TTS_STARTED")
    assert events.of("TTS_FINISHED")[0]["interrupted"] is True
    states = [(e["old"], e["new"]) for e in events.of("STATE_CHANGED")]
    assert ("SPEAKING", "LISTENING") in states  # straight from speaking to listening
    # No audio of the interrupted turn after its stop_play: the next audio is the new turn's.
    audio_after_stop = [r.index for r in client.received if r.audio and r.index > stop_index]
    assert audio_after_stop
    assert min(audio_after_stop) > new_start


async def test_a_blocked_speaker_is_ignored(hub: HubProcess) -> None:
    voice = "en-us+f2"
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        enroll = f"{hub.base_url}/api/speakers/enroll"
        params = {"name": "Mallory", "priority": "2"}
        for sentence in ENROL_SENTENCES:  # a voice is named once it has three samples
            async with session.post(
                enroll,
                params=params,
                data=espeak_wav(sentence, voice).read_bytes(),
                headers={"Content-Type": "audio/wav"},
            ) as answer:
                assert answer.status == 200, await answer.text()
                profile = await answer.json()
            params = {"id": profile["id"]}
        assert profile["ready"]
        async with session.post(f"{hub.base_url}/api/speakers/{profile['id']}/block") as answer:
            assert answer.status == 200
        try:
            async with (
                EventLog.connect(session, hub.ws_url("/api/events")) as events,
                AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
            ):
                await client.send_audio(_utterance(voice))
                blocked = await events.wait("SPEAKER_BLOCKED", wait_s=40)
                end = await client.wait_frame("end", turn_id=blocked["data"]["turn_id"])
                await events.wait("TURN_METRICS")
        finally:
            async with session.delete(f"{hub.base_url}/api/speakers/{profile['id']}"):
                pass

    identified = events.of("SPEAKER_IDENTIFIED")[0]
    assert identified["name"] == "Mallory"
    assert identified["is_blocked"] is True
    assert blocked["data"]["id"] == profile["id"]
    assert end["route"] == "blocked"
    assert "TTS_STARTED" not in events.names()
    assert client.audio_bytes() == 0
    assert events.of("STATE_CHANGED")[-1]["new"] == "IDLE"


async def test_a_wav_file_goes_through_the_same_pipeline(hub: HubProcess) -> None:
    url = f"{hub.base_url}/api/audio/file"
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        async with session.post(url, data=_wav(_utterance())) as answer:
            assert answer.status == 200, await answer.text()
            continuous = await answer.json()
        async with session.post(
            url, params={"mode": "push_to_talk"}, data=_wav(espeak_pcm(COMMAND))
        ) as answer:
            push_to_talk = await answer.json()
        async with session.post(url, data=b"not a wav file") as answer:
            refused = answer.status, await answer.json()

    assert continuous["wake_word_detected"] is True
    assert len(continuous["turns"]) == 1
    turn = continuous["turns"][0]
    assert isinstance(turn["user_text"], str)
    assert turn["language"] == "en"
    assert turn["route"] in ("homeassistant", "claude")
    assert turn["audio_seconds"] > 0
    assert turn["errors"] == []
    assert turn["metrics"]["turn_id"] == turn["turn_id"]
    assert push_to_talk["wake_word_detected"] is False
    assert len(push_to_talk["turns"]) == 1
    assert refused[0] == 415
    assert refused[1]["error"]["code"] == "invalid_wav"


def test_kiwi_hub_feed_sends_a_file_from_the_command_line(hub: HubProcess, tmp_path: Path) -> None:
    clip = tmp_path / "command.wav"
    clip.write_bytes(_wav(espeak_pcm(COMMAND)))
    result = subprocess.run(
        [str(ADDON_BIN / "kiwi-hub"), "feed", "--push-to-talk", "--url", hub.base_url, str(clip)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KIWI_TOKEN": hub.token},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert len(answer["turns"]) == 1
    assert answer["turns"][0]["audio_seconds"] > 0


def _kiwi_hub(hub: HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ADDON_BIN / "kiwi-hub"), *args, "--url", hub.base_url, "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "KIWI_TOKEN": hub.token},
        check=False,
    )


def test_kiwi_hub_talk_and_say_print_the_turn_and_save_the_reply(
    hub: HubProcess, tmp_path: Path
) -> None:
    """Spoken (wake word in the file, streamed over /api/audio) and typed turns from a terminal."""
    clip = tmp_path / "command.wav"
    clip.write_bytes(_wav(_utterance()))
    spoken = _kiwi_hub(hub, "talk", str(clip), "--out", str(tmp_path / "spoken.wav"))
    typed = _kiwi_hub(hub, "say", COMMAND, "--out", str(tmp_path / "typed.wav"))

    for result, reply in ((spoken, "spoken.wav"), (typed, "typed.wav")):
        assert result.returncode == 0, result.stdout + result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        kinds = [line["kind"] for line in lines]
        assert is_subsequence(["transcript", "token", "end", "metrics", "saved"], kinds), kinds
        metrics = next(line for line in lines if line["kind"] == "metrics")
        assert metrics["first_audio_ms"] is not None
        with wave.open(str(tmp_path / reply), "rb") as wav:
            assert wav.getnframes() > 0
    events = [json.loads(line) for line in spoken.stdout.splitlines()]
    assert events[0]["kind"] in ("listening", "event")
    assert {"kind": "event", "event": "WAKE_WORD_DETECTED"}.items() <= next(
        e for e in events if e.get("event") == "WAKE_WORD_DETECTED"
    ).items()
    typed_lines = [json.loads(line) for line in typed.stdout.splitlines()]
    assert typed_lines[0] == {**typed_lines[0], "kind": "transcript", "text": COMMAND}


def test_kiwi_hub_talk_says_when_no_wake_word_was_heard(hub: HubProcess, tmp_path: Path) -> None:
    clip = tmp_path / "no-wake.wav"
    clip.write_bytes(_wav(espeak_pcm(COMMAND)))
    result = _kiwi_hub(hub, "talk", str(clip), "--wake-timeout", "5")
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[-1])["code"] == "no_wake_word"


async def test_the_wake_word_engine_choice_shows_in_the_config(hub: HubProcess) -> None:
    url = f"{hub.base_url}/api/config"
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        async with session.get(url) as answer:
            before = (await answer.json())["wake_word_engine_active"]
        patch = {"wake_word": "kiwi", "wake_word_engine": "auto"}
        async with session.patch(url, json=patch):
            pass
        try:
            async with session.get(url) as answer:
                kiwi = (await answer.json())["wake_word_engine_active"]
            async with AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client:
                ack = client.frames("hello_ack")[0]
        finally:
            async with session.patch(url, json={"wake_word": None, "wake_word_engine": None}):
                pass

    assert before == {
        "engine": "openwakeword",
        "wake_word": "hey_jarvis",
        "model": "hey_jarvis",
        "reason": "kiwi-wake has the model hey_jarvis",
    }
    # kiwi-wake has no "kiwi" model: the text engine serves it.
    assert kiwi["engine"] == "text"
    assert kiwi["wake_word"] == "kiwi"
    assert kiwi["model"] is None
    assert (ack["wake_word"], ack["wake_word_engine"]) == ("kiwi", "text")


async def test_the_text_engine_hears_kiwi_without_a_model(hub: HubProcess) -> None:
    # The offline whisper model is built to transcribe every utterance as "kiwi", so with
    # the text engine any speech is the wake word and the command that follows is captured.
    url = f"{hub.base_url}/api/config"
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        async with session.patch(url, json={"wake_word": "kiwi", "wake_word_engine": "text"}):
            pass
        try:
            async with (
                EventLog.connect(session, hub.ws_url("/api/events")) as events,
                AudioClient.connect(session, hub.ws_url("/api/audio")) as client,
            ):
                await client.send_audio(espeak_pcm("kiwi") + espeak_pcm(COMMAND))
                metrics = await events.wait("TURN_METRICS", wait_s=40)
                await client.send_audio(SILENCE)
        finally:
            async with session.patch(url, json={"wake_word": None, "wake_word_engine": None}):
                pass

    assert events.of("WAKE_WORD_DETECTED") == [
        {
            "text": "kiwi",
            "trigger": "wake_word",
            "session": events.of("WAKE_WORD_DETECTED")[0]["session"],
        }
    ]
    assert events.of("SPEECH_RECOGNIZED") == [{"text": "kiwi", "language": "en"}]
    assert metrics["data"]["stt_ms"] > 0
    assert client.audio_bytes() > 0
