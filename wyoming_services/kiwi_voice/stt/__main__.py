"""`kiwi-stt`: Kiwi's speech-to-text Wyoming service (faster-whisper).

Loads the whisper model once at start when it is on disk (otherwise on the first request,
downloading it), then serves any number of connections with `--workers` transcriptions at
a time.
"""

from __future__ import annotations

import argparse
import logging
import os
from functools import partial
from importlib.metadata import version

from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from kiwi_voice.common.errors import ServiceError
from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.info import KIWI_ATTRIBUTION, KIWI_VERSION
from kiwi_voice.common.model_store import ModelStore
from kiwi_voice.common.server import build_parser, parse_args, run, serve

from .engine import WhisperEngine, WhisperSettings
from .handler import SttEventHandler
from .models import WhisperModels

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT = 10300
# Whisper base runs in 181 MB as int8 against 381 MB converted to float32 on a CPU, with the same
# word error rate (bench/bench_speech.py measures both).
DEFAULT_COMPUTE_TYPE = "int8"


def make_parser() -> argparse.ArgumentParser:
    parser = build_parser(
        prog="kiwi-stt",
        description="Kiwi speech-to-text: a Wyoming ASR service running faster-whisper. "
        "Transcripts are streamed (transcript-start, transcript-chunk per segment, "
        "transcript, transcript-stop).",
        port_env="KIWI_STT_PORT",
        default_port=DEFAULT_PORT,
        models_subdir="whisper",
        zeroconf_name="kiwi-stt",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("KIWI_STT_MODEL", "base"),
        help="whisper model: a folder name in the data dirs, a faster-whisper size "
        "(tiny, base, small, ..., tiny.en) or a Hugging Face repo id (KIWI_STT_MODEL)",
    )
    parser.add_argument(
        "--language",
        default=os.environ.get("KIWI_STT_LANGUAGE", "auto"),
        help="language to transcribe, or 'auto' to detect it per utterance; a language "
        "sent by the client wins (KIWI_STT_LANGUAGE)",
    )
    parser.add_argument("--beam-size", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--compute-type",
        default=os.environ.get("KIWI_STT_COMPUTE_TYPE", DEFAULT_COMPUTE_TYPE),
        help="CTranslate2 compute type: int8 (the default: half the memory of float32 on a "
        "CPU, same accuracy, see bench/RESULTS.md), float32, float16, int8_float16, or "
        "default (the model's own) (KIWI_STT_COMPUTE_TYPE)",
    )
    parser.add_argument(
        "--cpu-threads", type=int, default=0, help="threads per transcription (0: automatic)"
    )
    parser.add_argument("--initial-prompt", help="text that primes the first window")
    parser.add_argument(
        "--vad-filter", action="store_true", help="drop non-speech with faster-whisper's VAD"
    )
    parser.add_argument(
        "--full-window",
        action="store_true",
        help="encode every utterance in Whisper's whole 30 s window, as faster-whisper does "
        "(default: only the utterance with 1 s of silence before and 3 s after, about 3x "
        "faster on a CPU)",
    )
    parser.add_argument(
        "--max-audio-seconds",
        type=float,
        default=120.0,
        help="longest utterance accepted; longer ones get a payload_too_large error",
    )
    parser.add_argument(
        "--model-switching",
        choices=("local", "any", "off"),
        default="local",
        help="who may switch the running model (kiwi-stt-load): clients on this machine "
        "(local, the hub), any client, or none",
    )
    parser.add_argument(
        "--download-url",
        default=os.environ.get("HF_ENDPOINT"),
        help="Hugging Face endpoint that models are downloaded from (HF_ENDPOINT; "
        "default https://huggingface.co)",
    )
    return parser


def build_info(engine: WhisperEngine) -> Info:
    """The describe answer, rebuilt per request so `installed` follows the disk."""
    availability = engine.availability()
    model = AsrModel(
        name=engine.settings.model,
        description=availability.describe(
            f"Whisper {engine.settings.model} ({engine.settings.device})"
        ),
        attribution=Attribution(
            name="OpenAI / SYSTRAN", url="https://github.com/SYSTRAN/faster-whisper"
        ),
        installed=availability.installed,
        version=version("faster-whisper"),  # the runtime the model is run with
        languages=engine.languages if availability.installed else [],
    )
    program = AsrProgram(
        name="kiwi-stt",
        description=f"Kiwi speech-to-text (faster-whisper {version('faster-whisper')}, "
        f"{engine.settings.workers} worker(s))",
        attribution=KIWI_ATTRIBUTION,
        installed=True,
        version=KIWI_VERSION,
        models=[model],
        supports_transcript_streaming=True,
        requires_external_vad=True,
    )
    return Info(asr=[program])


async def run_service() -> None:
    args = parse_args(make_parser())
    if args.download_url:
        # huggingface_hub reads its endpoint once, at import, so set it before the import.
        os.environ["HF_ENDPOINT"] = args.download_url
    settings = WhisperSettings(
        model=args.model,
        language=None if args.language == "auto" else args.language,
        beam_size=args.beam_size,
        device=args.device,
        compute_type=args.compute_type,
        cpu_threads=args.cpu_threads,
        initial_prompt=args.initial_prompt,
        vad_filter=args.vad_filter,
        workers=args.workers,
        fitted_window=not args.full_window,
    )
    engine = WhisperEngine(settings, ModelStore(args.data_dir, args.download_dir))
    if engine.find_model_dir() is not None:
        try:
            engine.load()
        except ServiceError as err:  # a broken model must not stop the service from starting
            _LOGGER.error("Whisper model not loaded: %s", err.text)
    else:
        _LOGGER.warning(
            "Whisper model %s is not in %s; it will be downloaded on first use",
            settings.model,
            ", ".join(map(str, engine.store.search_dirs)),
        )
    executor = EngineExecutor("stt", args.workers)
    models = WhisperModels(engine)
    handler_factory = partial(
        SttEventHandler,
        models=models,
        executor=executor,
        build_info=lambda: build_info(models.current),
        max_audio_seconds=args.max_audio_seconds,
        model_switching=args.model_switching,
    )
    await serve(
        args.uri, handler_factory, zeroconf_name=args.zeroconf, on_shutdown=executor.shutdown
    )


def main() -> None:
    run(run_service)


if __name__ == "__main__":
    main()
