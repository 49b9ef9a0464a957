"""The peer projects Kiwi is measured against, each installed once into its own venv.

Peers pin their own dependencies (wyoming-openwakeword 2.1.0 wants wyoming < 2, for example), so
each gets a venv under bench/work/peers/ rather than a place in the add-on environment. The versions
are the ones Home Assistant users run today (see ../shared/peers/README.md and the issues).

    python = peer_python("wyoming-faster-whisper")  # that venv's python, installed if needed
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared folder sits beside the checkout (or beside the folder holding worktrees).
SHARED_PEERS = next(
    (p / "shared" / "peers" for p in REPO_ROOT.parents if (p / "shared" / "peers").is_dir()),
    REPO_ROOT.parent / "shared" / "peers",
)
PEERS_DIR = REPO_ROOT / "bench" / "work" / "peers"
UV = REPO_ROOT / ".tools" / "bin" / "uv"

# name -> requirements handed to `uv pip install`
PEERS: dict[str, list[str]] = {
    "wyoming-faster-whisper": ["wyoming-faster-whisper==3.8.1"],
    "wyoming-piper": ["wyoming-piper==2.5.2"],
    "wyoming-bench": ["wyoming-bench==2026.10.0"],
    # Not on the package index at this version: the source snapshot in ../shared/peers.
    "wyoming-openwakeword": [str(SHARED_PEERS / "wyoming-openwakeword-2.1.0")],
}


def peer_python(name: str) -> Path:
    """The python of `name`'s own venv; installs it on first use (a lock keeps two runs apart)."""
    requirements = PEERS[name]
    venv = PEERS_DIR / name
    python = venv / "bin" / "python"
    marker = venv / ".kiwi-installed"
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    with (PEERS_DIR / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == "\n".join(requirements):
            return python
        if not python.exists():
            subprocess.run([str(UV), "venv", "-q", "--python", "python3.11", str(venv)], check=True)
        subprocess.run(
            [str(UV), "pip", "install", "-q", "--python", str(python), *requirements],
            check=True,
            timeout=900,
        )
        marker.write_text("\n".join(requirements))
    return python
