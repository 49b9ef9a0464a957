"""`kiwi-hub feed FILE.wav`: send a WAV file through a running hub's voice pipeline.

    kiwi-hub feed hey_jarvis_lights.wav            # wake word first, like a microphone
    kiwi-hub feed --push-to-talk question.wav      # the whole file is the utterance

Posts the file to POST /api/audio/file and prints the JSON answer (what was understood, who
answered, the reply and the turn's timings). Exit code 0 when at least one turn ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

DEFAULT_PORT = 7789


def _parser() -> argparse.ArgumentParser:
    port = os.environ.get("KIWI_PORT") or DEFAULT_PORT
    data_dir = Path(os.environ.get("KIWI_DATA_DIR") or ".kiwi")
    parser = argparse.ArgumentParser(prog="kiwi-hub feed", description=__doc__.split("\n\n")[0])
    parser.add_argument("wav", type=Path, help="a PCM WAV file (any rate, mono or stereo)")
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}", help="the hub's base URL")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=data_dir / "api_token",
        help="file holding the API token (KIWI_TOKEN overrides it)",
    )
    parser.add_argument(
        "--push-to-talk", action="store_true", help="no wake word: the file is the utterance"
    )
    return parser


async def feed(url: str, token: str, wav: bytes, push_to_talk: bool) -> tuple[int, object]:
    mode = "push_to_talk" if push_to_talk else "continuous"
    timeout = aiohttp.ClientTimeout(total=300)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{url.rstrip('/')}/api/audio/file",
            params={"mode": mode},
            data=wav,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "audio/wav"},
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def cli_token(prog: str, token_file: Path) -> str | None:
    """The hub's API token for a command-line client: KIWI_TOKEN, else the token file; None
    (after saying why on stderr) when there is neither."""
    token = os.environ.get("KIWI_TOKEN", "").strip()
    if token:
        return token
    try:
        return token_file.read_text(encoding="utf-8").strip()
    except OSError as err:
        print(f"{prog}: no token (KIWI_TOKEN, --token-file): {err}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    token = cli_token("kiwi-hub feed", args.token_file)
    if token is None:
        return 2
    try:
        wav = args.wav.read_bytes()
    except OSError as err:
        print(f"kiwi-hub feed: cannot read {args.wav}: {err}", file=sys.stderr)
        return 2
    try:
        status, answer = asyncio.run(feed(args.url, token, wav, args.push_to_talk))
    except aiohttp.ClientError as err:
        print(f"kiwi-hub feed: cannot reach the hub at {args.url}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    if status != 200:
        return 1
    return 0 if isinstance(answer, dict) and answer.get("turns") else 1
