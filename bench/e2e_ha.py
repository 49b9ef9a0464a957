"""End of speech → first byte of reply audio for a spoken home command, inside Home Assistant's
test harness: Kiwi against Home Assistant's stock voice chain. Run by bench/bench_e2e.py with the
HA env's pytest (`KIWI_E2E_OUT` names the JSON file it writes, `KIWI_E2E_TURNS` the turns per
chain); not part of `make test`.

Both chains hear the same clips (piper joe: "Turn on the kitchen light." / "...off..."), sent in
100 ms chunks at the pace a microphone delivers them, and switch the same Home Assistant light
through Home Assistant's own conversation agent. Turns alternate between the chains, so load on
the machine falls on both alike.

- Kiwi: kiwi-stt (Whisper base), kiwi-tts (joe), kiwi-wake (hey_jarvis), kiwi-speaker and the hub;
  the client is the dashboard's: binary PCM over /api/audio, "Hey Jarvis." before each command.
  End of speech is when the chunk holding the command's last voiced sample was sent; first byte is
  when the first binary reply frame arrived.
- Stock: wyoming-faster-whisper 3.8.1 (faster-whisper, same model folder) and wyoming-piper 2.5.2
  (same voice file) through HA's `wyoming` integration, driven by HA's `assist_pipeline` from the
  STT stage (a satellite has already heard its wake word) with its own voice-activity detection.
  The reply audio is fetched from the URL the pipeline announces at run-start (as early as any
  satellite can); first byte is when the first bytes of that response arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from homeassistant.components import assist_pipeline, conversation, stt
from homeassistant.components.assist_pipeline.pipeline import (
    async_create_default_pipeline,
    async_update_pipeline,
)
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from bench.peers import peer_python
from tests.support.hub_process import start_hub
from tests.support.pipeline_client import AudioClient
from tests.support.pipeline_stack import start_services
from tests.support.ports import free_port
from tests.support.real_models import piper_dir, whisper_dir
from tests.support.real_speech import joe_clips, real_hub_env, real_service_starters
from tests.support.speech import wav_pcm
from tests.support.waiting import until_sync

COMMANDS = ("Turn on the kitchen light.", "Turn off the kitchen light.")
LIGHT = "input_boolean.kitchen_light"
CHUNK = 3200  # 100 ms of 16 kHz s16
PACE_S = CHUNK / 32_000
VOICED = 500  # a sample louder than this is speech (joe's clips have digital silence around)
WARM_UP = 2
VOICE = "en_US-joe-medium"
WAV_HEADER_BYTES = 44


def _speech_end(pcm: bytes) -> int:
    """Byte offset just after the last voiced sample."""
    samples = memoryview(pcm).cast("h")
    for index in range(len(samples) - 1, -1, -1):
        if abs(samples[index]) > VOICED:
            return 2 * (index + 1)
    return len(pcm)


class _Clock:
    """The end of speech of the turn in flight, set by whoever sends its audio."""

    def __init__(self) -> None:
        self.end_of_speech: float | None = None


async def _paced(pcm: bytes, speech_end: int, clock: _Clock) -> AsyncIterator[bytes]:
    """`pcm` in 100 ms chunks at a microphone's pace, then silence for as long as it is read."""
    started = time.monotonic()
    sent = 0
    for offset in range(0, len(pcm), CHUNK):
        chunk = pcm[offset : offset + CHUNK]
        # A microphone delivers a chunk once it has been spoken, not before.
        await asyncio.sleep(max(0.0, started + (offset + len(chunk)) / 32_000 - time.monotonic()))
        yield chunk
        sent = offset + len(chunk)
        if clock.end_of_speech is None and sent >= speech_end:
            clock.end_of_speech = time.monotonic()
    while True:  # the microphone stays open until the listener stops reading
        await asyncio.sleep(PACE_S)  # one chunk of silence per chunk's duration
        yield bytes(CHUNK)


# ---- Kiwi --------------------------------------------------------------------------------------


async def _kiwi_turn(client: AudioClient, wake: bytes, command: bytes) -> dict[str, Any]:
    clock = _Clock()
    before = len(client.received)
    pcm = wake + command
    sender = asyncio.create_task(
        _send(client, _paced(pcm, len(wake) + _speech_end(command), clock))
    )
    try:
        first = await client.wait(lambda r: r.index >= before and r.audio is not None, wait_s=120)
        arrived = time.monotonic()
        end = await _frame_after(client, "end", before)
        metrics = await _frame_after(client, "metrics", before)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    assert clock.end_of_speech is not None
    assert first is not None
    return {
        "ms": round(1000 * (arrived - clock.end_of_speech), 1),
        "route": end["route"],
        "text": end["text"],
        "metrics": metrics["data"],
    }


async def _frame_after(client: AudioClient, kind: str, index: int) -> dict[str, Any]:
    item = await client.wait(
        lambda r: r.index >= index and r.frame is not None and r.frame.get("type") == kind,
        wait_s=120,
    )
    assert item.frame is not None
    return item.frame


async def _send(client: AudioClient, chunks: AsyncIterator[bytes]) -> None:
    async for chunk in chunks:
        await client.ws.send_bytes(chunk)


# ---- the stock chain ---------------------------------------------------------------------------


def _start_peer(name: str, args: list[str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    module = name.replace("-", "_")
    command = [str(peer_python(name)), "-m", module, "--uri", f"tcp://127.0.0.1:{port}", *args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            __import__("socket").create_connection(("127.0.0.1", port), timeout=1),
        ):
            return True
        return False

    until_sync(listening, f"{name} to listen", timeout_s=120)
    return process, port


async def _wyoming_entity(hass: HomeAssistant, port: int, domain: str) -> str:
    entry = MockConfigEntry(domain="wyoming", data={"host": "127.0.0.1", "port": port})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    [entity_id] = [
        e.entity_id
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.domain == domain
    ]
    return entity_id


async def _stock_turn(
    hass: HomeAssistant,
    http: aiohttp.ClientSession,
    base_url: str,
    pipeline_id: str,
    command: bytes,
) -> dict[str, Any]:
    clock = _Clock()
    events: list[tuple[float, str, dict[str, Any]]] = []
    first_byte: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    fetches: list[asyncio.Task[None]] = []

    async def fetch(url: str) -> None:
        async with http.get(base_url + url) as response:
            response.raise_for_status()
            received = 0
            async for data in response.content.iter_any():
                received += len(data)
                # The first byte of audio: past the 44-byte WAV header HA may send at once.
                if received > WAV_HEADER_BYTES and not first_byte.done():
                    first_byte.set_result(time.monotonic())

    def on_event(event: Any) -> None:
        data = dict(event.data or {})
        events.append((time.monotonic(), str(event.type), data))
        url = (data.get("tts_output") or {}).get("url")
        if url and not fetches:
            fetches.append(asyncio.create_task(fetch(url)))

    metadata = stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )
    await assist_pipeline.async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=on_event,
        stt_metadata=metadata,
        stt_stream=_paced(command, _speech_end(command), clock),
        pipeline_id=pipeline_id,
        # WAV as piper makes it: no resampling through ffmpeg (this machine has none; a real
        # install would spend that time too, so this favours the stock chain).
        tts_audio_output={"preferred_format": "wav"},
    )
    arrived = await asyncio.wait_for(first_byte, 120)
    await asyncio.gather(*fetches)
    assert clock.end_of_speech is not None
    stamps = {name: at for at, name, _ in events}
    intent = next((d for _, n, d in events if n == "intent-end"), {})
    speech = intent.get("intent_output", {}).get("response", {}).get("speech", {})

    def since_eos(name: str) -> float | None:
        at = stamps.get(name)
        return None if at is None else round(1000 * (at - clock.end_of_speech), 1)

    return {
        "ms": round(1000 * (arrived - clock.end_of_speech), 1),
        "text": speech.get("plain", {}).get("speech", ""),
        "stt_end_ms": since_eos("stt-end"),
        "intent_end_ms": since_eos("intent-end"),
        "tts_end_ms": since_eos("tts-end"),
        "transcript": next((d for _, n, d in events if n == "stt-end"), {})
        .get("stt_output", {})
        .get("text"),
    }


# ---- the run -----------------------------------------------------------------------------------


async def build_home(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> str:
    for component in ("homeassistant", "http", "websocket_api", "config", "conversation"):
        assert await async_setup_component(hass, component, {})
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"kitchen_light": {"name": "Kitchen light"}}}
    )
    assert await async_setup_component(hass, "assist_pipeline", {})
    async_expose_entity(hass, conversation.DOMAIN, LIGHT, True)
    return str((await hass_client()).make_url("/")).rstrip("/")


async def test_end_to_end_latency(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    socket_enabled: None,
    tmp_path: Path,
) -> None:
    turns = int(os.environ.get("KIWI_E2E_TURNS", "20"))
    out = Path(os.environ["KIWI_E2E_OUT"])
    home_url = await build_home(hass, hass_client)
    wake_clip, *command_clips = joe_clips(["Hey Jarvis.", *COMMANDS])
    wake = wav_pcm(wake_clip)
    commands = [wav_pcm(clip) for clip in command_clips]

    services = start_services(real_service_starters(tmp_path))
    hub = start_hub(
        tmp_path / "hub",
        speaker=services["speaker"],
        tts_uri=services["tts"].uri,
        env=real_hub_env(services, KIWI_HA_URL=home_url, KIWI_HA_TOKEN=hass_access_token),
    )
    whisper, whisper_port = _start_peer(
        "wyoming-faster-whisper",
        [
            *("--model", str(whisper_dir() / "base"), "--data-dir", str(whisper_dir())),
            *("--language", "en", "--stt-library", "faster-whisper", "--local-files-only"),
        ],
        tmp_path / "wyoming-faster-whisper.log",
    )
    piper, piper_port = _start_peer(
        "wyoming-piper",
        ["--voice", VOICE, "--data-dir", str(piper_dir()), "--local-files-only"],
        tmp_path / "wyoming-piper.log",
    )
    stopped: list[Callable[[], object]] = [hub.stop, *(s.stop for s in services.values())]
    try:
        stt_entity = await _wyoming_entity(hass, whisper_port, "stt")
        tts_entity = await _wyoming_entity(hass, piper_port, "tts")
        pipeline = await async_create_default_pipeline(hass, stt_entity, tts_entity, "stock")
        assert pipeline is not None
        # HA picks the first English voice wyoming-piper lists; the chain speaks with joe.
        await async_update_pipeline(hass, pipeline, tts_voice=VOICE)
        base_url = home_url
        kiwi_rows: list[dict[str, Any]] = []
        stock_rows: list[dict[str, Any]] = []
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {hass_access_token}"}) as http,
            aiohttp.ClientSession() as session,
            AudioClient.connect(
                session, hub.ws_url("/api/audio"), hello={"sample_rate": 16000}
            ) as client,
        ):
            for turn in range(WARM_UP + turns):
                command = commands[turn % 2]
                kiwi = await _kiwi_turn(client, wake, command)
                stock = await _stock_turn(hass, http, base_url, pipeline.id, command)
                if turn >= WARM_UP:
                    kiwi_rows.append(kiwi)
                    stock_rows.append(stock)
        result = {"kiwi": kiwi_rows, "stock": stock_rows, "load": os.getloadavg()}
        await asyncio.to_thread(out.write_text, json.dumps(result, indent=1))
    finally:
        for stop in stopped:
            with contextlib.suppress(Exception):
                stop()
        for process in (whisper, piper):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            process.wait(10)
