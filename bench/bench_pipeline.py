"""Voice pipeline latency, on the real processes (kiwi-hub, kiwi-stt, kiwi-tts, kiwi-speaker on the
offline models; the local Anthropic server as Claude).

- overhead: push-to-talk turns over /api/audio. The hub's own share of the time from the end of
  speech to the first audio byte = first_audio_ms − max(stt_ms, speaker_ms) (they run in
  parallel) − the model's time to its first complete sentence − kiwi-tts's time to its first
  audio. Also what the client sees: end_speaking sent → first binary frame received.
- streaming: typed turns whose answer streams at TOKEN_DELAY_S per word; first audio with
  sentence streaming (each sentence to kiwi-tts as soon as it is complete) vs with the whole
  answer sent to kiwi-tts at once (KIWI_SENTENCE_STREAMING=off).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.fake_anthropic import ScriptedReply
from tests.support.offline_models import populate_models_dir
from tests.support.pipeline_client import AudioClient
from tests.support.pipeline_stack import PipelineStack, start_stack
from tests.support.speech import espeak_pcm

_LOGGER = logging.getLogger(__name__)
WARM_UP_TURNS = 2
OVERHEAD_TURNS = 20
STREAMING_TURNS = 8
TOKEN_DELAY_S = 0.03
SHORT_REPLY = "Okay, done."
LONG_REPLY = (
    "Here is the first sentence of a longer answer. The second sentence follows it closely. "
    "And a third one ends the answer for good."
)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1)}


async def _overhead(stack: PipelineStack) -> dict[str, Any]:
    assert stack.hub is not None
    hub = stack.hub
    command = espeak_pcm("what is the weather like today")
    rows: dict[str, list[float]] = {
        key: []
        for key in (
            "hub_overhead_ms",
            "first_audio_ms",
            "client_first_audio_ms",
            "stt_ms",
            "speaker_ms",
            "llm_first_sentence_ms",
            "tts_first_audio_ms",
        )
    }
    hello = {"mode": "push_to_talk"}
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello=hello) as client,
    ):
        for turn in range(WARM_UP_TURNS + OVERHEAD_TURNS):
            client.received.clear()
            await client.send({"type": "start_speaking"})
            listening = await client.wait_frame("listening")
            await client.send_audio(command)
            sent = len(client.received)
            await client.send({"type": "end_speaking"})
            ended_speaking = time.perf_counter()
            await client.wait(lambda r, after=sent: r.index >= after and r.audio is not None, 60)
            first_byte = time.perf_counter()
            frame = await client.wait_frame("metrics", 60, turn_id=listening["turn_id"])
            data = frame["data"]
            if turn < WARM_UP_TURNS:
                continue  # first use of each engine (model loading, JIT) is not the pipeline
            understood = max(data["stt_ms"], data["speaker_ms"])
            rows["hub_overhead_ms"].append(
                data["first_audio_ms"]
                - understood
                - data["route_first_sentence_ms"]
                - data["tts_first_audio_ms"]
            )
            rows["first_audio_ms"].append(data["first_audio_ms"])
            rows["client_first_audio_ms"].append((first_byte - ended_speaking) * 1000)
            rows["stt_ms"].append(data["stt_ms"])
            rows["speaker_ms"].append(data["speaker_ms"])
            rows["llm_first_sentence_ms"].append(data["route_first_sentence_ms"])
            rows["tts_first_audio_ms"].append(data["tts_first_audio_ms"])
    return {key: _percentiles(values) for key, values in rows.items()}


async def _first_audio(stack: PipelineStack) -> list[float]:
    assert stack.hub is not None
    hub = stack.hub
    values = []
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(
            session, hub.ws_url("/api/audio"), hello={"output_format": "none"}
        ) as client,
    ):
        for number in range(STREAMING_TURNS):
            await client.send({"type": "text_input", "text": f"tell me something, take {number}"})
            frame = await client.wait_frame("metrics", 60)
            values.append(frame["data"]["first_audio_ms"])
            client.received.clear()
    return values


def _stack(
    models: Path, work: Path, name: str, services: tuple[str, ...], **env: str
) -> PipelineStack:
    return start_stack(models, work / name, services=services, homeassistant=False, env=env)


def run(results: dict[str, Any]) -> None:
    section: dict[str, Any] = {
        "notes": [
            "engines are the offline test models (tiny random whisper, tiny piper voice); "
            "Claude is the local fake server",
            f"overhead: {OVERHEAD_TURNS} push-to-talk turns; streaming: {STREAMING_TURNS} "
            f"typed turns, {TOKEN_DELAY_S * 1000:.0f} ms per streamed word",
        ]
    }
    results["pipeline"] = section
    with tempfile.TemporaryDirectory(prefix="kiwi-bench-pipeline.") as folder:
        work = Path(folder)
        models = work / "models"
        populate_models_dir(models)
        stack = _stack(models, work, "overhead", ("stt", "tts", "speaker"))
        try:
            assert stack.claude is not None
            stack.claude.reply = lambda _request: ScriptedReply(SHORT_REPLY)
            section["overhead"] = asyncio.run(_overhead(stack))
        finally:
            stack.stop()

        first_audio: dict[str, list[float]] = {}
        for mode in ("on", "off"):
            stack = _stack(
                models, work, f"streaming-{mode}", ("tts",), KIWI_SENTENCE_STREAMING=mode
            )
            try:
                assert stack.claude is not None
                stack.claude.reply = lambda _request: ScriptedReply(LONG_REPLY)
                stack.claude.token_delay_seconds = TOKEN_DELAY_S
                first_audio[mode] = asyncio.run(_first_audio(stack))
            finally:
                stack.stop()
        streamed = _percentiles(first_audio["on"])
        whole = _percentiles(first_audio["off"])
        section["first_audio_ms"] = {
            "sentence_streaming": streamed,
            "whole_answer": whole,
            "saved_p50": round(whole["p50"] - streamed["p50"], 1),
        }
    _LOGGER.info("pipeline: %s", section)
