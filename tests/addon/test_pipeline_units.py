"""The pipeline's parts that decide without a network: end of speech, wake word matching and
engine choice, the speaker policy, per-speaker contexts, audio conversion and buffering."""

from __future__ import annotations

import io
import logging
import sys
import wave
from pathlib import Path

import pytest

from kiwi_voice.hub.audio.convert import PcmConverter
from kiwi_voice.hub.audio.wavfile import InvalidWav, read_wav
from kiwi_voice.hub.pipeline.metrics import TurnTimer
from kiwi_voice.hub.pipeline.policy import Action, Role, Speaker, SpeakerPolicy, role_of
from kiwi_voice.hub.pipeline.ring import AudioRing
from kiwi_voice.hub.pipeline.vad import Endpointer, EndpointSettings, EndReason
from kiwi_voice.hub.pipeline.wake import (
    InstalledWakeWord,
    choose_engine,
    normalize_word,
    text_matches_wake_word,
)
from kiwi_voice.hub.routing.contexts import SpeakerContexts
from kiwi_voice.hub.settings import SettingsStore, defaults_from_environ
from kiwi_voice.hub.store import Store
from tests.support.speech import espeak_pcm

SECOND = 32000  # bytes of one second of 16 kHz s16


# ---- end of speech -----------------------------------------------------------------------------


def test_speech_followed_by_silence_ends_after_the_silence() -> None:
    speech = espeak_pcm("turn on the kitchen light")  # 1 s silence, speech, 1 s silence
    endpointer = Endpointer(EndpointSettings(silence_seconds=0.6))
    result = None
    for offset in range(0, len(speech), 1000):  # pieces that are not whole frames
        result = endpointer.add(speech[offset : offset + 1000])
        if result is not None:
            break
    assert result is not None
    assert result.reason is EndReason.SILENCE
    assert result.had_speech
    # The leading second of silence is mostly dropped, the speech kept, the tail trimmed.
    assert 0.8 < result.seconds < len(speech) / SECOND - 0.9
    assert result.end_offset < len(speech)
    assert endpointer.add(b"\x00" * 960) is result  # answered once, the same afterwards


def test_a_pause_offers_the_utterance_early_and_the_same_cut_ends_it() -> None:
    """Early STT: at 0.3 s into the pause the endpointer offers the utterance so far, once; when
    the pause is the end, the final utterance is exactly that audio (so its transcript is)."""
    speech = espeak_pcm("turn on the kitchen light")
    endpointer = Endpointer(EndpointSettings(silence_seconds=0.8, speculate_seconds=0.3))
    offered = []
    result = None
    for offset in range(0, len(speech), 3200):
        result = endpointer.add(speech[offset : offset + 3200])
        if endpointer.tentative is not None:
            offered.append(endpointer.tentative)
            endpointer.tentative = None
        if result is not None:
            break
    assert result is not None
    assert result.reason is EndReason.SILENCE
    assert len(offered) == 1
    assert offered[0].pcm == result.pcm


def test_speech_after_a_pause_withdraws_the_early_cut() -> None:
    first, second = espeak_pcm("turn on"), espeak_pcm("the kitchen light")
    endpointer = Endpointer(
        EndpointSettings(silence_seconds=2.5, speculate_seconds=0.3, start_timeout_seconds=None)
    )
    endpointer.add(first)  # ends with a second of silence: past 0.3 s, before 2.5 s
    early = endpointer.tentative
    assert early is not None
    endpointer.add(second[: len(second) // 2])  # the speaker goes on
    assert endpointer.tentative is None or endpointer.tentative.pcm != early.pcm
    result = endpointer.finish()
    assert len(result.pcm) > len(early.pcm)


def test_no_speech_ends_at_the_start_timeout() -> None:
    endpointer = Endpointer(EndpointSettings(start_timeout_seconds=0.5))
    result = endpointer.add(b"\x00\x00" * 16000)
    assert result is not None
    assert result.reason is EndReason.NO_SPEECH
    assert not result.had_speech
    assert result.pcm == b""
    assert 0.5 * SECOND <= result.end_offset < 0.6 * SECOND


def test_a_long_utterance_is_cut_at_the_limit() -> None:
    speech = espeak_pcm("one two three four five six seven eight nine ten", speed=120)
    endpointer = Endpointer(EndpointSettings(max_seconds=1.5, silence_seconds=2.0))
    result = endpointer.add(speech)
    assert result is not None
    assert result.reason is EndReason.MAX_LENGTH
    assert result.seconds <= 1.5 + 0.03


def test_the_end_of_input_ends_the_utterance() -> None:
    endpointer = Endpointer(EndpointSettings(silence_seconds=5.0, start_timeout_seconds=None))
    assert endpointer.add(espeak_pcm("hello there")) is None
    result = endpointer.finish()
    assert result.reason is EndReason.END_OF_INPUT
    assert result.had_speech


# ---- wake words --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transcript", "wake_word", "rest"),
    [
        ("Kiwi, turn on the lights.", "kiwi", "turn on the lights"),
        ("kiwi", "kiwi", ""),
        ("Hey Jarvis! What time is it?", "hey_jarvis", "what time is it"),
        ("ok so hey jarvis stop", "hey jarvis", "stop"),
        ("the kiwis are ripe", "kiwi", None),
        ("hey there jarvis", "hey_jarvis", None),
        ("", "kiwi", None),
    ],
)
def test_a_transcript_matches_the_wake_word(
    transcript: str, wake_word: str, rest: str | None
) -> None:
    assert text_matches_wake_word(transcript, wake_word) == rest


def test_model_names_and_phrases_normalize_alike() -> None:
    assert normalize_word("hey_jarvis_v0.1") == normalize_word("Hey Jarvis!") == "hey jarvis"


def test_the_engine_follows_what_kiwi_wake_has() -> None:
    installed = [InstalledWakeWord("hey_jarvis", "hey jarvis"), InstalledWakeWord("kiwi", "kiwi")]
    only_jarvis = installed[:1]
    assert choose_engine("auto", "kiwi", installed).engine == "openwakeword"
    assert choose_engine("auto", "kiwi", installed).model == "kiwi"
    assert choose_engine("auto", "kiwi", only_jarvis).engine == "text"
    assert choose_engine("auto", "Hey Jarvis", only_jarvis).model == "hey_jarvis"
    assert choose_engine("auto", "kiwi", None).engine == "text"  # kiwi-wake did not answer
    assert choose_engine("text", "hey_jarvis", only_jarvis).engine == "text"
    explicit = choose_engine("openwakeword", "kiwi", only_jarvis)
    assert (explicit.engine, explicit.model) == ("openwakeword", "kiwi")


# ---- policy ------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> SettingsStore:
    store = Store(tmp_path / "kiwi.db")
    return SettingsStore(store, defaults_from_environ({}))


def _voice(priority: int | None, *, blocked: bool = False, known: bool = True) -> Speaker:
    return Speaker(
        id="spk_0123abcd" if known else None,
        name="Someone" if known else "Unknown",
        priority=priority,
        confidence=0.9,
        is_blocked=blocked,
    )


def test_roles_come_from_priority_and_the_blocked_flag() -> None:
    assert role_of(_voice(0)) is Role.OWNER
    assert role_of(_voice(1)) is Role.FRIEND
    assert role_of(_voice(2)) is Role.GUEST
    assert role_of(_voice(3)) is Role.BLOCKED
    assert role_of(_voice(0, blocked=True)) is Role.BLOCKED
    assert role_of(_voice(None, known=False)) is Role.UNKNOWN
    assert role_of(Speaker.client("browser:1")) is Role.OWNER


def test_the_policy_decides_per_role(settings: SettingsStore) -> None:
    policy = SpeakerPolicy(settings)
    assert policy.decide(_voice(0)).action is Action.RUN
    assert policy.decide(_voice(1)).action is Action.RUN
    assert policy.decide(_voice(2)).action is Action.APPROVE  # guest_policy default: approve
    assert policy.decide(_voice(None, known=False)).action is Action.CHAT_ONLY  # default: deny
    assert policy.decide(_voice(0, blocked=True)).action is Action.DROP
    echo = Speaker(id="self", name="Kiwi", priority=0, confidence=0.99, is_self=True)
    assert policy.decide(echo).action is Action.DROP
    settings.update({"guest_policy": "allow", "unknown_speaker_policy": "approve"})
    assert policy.decide(_voice(2)).action is Action.RUN
    assert policy.decide(_voice(None, known=False)).action is Action.APPROVE


# ---- conversation contexts ---------------------------------------------------------------------


def test_contexts_are_per_speaker_alternate_and_expire() -> None:
    now = [1000.0]
    contexts = SpeakerContexts(idle_seconds=lambda: 60.0, max_turns=4, clock=lambda: now[0])
    contexts.record("ann", "hello", "hi Ann")
    contexts.record("ann", "", "ignored: no question")
    contexts.record("bob", "hey", "hi Bob")
    assert [m.text for m in contexts.history("ann")] == ["hello", "hi Ann"]
    for number in range(3):
        contexts.record("ann", f"question {number}", f"answer {number}")
    history = contexts.history("ann")
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[0].text == "question 1"
    now[0] += 61
    assert contexts.history("ann") == []
    assert contexts.active_count == 0


# ---- audio -------------------------------------------------------------------------------------


def _wav_bytes(rate: int, channels: int, frames: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


def test_a_stereo_48k_wav_becomes_16k_mono() -> None:
    audio = read_wav(_wav_bytes(48000, 2, b"\x00\x10\x00\x20" * 48000))  # one second
    assert abs(audio.seconds - 1.0) < 0.01
    assert (audio.source_rate, audio.source_channels) == (48000, 2)
    with pytest.raises(InvalidWav):
        read_wav(b"RIFF....not a wav")
    with pytest.raises(InvalidWav):
        read_wav(_wav_bytes(16000, 1, b""))


def test_the_converter_keeps_state_across_chunks() -> None:
    converter = PcmConverter(16000)
    source = espeak_pcm("hello")
    resampled = PcmConverter(48000).convert(source, 16000)
    # 2401 samples a chunk: not a multiple of 3, so the resampler's state must carry over.
    back = b"".join(
        converter.convert(resampled[i : i + 4802], 48000) for i in range(0, len(resampled), 4802)
    )
    assert abs(len(back) - len(source)) <= 4  # no drift across chunk boundaries


def test_the_ring_keeps_the_newest_audio_by_position() -> None:
    ring = AudioRing(16000, seconds=1.0)
    ring.append(b"\x01\x00" * 12000)
    ring.append(b"\x02\x00" * 12000)
    assert ring.end == 24000
    assert ring.start == 8000
    assert ring.since(20000) == b"\x02\x00" * 4000
    assert len(ring.since(0)) == 32000  # older than kept: from the oldest sample


def test_turn_metrics_are_measured_from_the_end_of_speech() -> None:
    now = [10.0]
    timer = TurnTimer("turn_1", clock=lambda: now[0])
    timer.stt_seconds, timer.speaker_seconds = 0.2, 0.05
    now[0] = 10.3
    timer.route_started = now[0]
    now[0] = 10.5
    timer.mark_first_token()
    now[0] = 10.6
    timer.mark_first_sentence()
    now[0] = 10.7
    timer.mark_first_audio()
    now[0] = 12.0
    payload = timer.payload(interrupted=False)
    assert payload["first_audio_ms"] == pytest.approx(700.0)
    assert payload["llm_first_token_ms"] == pytest.approx(200.0)
    assert payload["route_first_sentence_ms"] == pytest.approx(300.0)
    assert payload["stt_ms"] == 200.0
    assert payload["total_ms"] == pytest.approx(2000.0)


async def test_host_audio_is_off_without_sounddevice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiwi_voice.hub.audio.host import HostAudio

    # sounddevice is a dependency now: a machine without it is one where importing it fails.
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    from kiwi_voice.hub.context import build_context
    from kiwi_voice.hub.options import parse_options
    from kiwi_voice.hub.voice.setup import build_pipeline

    environ: dict[str, str] = {}
    context = build_context(parse_options(["--data-dir", str(tmp_path)], environ), environ)
    runtime = build_pipeline(context, environ)
    try:
        with caplog.at_level(logging.INFO, logger="kiwi_voice.hub.audio.host"):
            assert await HostAudio.start(runtime.listener, context.outputs, "auto") is None
            assert await HostAudio.start(runtime.listener, context.outputs, "off") is None
    finally:
        await runtime.controls.close()
        await context.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("Host audio disabled: sounddevice is not available") for m in messages)
    assert "Host audio off (KIWI_HOST_AUDIO=off)" in messages
    assert context.outputs.count == 0


# ---- a service that dies mid-answer ------------------------------------------------------------


async def test_a_tts_service_killed_mid_chunk_is_unavailable_not_an_internal_error() -> None:
    """A kill can land inside an audio chunk: the torn frame (a header promising more payload
    than ever comes) is the TTS service gone (tts_unavailable), not a hub failure."""
    import asyncio
    import json

    from kiwi_voice.hub.errors import ServiceUnavailable
    from kiwi_voice.hub.tts import TtsClient

    async def dying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # the synthesize request
        start = {"type": "audio-start", "data": {"rate": 16000, "width": 2, "channels": 1}}
        chunk = {"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}}
        writer.write(json.dumps(start).encode() + b"\n")
        writer.write(json.dumps({**chunk, "payload_length": 3200}).encode() + b"\n" + b"\0" * 10)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(dying, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ServiceUnavailable) as failure:
            async for _ in TtsClient(f"tcp://127.0.0.1:{port}").synthesize("hello"):
                pass
    finally:
        server.close()
        await server.wait_closed()
    assert failure.value.code == "tts_unavailable"
    assert failure.value.service == "tts"
