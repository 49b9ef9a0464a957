"""The speaker-gated wake word (`wake_speaker_gate`, off by default): only an enrolled,
unblocked voice wakes Kiwi.

Real processes: kiwi-hub with kiwi-wake (openWakeWord hey_jarvis), kiwi-stt, kiwi-tts and
kiwi-speaker. A WAV of "hey jarvis" and a command goes through the hub's pipeline
(POST /api/audio/file): with the gate on, a voice nobody enrolled does not wake Kiwi, the
enrolled voice does, and a blocked one does not; with the gate off (the default) anyone does.
The rates over many voices are in bench/bench_wake_gate.py.
"""

from __future__ import annotations

import io
import wave
from typing import Any

import aiohttp
import pytest

from tests.support.hub_process import HubProcess
from tests.support.pipeline_stack import stack_fixture
from tests.support.speech import espeak_pcm, espeak_wav
from tests.support.voices import ENROL_SENTENCES

pytestmark = pytest.mark.timeout(180)
ANNA, STRANGER = "en-us+m3", "en-us+f2"

stack = stack_fixture(services=("stt", "tts", "wake", "speaker"))


def _wav(voice: str) -> bytes:
    pcm = espeak_pcm("hey jarvis", voice) + espeak_pcm("turn on the kitchen light", voice)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    return out.getvalue()


async def _woke(session: aiohttp.ClientSession, hub: HubProcess, voice: str) -> bool:
    async with session.post(f"{hub.base_url}/api/audio/file", data=_wav(voice)) as answer:
        assert answer.status == 200, await answer.text()
        result: dict[str, Any] = await answer.json()
    return bool(result["wake_word_detected"]) and len(result["turns"]) == 1


async def _gate(session: aiohttp.ClientSession, hub: HubProcess, on: bool) -> None:
    async with session.patch(f"{hub.base_url}/api/config", json={"wake_speaker_gate": on}) as a:
        assert a.status == 200, await a.text()


async def test_only_an_enrolled_unblocked_voice_wakes_kiwi_when_the_gate_is_on(
    hub: HubProcess,
) -> None:
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        async with session.get(f"{hub.base_url}/api/config") as answer:
            assert (await answer.json())["wake_speaker_gate"] is False  # off by default
        assert await _woke(session, hub, STRANGER)  # ungated: anyone wakes Kiwi
        params: dict[str, str] = {"name": "Anna", "priority": "1"}
        for sentence in ENROL_SENTENCES:
            async with session.post(
                f"{hub.base_url}/api/speakers/enroll",
                params=params,
                data=espeak_wav(sentence, ANNA).read_bytes(),
                headers={"Content-Type": "audio/wav"},
            ) as answer:
                assert answer.status == 200, await answer.text()
                params = {"id": (await answer.json())["id"]}
        anna = params["id"]
        await _gate(session, hub, True)
        try:
            assert not await _woke(session, hub, STRANGER)
            assert await _woke(session, hub, ANNA)
            async with session.post(f"{hub.base_url}/api/speakers/{anna}/block") as answer:
                assert answer.status == 200
            assert not await _woke(session, hub, ANNA)
        finally:
            await _gate(session, hub, False)
            async with session.delete(f"{hub.base_url}/api/speakers/{anna}"):
                pass
