"""A spoken turn as the dashboard's microphone makes it: piper's joe says "Hey Jarvis." and then
"Turn on the kitchen light." as binary PCM frames over /api/audio. Real Whisper hears it, Home
Assistant (this test's, through its REST API) switches the light, Kiwi answers aloud over the
same socket, and what Kiwi said, heard back through kiwi-stt, is the reply's text.

Also `kiwi-hub talk` and `kiwi-hub say` from a terminal against the same real stack."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import aiohttp
from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.ha.kiwi_common import wait_for_state
from tests.support.hub_process import HubProcess, start_hub
from tests.support.pipeline_client import AudioClient, EventLog, is_subsequence
from tests.support.real_speech import (
    joe_clips,
    normalize,
    real_hub_env,
    transcribe,
    wer,
    write_wav,
)
from tests.support.speech import wav_pcm
from tests.support.wyoming_process import ADDON_BIN, ServiceProcess

RealServices = dict[str, ServiceProcess]
WAKE = "Hey Jarvis."
COMMAND = "Turn on the kitchen light."
LIGHT = "input_boolean.kitchen_light"


def spoken_command() -> bytes:
    """joe saying the wake word, a breath of silence, then the command (16 kHz mono s16)."""
    wake, command = joe_clips([WAKE, COMMAND])
    return wav_pcm(wake) + wav_pcm(command)


async def build_home(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> str:
    """Home Assistant with its HTTP API and a kitchen light Assist may switch; its URL."""
    for component in ("homeassistant", "http", "websocket_api", "config", "conversation"):
        assert await async_setup_component(hass, component, {})
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"kitchen_light": {"name": "Kitchen light"}}}
    )
    async_expose_entity(hass, conversation.DOMAIN, LIGHT, True)
    return str((await hass_client()).make_url("/")).rstrip("/")


async def test_a_spoken_home_command_switches_the_light_and_kiwi_says_so(  # noqa: PLR0917
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    real_services: RealServices,
    socket_enabled: None,
    tmp_path: Path,
) -> None:
    home_url = await build_home(hass, hass_client)
    hub = start_hub(
        tmp_path / "hub",
        speaker=real_services["speaker"],
        tts_uri=real_services["tts"].uri,
        env=real_hub_env(real_services, KIWI_HA_URL=home_url, KIWI_HA_TOKEN=hass_access_token),
    )
    try:
        async with (
            aiohttp.ClientSession() as session,
            EventLog.connect(session, hub.ws_url("/api/events")) as events,
            AudioClient.connect(
                session, hub.ws_url("/api/audio"), hello={"sample_rate": 16000}
            ) as client,
        ):
            await client.send_audio(spoken_command())  # binary frames of 100 ms, as browsers
            end = await client.wait_frame("end", wait_s=240)
            await events.wait("TURN_METRICS", wait_s=30)
        assert end["route"] == "homeassistant", (client.frames(), hub.log()[-3000:])
        await wait_for_state(hass, LIGHT, "on")
    finally:
        hub.stop(stop_speaker=False)

    names = events.names()
    assert is_subsequence(
        ["WAKE_WORD_DETECTED", "SPEECH_RECOGNIZED", "TTS_STARTED", "TTS_FINISHED"], names
    ), names
    [wake] = events.of("WAKE_WORD_DETECTED")
    assert wake["text"] == "hey_jarvis"
    [recognized] = events.of("SPEECH_RECOGNIZED")
    assert normalize(recognized["text"]) == normalize(COMMAND), recognized
    assert end["text"]
    assert not client.frames("error")
    # The reply came back as audio on the same socket, and it says the reply's text.
    reply = b"".join(r.audio for r in client.received if r.audio is not None)
    assert len(reply) > 16_000  # over half a second at 16 kHz s16
    heard = await transcribe(real_services["stt"].uri, reply)
    assert wer([(end["text"], heard)]) <= 0.2, (end["text"], heard)


def _kiwi_hub(hub: HubProcess, *args: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(ADDON_BIN / "kiwi-hub"), *args, "--url", hub.base_url, "--json"],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "KIWI_TOKEN": hub.token},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


async def test_kiwi_hub_talk_answers_a_spoken_wav_from_the_command_line(
    real_hub: HubProcess, real_services: RealServices, socket_enabled: None, tmp_path: Path
) -> None:
    """The README's "Talk to it": a WAV with the wake word and a question, the reply as WAV."""
    clip, reply = tmp_path / "question.wav", tmp_path / "reply.wav"
    question = "What is the capital of France?"
    write_wav(clip, b"".join(wav_pcm(p) for p in joe_clips([WAKE, question])))
    lines = _kiwi_hub(real_hub, "talk", str(clip), "--out", str(reply))

    kinds = [line["kind"] for line in lines]
    assert is_subsequence(
        ["listening", "transcript", "token", "sentence", "end", "metrics", "saved"], kinds
    ), kinds
    [wake] = [line for line in lines if line.get("event") == "WAKE_WORD_DETECTED"]
    assert wake["data"]["text"] == "hey_jarvis"  # type: ignore[index]
    [transcript] = [line for line in lines if line["kind"] == "transcript"]
    assert normalize(str(transcript["text"])) == normalize(question)
    [end] = [line for line in lines if line["kind"] == "end"]
    assert end["route"] == "claude"  # the tier's fake Claude echoes the question
    metrics = next(line for line in lines if line["kind"] == "metrics")
    assert metrics["stt_ms"] is not None
    assert metrics["first_audio_ms"] is not None
    heard = await transcribe(real_services["stt"].uri, wav_pcm(reply))
    assert wer([(str(end["text"]), heard)]) <= 0.2, (end["text"], heard)


async def test_kiwi_hub_say_answers_typed_text_aloud(
    real_hub: HubProcess, socket_enabled: None, tmp_path: Path
) -> None:
    reply = tmp_path / "reply.wav"
    lines = _kiwi_hub(real_hub, "say", "hello there", "--out", str(reply))
    assert lines[0]["kind"] == "transcript"
    [saved] = [line for line in lines if line["kind"] == "saved"]
    assert float(saved["seconds"]) > 1.0  # type: ignore[arg-type]
