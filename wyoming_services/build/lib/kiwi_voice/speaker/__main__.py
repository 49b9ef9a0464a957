"""`kiwi-speaker`: open-set speaker identification over Wyoming framing (default port 10500).

    kiwi-speaker --uri tcp://0.0.0.0:10500 --db /data/speakers.db

Kiwi's own event types (see `protocol.py` and docs/services.md): enroll, identify, list,
update and delete speaker profiles, kept in SQLite. One voice encoder (resemblyzer's trained
network on onnxruntime; no torch, no librosa) is loaded at start and shared by every
connection; `--workers` threads compute embeddings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from functools import partial
from pathlib import Path

from kiwi_voice.common.executor import EngineExecutor
from kiwi_voice.common.model_store import ModelStore
from kiwi_voice.common.server import build_parser, parse_args, run, serve

from .settings import (
    DEFAULT_IDENTIFY_THRESHOLD,
    DEFAULT_MARGIN,
    DEFAULT_SCORE_THRESHOLD,
    DEFAULT_SELF_THRESHOLD,
    Thresholds,
    quiet_math_threads,
)

# Nothing above imports numpy: `main` limits its thread pools before it loads.

_LOGGER = logging.getLogger(__name__)
WEIGHTS_FILE = "pretrained.pt"


def _parser() -> argparse.ArgumentParser:
    data_dir = Path(os.environ.get("KIWI_DATA_DIR", ".kiwi"))
    parser = build_parser(
        prog="kiwi-speaker",
        description=__doc__.split("\n\n", 1)[0],
        port_env="KIWI_SPEAKER_PORT",
        default_port=10500,
        models_subdir="resemblyzer",
        zeroconf_name="kiwi-speaker",
        default_workers=min(2, os.cpu_count() or 1),
    )
    parser.add_argument(
        "--db", type=Path, default=data_dir / "speakers.db", help="SQLite file of the profiles"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        help=f"voice encoder weights (default: {WEIGHTS_FILE} in a --data-dir, "
        "else the one inside the resemblyzer package)",
    )
    parser.add_argument(
        "--identify-threshold",
        type=float,
        default=DEFAULT_IDENTIFY_THRESHOLD,
        help="lowest cosine threshold a profile's calibration may give (a voice must also "
        "pass its profile's own threshold, the score and the margin)",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=DEFAULT_SCORE_THRESHOLD,
        help="lowest normalised score (cosine minus the closest cohort voices' mean)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="cosine by which the best profile must beat the second best",
    )
    parser.add_argument(
        "--self-threshold",
        type=float,
        default=DEFAULT_SELF_THRESHOLD,
        help="cosine similarity at which a voice is Kiwi's own (echo)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=30.0, help="longest utterance accepted"
    )
    return parser


async def _main() -> None:
    parser = _parser()
    args = parse_args(parser)
    try:
        thresholds = Thresholds(
            args.identify_threshold, args.self_threshold, args.score_threshold, args.margin
        )
    except ValueError as err:
        parser.error(str(err))

    from .context import SpeakerContext
    from .encoder import bundled_weights
    from .encoder_slot import EncoderSlot
    from .handler import SpeakerEventHandler
    from .store import open_store

    weights = args.weights or ModelStore(args.data_dir, args.download_dir).find_file(WEIGHTS_FILE)
    store, set_aside = open_store(args.db)
    encoder = EncoderSlot(weights or bundled_weights(), "resemblyzer's pretrained.pt was not found")
    context = SpeakerContext(
        encoder=encoder,
        store=store,
        thresholds=thresholds,
        engine=EngineExecutor("speaker", args.workers),
        database=EngineExecutor("speaker-db", 1),
        max_seconds=args.max_seconds,
        store_set_aside=set_aside,
    )
    _LOGGER.info("%d speaker profile(s) in %s", len(store.list_profiles()), args.db)
    loading = asyncio.create_task(encoder.load(context.engine))

    def shutdown() -> None:
        loading.cancel()
        context.engine.shutdown()
        context.database.shutdown()
        store.close()

    try:
        await serve(
            args.uri,
            partial(SpeakerEventHandler, context=context),
            zeroconf_name=args.zeroconf,
            on_shutdown=shutdown,
        )
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await loading


def main() -> None:
    quiet_math_threads()
    run(_main)


if __name__ == "__main__":
    main()
