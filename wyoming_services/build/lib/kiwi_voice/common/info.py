"""Pieces of the Wyoming `info` answer that every Kiwi service builds the same way."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from wyoming.info import Attribution

KIWI_ATTRIBUTION = Attribution(name="Kiwi", url="https://github.com/kiwi-voice/kiwi")


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


KIWI_VERSION = package_version("kiwi-voice") or "0.0.0"


@dataclass(frozen=True)
class Availability:
    """Whether a model can be used, and the words `describe` shows for it.

    `installed` is true for what is on disk and for what has not failed to download yet
    (it is fetched on first use); false once a download has failed, with the reason.
    """

    installed: bool
    note: str

    @classmethod
    def on_disk(cls, path: Path) -> Availability:
        return cls(True, f"on disk: {path}")

    @classmethod
    def downloadable(cls, source: str) -> Availability:
        return cls(True, f"downloaded on first use from {source}")

    @classmethod
    def missing(cls, reason: str) -> Availability:
        return cls(False, f"NOT AVAILABLE: {reason}")

    def describe(self, description: str) -> str:
        """`description` followed by the availability note, for an artifact's description."""
        return f"{description} ({self.note})"
