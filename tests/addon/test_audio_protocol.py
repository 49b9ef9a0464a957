"""The /api/audio WebSocket protocol itself: handshake, frame errors with codes, base64 audio
both ways, mute, ping, the token, and the OpenAPI description of it all.

Real processes: kiwi-hub, kiwi-tts and the local Home Assistant (commands are typed, so no
STT runs; the audio path is in test_audio_pipeline_e2e.py).
"""

from __future__ import annotations

import base64
import io
import json
import wave

import aiohttp
import pytest

from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import AudioClient, EventLog
from tests.support.pipeline_stack import stack_fixture
from tests.support.speech import espeak_pcm

pytestmark = pytest.mark.timeout(60)


stack = stack_fixture(services=("tts",), claude=False)


async def test_hello_is_acknowledged_with_the_session_settings(hub: HubProcess) -> None:
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={"client": "test"}) as client,
    ):
        await client.send({"type": "hello", "output_format": "base64", "mode": "push_to_talk"})
        await client.wait(lambda r: len(client.frames("hello_ack")) == 2)
    first, second = client.frames("hello_ack")
    assert first == {
        "type": "hello_ack",
        "session_id": first["session_id"],
        "protocol": 1,
        "sample_rate": 16000,
        "output_sample_rate": 16000,
        "output_format": "binary",
        "mode": "continuous",
        "wake_word": "hey_jarvis",
        "wake_word_engine": "openwakeword",
    }
    assert second["session_id"] == first["session_id"]
    assert (second["output_format"], second["mode"]) == ("base64", "push_to_talk")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"text": "no type"}', "missing_field"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "text_input"}', "missing_field"),
        ('{"type": "text_input", "text": ""}', "invalid_value"),
        ('{"type": "hello", "sample_rate": 7}', "invalid_value"),
        ('{"type": "hello", "colour": "green"}', "unknown_field"),
        ('{"type": "audio", "data": "***"}', "invalid_value"),
    ],
)
async def test_a_bad_frame_gets_an_error_with_a_code_and_the_socket_stays_open(
    hub: HubProcess, frame: str, code: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(session, hub.ws_url("/api/audio")) as client,
    ):
        await client.ws.send_str(frame)
        error = await client.wait_frame("error")
        await client.send({"type": "ping"})
        await client.wait_frame("pong")
    assert error["code"] == code
    assert error["message"]
    assert "turn_id" not in error


async def test_base64_audio_out_is_tagged_with_the_turn(hub: HubProcess) -> None:
    hello = {"output_format": "base64", "output_sample_rate": 16000}
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello=hello) as client,
    ):
        await client.send({"type": "text_input", "text": "turn on the fan"})
        end = await client.wait_frame("end")
        finished = await events.wait("TTS_FINISHED")
    turn_id = end["turn_id"]
    audio = client.frames("audio")
    assert audio
    assert {frame["turn_id"] for frame in audio} == {turn_id}
    pcm = b"".join(base64.b64decode(frame["data"]) for frame in audio)
    assert abs(len(pcm) - finished["data"]["audio_seconds"] * 32000) < 64
    assert client.audio_bytes() == 0  # no binary frames in base64 mode
    kinds = [f["type"] for f in client.frames(turn_id=turn_id)]
    assert kinds[0] == "user_text"
    assert kinds.index("bot_text") < kinds.index("audio_start") < kinds.index("audio")
    assert kinds[-2:] == ["end", "metrics"]


async def test_output_format_none_gets_text_only(hub: HubProcess) -> None:
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(
            session, hub.ws_url("/api/audio"), hello={"output_format": "none"}
        ) as client,
    ):
        await client.send({"type": "text_input", "text": "turn off the fan"})
        end = await client.wait_frame("end")
    assert end["text"] == "Turned off the fan"
    assert client.audio_bytes() == 0
    assert client.frames("audio_start") == []


async def test_base64_microphone_audio_and_mute(hub: HubProcess) -> None:
    loud = base64.b64encode(b"\x10\x27" * 8000).decode()  # half a second of a constant level
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(
            session, hub.ws_url("/api/audio"), hello={"mode": "push_to_talk"}
        ) as client,
    ):
        await client.send({"type": "mute"})
        await client.send({"type": "start_speaking"})
        listening = await client.wait_frame("listening")
        await client.send({"type": "audio", "data": loud})  # muted: ignored
        await client.send({"type": "end_speaking"})
        end = await client.wait_frame("end", turn_id=listening["turn_id"])
        await client.send({"type": "ping"})
        await client.wait_frame("pong")
    # Nothing was heard: the capture ends without a turn, and Kiwi is idle again.
    assert end == {
        "type": "end",
        "turn_id": listening["turn_id"],
        "route": "none",
        "text": "",
        "interrupted": False,
    }
    assert [e["new"] for e in events.of("STATE_CHANGED")] == ["LISTENING", "IDLE"]
    assert "SPEECH_RECOGNIZED" not in events.names()


async def test_the_socket_needs_the_token(hub: HubProcess) -> None:
    url = hub.ws_url("/api/audio").replace(f"token={hub.token}", "token=wrong")
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        message = await ws.receive()
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert ws.close_code == 4401


async def test_the_openapi_document_describes_the_pipeline_endpoints(hub: HubProcess) -> None:
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        async with session.get(f"{hub.base_url}/api/openapi.json") as answer:
            document = await answer.json()
        async with session.get(f"{hub.base_url}/api/status") as answer:
            status = await answer.json()
    paths = document["paths"]
    audio = paths["/api/audio"]["get"]["x-websocket"]
    schemas = document["components"]["schemas"]
    client_frames = {
        json.dumps(schemas[ref["$ref"].rsplit("/", 1)[1]]["properties"]["type"])
        for ref in schemas["AudioClientFrame"]["oneOf"]
    }
    assert audio["client_frames"] == {"$ref": "#/components/schemas/AudioClientFrame"}
    assert '{"const": "text_input"}' in client_frames
    assert "binary_frames" in audio
    assert "audio/wav" in paths["/api/audio/file"]["post"]["requestBody"]["content"]
    conversation = paths["/api/conversation"]["post"]["responses"]["200"]["content"]
    assert set(conversation) == {"application/json", "text/event-stream", "application/x-ndjson"}
    assert "TurnMetrics" in schemas
    assert "Event_TURN_METRICS" in schemas
    assert "Event_SPEAKER_BLOCKED" in schemas
    assert "last_turn_metrics" in schemas["StatusResponse"]["required"]
    assert "last_turn_metrics" in status


async def test_a_file_with_kiwi_wake_down_says_so(hub: HubProcess) -> None:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(espeak_pcm("hey jarvis"))
    async with (
        aiohttp.ClientSession(headers=hub.auth_headers) as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
    ):
        async with session.post(f"{hub.base_url}/api/audio/file", data=out.getvalue()) as answer:
            result = answer.status, await answer.json()
        error = await events.wait("ERROR")
    assert result[0] == 200
    assert result[1]["turns"] == []
    assert result[1]["wake_word_detected"] is False
    assert result[1]["errors"] == ["wake_unavailable"]
    assert (error["data"]["source"], error["data"]["code"]) == ("wake", "wake_unavailable")
