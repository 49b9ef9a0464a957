"""Run every benchmark module and write bench/results.json and bench/RESULTS.md.

Each `bench/bench_*.py` module exposes `run(results: dict) -> None` and adds its own section to
`results` (numbers only, plus a `notes` list for anything it could not measure). Benchmarks are
compared as ratios within one run on this machine; absolute numbers vary between machines. A
section states what it compares in a `comparisons` list (see bench/report.py), which RESULTS.md
turns into the "Kiwi against its peers" table and plot.

    python -m bench                 # everything (make bench)
    python -m bench rss load        # modules whose name contains rss or load
    python -m bench rss --out /tmp/b   # elsewhere, leaving bench/results.json alone
    python -m bench rss --update    # rerun rss only; keep the other sections of bench/results.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

from bench.report import write_markdown

BENCH_DIR = Path(__file__).resolve().parent
_LOGGER = logging.getLogger("bench")


def _commit() -> str:
    """The checked-out commit (and + when the tree has changes), for the report's header."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=BENCH_DIR,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            cwd=BENCH_DIR,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+" if dirty else "")


def discover_modules(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return names


def _load(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def merge_sections(base: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """Sections of `newer` replace those of `base`; per-section maps (durations, failures) merge.

    Used by --update and to join results measured on different branches; each section carries its
    own measurements, so a merged file still compares like with like inside every section.
    """
    merged = {**base, **newer}
    for per_section in ("durations_s", "failures"):
        merged[per_section] = {**base.get(per_section, {}), **newer.get(per_section, {})}
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="run only modules whose name contains one of these")
    parser.add_argument("--out", type=Path, default=BENCH_DIR)
    parser.add_argument(
        "--update",
        action="store_true",
        help="start from the sections already in OUT/results.json and replace only those rerun",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2),
            "commit": _commit(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "failures": {},
        "durations_s": {},
    }
    if args.update:
        results = merge_sections(_load(args.out / "results.json"), results)
    for name in discover_modules(args.only):
        _LOGGER.info("running %s", name)
        results["failures"].pop(name, None)
        # Sections this module writes (with --update they may exist already, from the last run).
        before = {section: id(value) for section, value in results.items()}
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").run(results)
        except Exception:  # one broken benchmark must not hide the others
            results["failures"][name] = traceback.format_exc(limit=5)
            _LOGGER.exception("%s failed", name)
        seconds = time.perf_counter() - started
        for section in [s for s, value in results.items() if before.get(s) != id(value)]:
            results["durations_s"][section] = round(seconds, 1)
        _LOGGER.info("%s took %.1f s", name, seconds)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_markdown(results, args.out)
    _LOGGER.info("wrote %s and %s", args.out / "results.json", args.out / "RESULTS.md")
    if results["failures"]:
        raise SystemExit(f"benchmarks failed: {', '.join(results['failures'])}")


if __name__ == "__main__":
    main()
