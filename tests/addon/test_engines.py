"""Each engine's real loading and inference path runs on the offline test models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import offline_models, tiny_piper, tiny_whisper
from tests.support.cache import REPO_ROOT
from tests.support.speech import espeak_pcm, espeak_wav, wav_pcm

pytestmark = pytest.mark.timeout(120)

WAKE_NEGATIVE = "what is the weather like in paris today"


# --- faster-whisper --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_model(offline_whisper_dir: Path) -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(str(offline_whisper_dir), device="cpu", compute_type="int8")


def _speech_samples(text: str) -> np.ndarray:
    return np.frombuffer(espeak_pcm(text), np.int16).astype(np.float32) / 32768.0


def test_whisper_dir_is_a_complete_ctranslate2_model(offline_whisper_dir: Path) -> None:
    names = {path.name for path in offline_whisper_dir.iterdir()}
    assert {"model.bin", "config.json", "vocabulary.json", "tokenizer.json"} <= names
    assert "preprocessor_config.json" in names
    vocabulary = json.loads((offline_whisper_dir / "vocabulary.json").read_text("utf-8"))
    assert len(vocabulary) == tiny_whisper.VOCAB_SIZE
    assert vocabulary[tiny_whisper.EMPTY_TOKEN_ID] == ""
    assert vocabulary[50257:50260] == ["<|endoftext|>", "<|startoftranscript|>", "<|en|>"]
    assert vocabulary[50357] == "<|su|>"
    assert vocabulary[50358:50364] == [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]
    assert vocabulary[50364] == "<|0.00|>"
    assert vocabulary[-1] == "<|30.00|>"


@pytest.mark.parametrize("compute_type", ["int8", "float32"])
def test_faster_whisper_loads_offline_as_multilingual(
    offline_whisper_dir: Path, compute_type: str
) -> None:
    from faster_whisper import WhisperModel

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    model = WhisperModel(str(offline_whisper_dir), device="cpu", compute_type=compute_type)
    assert model.model.is_multilingual
    assert model.model.n_mels == tiny_whisper.N_MELS
    assert model.hf_tokenizer.token_to_id("<|endoftext|>") == tiny_whisper.EOT_ID
    assert model.hf_tokenizer.token_to_id("<|0.00|>") == tiny_whisper.FIRST_TIMESTAMP_ID


def test_faster_whisper_transcribes_speech(whisper_model: Any) -> None:
    clip = espeak_wav("turn on the kitchen lights")
    segments, info = whisper_model.transcribe(
        str(clip), beam_size=1, temperature=0.0, max_new_tokens=16
    )
    segments = list(segments)

    with wave.open(str(clip), "rb") as wav:
        duration = wav.getnframes() / wav.getframerate()
    assert info.duration == pytest.approx(duration, abs=0.01)
    assert info.language in whisper_model.supported_languages
    assert 0.0 < info.language_probability <= 1.0
    assert segments, "the tiny model always writes one segment per window"
    for segment in segments:
        assert 0.0 <= segment.start < segment.end <= duration + 0.02
    # the designed decoder's fixed text: a guarantee the services' tests build on
    assert "".join(segment.text for segment in segments) == tiny_whisper.DESIGNED_TEXT


def test_faster_whisper_hears_the_audio(whisper_model: Any) -> None:
    """The encoder and cross-attention really run: different audio, different scores."""
    speech, _ = whisper_model.transcribe(
        _speech_samples("what time is it"), beam_size=1, temperature=0.0, language="en"
    )
    silence, _ = whisper_model.transcribe(
        np.zeros(3 * 16000, np.float32), beam_size=1, temperature=0.0, language="en"
    )
    speech_scores = [segment.avg_logprob for segment in speech]
    silence_scores = [segment.avg_logprob for segment in silence]
    assert speech_scores
    assert silence_scores
    assert speech_scores != silence_scores


def test_faster_whisper_word_timestamps_and_no_timestamps(whisper_model: Any) -> None:
    samples = _speech_samples("set a timer for five minutes")
    worded, _ = whisper_model.transcribe(samples, beam_size=1, word_timestamps=True)
    words = [word for segment in worded for word in segment.words]
    assert words
    assert all(word.start <= word.end for word in words)
    plain, _ = whisper_model.transcribe(samples, beam_size=1, without_timestamps=True)
    assert [segment.text for segment in plain] == [tiny_whisper.DESIGNED_TEXT]


def test_the_fitted_window_encodes_only_the_frames_that_hold_audio(
    offline_whisper_dir: Path,
) -> None:
    """faster-whisper pads a window's features with zero columns to 3000 frames; the fitted
    window hands the encoder the columns before the padding only."""
    import ctranslate2

    from kiwi_voice.stt.fitted_window import FittedWindowWhisper

    model = FittedWindowWhisper(str(offline_whisper_dir), device="cpu", compute_type="int8")
    features = np.zeros((tiny_whisper.N_MELS, 3000), np.float32)
    features[:, :611] = np.random.default_rng(0).normal(size=(tiny_whisper.N_MELS, 611))
    encoded = model.encode(features)
    assert isinstance(encoded, ctranslate2.StorageView)
    assert encoded.shape[1] == 306  # 612 frames (stride 2) of the 611 heard, not 1500


def test_the_fitted_window_keeps_what_was_heard_and_drops_repetitions() -> None:
    from faster_whisper.transcribe import Segment

    from kiwi_voice.stt.fitted_window import (
        LEAD_SILENCE_SECONDS,
        SILENCE_PAD_SECONDS,
        spoken_segments,
    )

    def segment(start: float, end: float, text: str) -> Segment:
        return Segment(0, 0, start, end, text, [], 0.0, 0.0, 0.0, None, 0.0)

    # 4.5 s: speech for 4.2 s, then 0.3 s of near silence (a reply's own trailing pause).
    rng = np.random.default_rng(0)
    audio = np.concatenate([0.1 * rng.normal(size=67_200), 0.0001 * rng.normal(size=4_800)])
    spoken = len(audio) / 16_000
    lead, window_end = LEAD_SILENCE_SECONDS, LEAD_SILENCE_SECONDS + spoken + SILENCE_PAD_SECONDS
    heard = [
        # Whisper may end the first segment anywhere, even past the window: it is kept.
        segment(lead, window_end + 1, "Turn on the kitchen light."),
        segment(lead + 3.0, lead + 4.0, "And the fan."),  # inside the speech: kept
        segment(lead + 4.25, lead + 4.5, "you"),  # over the near silence: a hallucination
        segment(lead + spoken, window_end, "Turn on the kitchen light."),  # in the silence after
        segment(lead + 1.0, window_end + 1, "Turn on"),  # past the window
    ]
    assert list(spoken_segments(heard, audio.astype(np.float32))) == [
        ("Turn on the kitchen light.", 0.0, spoken),  # in the utterance's own clock
        ("And the fan.", 3.0, 4.0),
    ]


def test_the_stt_engine_transcribes_in_a_fitted_window_or_the_full_one(
    tmp_path: Path,
    offline_whisper_dir: Path,
) -> None:
    from kiwi_voice.common.model_store import ModelStore
    from kiwi_voice.stt.engine import Segment, WhisperEngine, WhisperSettings

    texts = {}
    for fitted in (True, False):
        settings = WhisperSettings(
            model=str(offline_whisper_dir),
            language="en",
            beam_size=1,
            device="cpu",
            compute_type="int8",
            cpu_threads=0,
            initial_prompt=None,
            vad_filter=False,
            workers=1,
            fitted_window=fitted,
        )
        engine = WhisperEngine(settings, ModelStore([offline_whisper_dir.parent], tmp_path))
        parts = list(engine.transcribe(_speech_samples("what time is it"), "en"))
        texts[fitted] = "".join(p.text for p in parts if isinstance(p, Segment))
        assert type(engine._model).__name__ == ("FittedWindowWhisper" if fitted else "WhisperModel")
    assert texts[True] == texts[False] == tiny_whisper.DESIGNED_TEXT


# --- piper -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def piper_voice(offline_piper_voice: Path) -> Any:
    from piper import PiperVoice

    return PiperVoice.load(offline_piper_voice)


def test_piper_voice_files(offline_piper_voice: Path) -> None:
    assert offline_piper_voice.name == "en_US-kiwi_test-x_low.onnx"
    config = json.loads(Path(f"{offline_piper_voice}.json").read_text("utf-8"))
    assert config["espeak"]["voice"] == "en-us"
    assert config["audio"]["sample_rate"] == tiny_piper.SAMPLE_RATE


def test_piper_synthesizes_espeak_phonemes(piper_voice: Any) -> None:
    from piper.phoneme_ids import phonemes_to_ids

    chunks = list(piper_voice.synthesize("Hello world. Kiwi is listening!"))

    assert len(chunks) == 2, "one audio chunk per sentence"
    first = chunks[0]
    # espeak-ng's IPA for "hello world", not a character-per-letter fallback
    assert "".join(first.phonemes).startswith("həlˈoʊ wˈɜːld")
    for chunk in chunks:
        assert (chunk.sample_rate, chunk.sample_width, chunk.sample_channels) == (16000, 2, 1)
        assert chunk.phoneme_ids == phonemes_to_ids(chunk.phonemes)
        assert chunk.phoneme_ids[0] == 1
        assert chunk.phoneme_ids[-1] == 2
        assert len(set(chunk.phoneme_ids)) > 8
        assert len(chunk.audio_float_array) == len(chunk.phoneme_ids) * tiny_piper.HOP_LENGTH
        assert np.abs(chunk.audio_int16_array).max() > 10000
    first_audio, second_audio = (chunk.audio_int16_array[:4096] for chunk in chunks)
    assert not np.array_equal(first_audio, second_audio), "different phonemes, different audio"


def test_piper_length_scale_stretches_audio(piper_voice: Any) -> None:
    from piper import SynthesisConfig

    normal = next(iter(piper_voice.synthesize("Good morning.")))
    slow = next(iter(piper_voice.synthesize("Good morning.", SynthesisConfig(length_scale=2.0))))
    assert len(slow.audio_float_array) == 2 * len(normal.audio_float_array)


# --- openWakeWord ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wake_model(offline_wakeword_dir: Path) -> Any:
    from openwakeword.model import Model

    return Model(
        wakeword_models=[
            str(offline_wakeword_dir / f"{word}_v0.1.onnx")
            for word in offline_models.OPENWAKEWORD_WAKE_WORDS
        ],
        inference_framework="onnx",
        melspec_model_path=str(offline_wakeword_dir / "melspectrogram.onnx"),
        embedding_model_path=str(offline_wakeword_dir / "embedding_model.onnx"),
    )


def _peak_scores(model: Any, pcm: bytes) -> dict[str, float]:
    model.reset()
    samples = np.frombuffer(pcm, np.int16)
    peaks: dict[str, float] = {}
    for start in range(0, len(samples) - 1279, 1280):  # 80 ms chunks, as the service feeds
        for name, score in model.predict(samples[start : start + 1280]).items():
            peaks[name] = max(peaks.get(name, 0.0), float(score))
    return peaks


def test_openwakeword_loads_the_pretrained_models(wake_model: Any) -> None:
    assert sorted(wake_model.models) == sorted(
        f"{word}_v0.1" for word in offline_models.OPENWAKEWORD_WAKE_WORDS
    )


@pytest.mark.parametrize(("text", "model_name"), [("hey jarvis", "hey_jarvis_v0.1")])
def test_openwakeword_separates_wake_word_from_speech(
    wake_model: Any, text: str, model_name: str
) -> None:
    positive = _peak_scores(wake_model, espeak_pcm(text))
    negative = _peak_scores(wake_model, espeak_pcm(WAKE_NEGATIVE))
    assert positive[model_name] > 0.5
    assert negative[model_name] < 0.1


# --- resemblyzer -----------------------------------------------------------------------------


def test_resemblyzer_tells_espeak_voices_apart(voice_encoder: Any) -> None:
    from resemblyzer import preprocess_wav

    def embed(text: str, voice: str) -> np.ndarray:
        return voice_encoder.embed_utterance(preprocess_wav(espeak_wav(text, voice)))

    first = embed("turn on the kitchen lights please", "en-us+m3")
    same_voice = embed("what time is it in tokyo right now", "en-us+m3")
    other_voice = embed("what time is it in tokyo right now", "en-us+f2")
    assert float(first @ same_voice) > float(first @ other_voice) + 0.1


def test_resemblyzer_weights_ship_with_the_package() -> None:
    weights = offline_models.resemblyzer_weights_path()
    assert weights.is_file()
    assert weights.stat().st_size > 1_000_000


# --- the cache and the helpers ---------------------------------------------------------------


def test_espeak_clips_are_cached_byte_identical_and_padded() -> None:
    clip = espeak_wav("hey jarvis")
    with wave.open(str(clip), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
    samples = np.frombuffer(wav_pcm(clip), np.int16)
    assert not samples[:16000].any()
    assert not samples[-16000:].any()
    assert samples[16000:-16000].any()
    assert espeak_wav("hey jarvis") == clip
    assert espeak_wav("hey jarvis", voice="en-us+f2") != clip


def test_populate_models_dir_lays_out_kiwi_models(offline_models_dir: Path) -> None:
    assert (offline_models_dir / "whisper" / "tiny-random" / "model.bin").is_file()
    voice = offline_models_dir / "piper" / "en_US-kiwi_test-x_low.onnx"
    assert voice.is_file()
    assert Path(f"{voice}.json").is_file()
    wake_files = {path.name for path in (offline_models_dir / "openwakeword").iterdir()}
    assert wake_files == set(offline_models.OPENWAKEWORD_MODELS)
    offline_models.populate_models_dir(offline_models_dir)  # again: idempotent
    assert (offline_models_dir / "whisper" / "tiny-random" / "model.bin").is_file()


def _run_helper(code: str, cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "KIWI_TEST_CACHE": str(cache)},
        stdout=subprocess.PIPE,
        text=True,
    )


def test_parallel_builds_share_one_cache_entry(tmp_path: Path) -> None:
    code = "from tests.support.offline_models import piper_voice_path; print(piper_voice_path())"
    builders = [_run_helper(code, tmp_path) for _ in range(3)]
    outputs = {builder.communicate(timeout=60)[0].strip() for builder in builders}
    assert all(builder.returncode == 0 for builder in builders)
    assert len(outputs) == 1
    entries = [path.name for path in tmp_path.iterdir() if not path.name.startswith(".")]
    assert len(entries) == 1
    assert entries[0].startswith("piper-")
    assert not [path for path in tmp_path.iterdir() if path.is_dir() and path.name.startswith(".")]


def test_helpers_import_no_engine_library(tmp_path: Path) -> None:
    """The HA env imports these helpers: no engine may load at import time."""
    code = (
        "import sys, tests.support.offline_models, tests.support.speech\n"
        "heavy = {'torch', 'ctranslate2', 'onnx', 'onnxruntime', 'piper', 'numpy', 'tokenizers'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    helper = _run_helper(code, tmp_path)
    assert helper.communicate(timeout=60)[0].strip() == "[]"
