"""`kiwi-wake`: openWakeWord as a Wyoming wake-word service (default port 10400).

    kiwi-wake --uri tcp://0.0.0.0:10400 --data-dir /data/models/openwakeword \\
        --custom-model-dir /share/openwakeword --wake-word hey_jarvis --threshold 0.5

Models are loaded once at start and shared by every connection; `--workers` inference
threads serve all streams, each pass scoring every stream with audio waiting (a batch).
Missing built-in models are fetched in the background unless `--no-download`; until then the
service answers `describe` and reports `model_missing` to requests.
"""

from __future__ import annotations

import argparse
import logging
import os
from functools import partial
from pathlib import Path

from wyoming.info import Info

from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.model_store import ModelStore
from kiwi_voice.common.server import build_parser, parse_args, run, serve

from .batcher import WakeBatcher
from .catalog import BUILTIN_RELEASE_URL
from .engine import DetectionSettings
from .handler import WakeEventHandler
from .info import build_info
from .loader import WakeConfig, WakeModels

_LOGGER = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = build_parser(
        prog="kiwi-wake",
        description=__doc__.split("\n\n", 1)[0],
        port_env="KIWI_WAKE_PORT",
        default_port=10400,
        models_subdir="openwakeword",
        zeroconf_name="kiwi-wake",
        default_workers=min(4, os.cpu_count() or 1),
    )
    parser.add_argument(
        "--custom-model-dir",
        action="append",
        default=[],
        type=Path,
        help="folder with your own .onnx or .tflite wake word models (repeatable)",
    )
    parser.add_argument(
        "--wake-word",
        action="append",
        default=[],
        help="wake word a stream listens for when its `detect` names none (repeatable; "
        "default: every loaded model)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="score (0-1) at which a frame activates"
    )
    parser.add_argument(
        "--trigger-level",
        type=int,
        default=1,
        help="activations (frames at or above the threshold, less those below) before firing",
    )
    parser.add_argument(
        "--refractory-seconds",
        type=float,
        default=2.0,
        help="stream time after a detection before the same wake word can fire again",
    )
    parser.add_argument(
        "--second-look-frames",
        type=int,
        default=0,
        help="a second look against look-alike phrases: fire only when the trigger level is "
        "reached again within this many 80 ms frames (0: off; 2 halves look-alike wakes, "
        "see docs/wake.md)",
    )
    parser.add_argument(
        "--download-url",
        default=BUILTIN_RELEASE_URL,
        help="where missing built-in models are fetched from (<url>/<file name>)",
    )
    parser.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download missing built-in models",
    )
    return parser


async def _main() -> None:
    parser = _parser()
    args = parse_args(parser)
    try:
        settings = DetectionSettings(
            args.threshold, args.trigger_level, args.refractory_seconds, args.second_look_frames
        )
    except ValueError as err:
        parser.error(str(err))
    config = WakeConfig(
        store=ModelStore(args.data_dir, args.download_dir),
        custom_dirs=[d.resolve() for d in args.custom_model_dir],
        settings=settings,
        default_wake_words=args.wake_word,
        download=args.download,
        download_url=args.download_url,
    )
    models = WakeModels(config)
    current = models.current
    _LOGGER.info(
        "Wake words loaded: %s; default: %s%s",
        ", ".join(current.engine.classifiers) if current.engine else "none",
        ", ".join(current.default_models) or "none",
        f"; {current.problem}" if current.problem else "",
    )
    models.start_missing_downloads()
    executor = EngineExecutor("wake", args.workers)
    batcher = WakeBatcher(executor)

    def describe() -> Info:
        return build_info(models.current, settings, executor.workers, models.downloading)

    await serve(
        args.uri,
        partial(WakeEventHandler, models=models, batcher=batcher, describe=describe),
        zeroconf_name=args.zeroconf,
        on_shutdown=executor.shutdown,
    )


def main() -> None:
    run(_main)


if __name__ == "__main__":
    main()
