"""`kiwi-tts`: Kiwi's text-to-speech Wyoming service (piper-tts).

Loads the default voice once at start when it is on disk (otherwise on the first request,
downloading it), keeps up to `--max-loaded-voices` voices loaded, and synthesises up to
`--workers` requests at a time, streaming each sentence's audio as soon as it is ready.
"""

from __future__ import annotations

import argparse
import logging
import os
from functools import partial
from importlib.metadata import version

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from kiwi_voice.common.errors import ServiceError
from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.framing import FrameLimits
from kiwi_voice.common.info import KIWI_ATTRIBUTION, KIWI_VERSION
from kiwi_voice.common.model_store import ModelStore
from kiwi_voice.common.server import build_parser, parse_args, run, serve

from .engine import PiperEngine, SynthesisDefaults
from .handler import TtsEventHandler
from .voices import DEFAULT_VOICES_URL, VoiceCatalog

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT = 10200
PIPER_ATTRIBUTION = Attribution(name="rhasspy / OHF", url="https://github.com/OHF-Voice/piper1-gpl")


def make_parser() -> argparse.ArgumentParser:
    parser = build_parser(
        prog="kiwi-tts",
        description="Kiwi text-to-speech: a Wyoming TTS service running piper. Supports "
        "synthesize and streaming synthesize-start/chunk/stop; audio is sent sentence by "
        "sentence as soon as each is synthesised.",
        port_env="KIWI_TTS_PORT",
        default_port=DEFAULT_PORT,
        models_subdir="piper",
        zeroconf_name="kiwi-tts",
    )
    parser.add_argument(
        "--voice",
        default=os.environ.get("KIWI_TTS_VOICE", "en_US-lessac-medium"),
        help="default piper voice (KIWI_TTS_VOICE)",
    )
    parser.add_argument("--speaker", help="speaker name or id of the default voice")
    parser.add_argument("--length-scale", type=float, help="phoneme length (<1 faster)")
    parser.add_argument("--noise-scale", type=float, help="generator noise")
    parser.add_argument("--noise-w-scale", type=float, help="phoneme width noise")
    parser.add_argument("--volume", type=float, default=1.0, help="volume multiplier")
    parser.add_argument(
        "--sentence-silence", type=float, default=0.2, help="seconds of silence between sentences"
    )
    parser.add_argument(
        "--max-loaded-voices",
        type=int,
        default=3,
        help="voices kept loaded (least recently used go)",
    )
    parser.add_argument(
        "--samples-per-chunk", type=int, default=1024, help="samples per audio-chunk"
    )
    parser.add_argument(
        "--max-text-chars",
        type=int,
        default=10_000,
        help="longest text accepted per request; longer gets a payload_too_large error",
    )
    parser.add_argument(
        "--use-cuda", action="store_true", help="run voices on CUDA (onnxruntime-gpu)"
    )
    parser.add_argument(
        "--download-url",
        default=os.environ.get("KIWI_PIPER_VOICES_URL", DEFAULT_VOICES_URL),
        help="base URL of the piper voices catalogue that missing voices are downloaded "
        "from (KIWI_PIPER_VOICES_URL)",
    )
    return parser


def build_info(engine: PiperEngine) -> Info:
    """The describe answer, rebuilt per request so `installed` follows the disk."""
    voices = [
        TtsVoice(
            name=listing.name,
            description=listing.description,
            attribution=PIPER_ATTRIBUTION,
            installed=listing.availability.installed,
            version=listing.version,
            languages=listing.languages,
            speakers=[TtsVoiceSpeaker(name=s) for s in listing.speakers] or None,
        )
        for listing in engine.catalog.listings(engine.default_voice)
    ]
    program = TtsProgram(
        name="kiwi-tts",
        description=f"Kiwi text-to-speech (piper-tts {version('piper-tts')})",
        attribution=KIWI_ATTRIBUTION,
        installed=True,
        version=KIWI_VERSION,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


async def run_service() -> None:
    args = parse_args(make_parser())
    catalog = VoiceCatalog(ModelStore(args.data_dir, args.download_dir), args.download_url)
    engine = PiperEngine(
        catalog,
        default_voice=args.voice,
        default_speaker=args.speaker,
        defaults=SynthesisDefaults(
            length_scale=args.length_scale,
            noise_scale=args.noise_scale,
            noise_w_scale=args.noise_w_scale,
            volume=args.volume,
            sentence_silence_s=args.sentence_silence,
        ),
        max_loaded_voices=args.max_loaded_voices,
        use_cuda=args.use_cuda,
    )
    if catalog.find(args.voice) is not None:
        try:
            engine.voice(args.voice)
        except ServiceError as err:  # a broken voice file must not stop the service starting
            _LOGGER.error("Default voice not loaded: %s", err.text)
    else:
        _LOGGER.warning(
            "Voice %s is not in %s; it will be downloaded on first use",
            args.voice,
            ", ".join(map(str, catalog.store.search_dirs)),
        )
    executor = EngineExecutor("tts", args.workers)
    handler_factory = partial(
        TtsEventHandler,
        engine=engine,
        executor=executor,
        build_info=partial(build_info, engine),
        max_text_chars=args.max_text_chars,
        samples_per_chunk=args.samples_per_chunk,
        # Text rides in the event's JSON data; allow the longest text in UTF-8 plus slack.
        frame_limits=FrameLimits(max_data_bytes=4 * args.max_text_chars + 64 * 1024),
    )
    await serve(
        args.uri, handler_factory, zeroconf_name=args.zeroconf, on_shutdown=executor.shutdown
    )


def main() -> None:
    run(run_service)


if __name__ == "__main__":
    main()
