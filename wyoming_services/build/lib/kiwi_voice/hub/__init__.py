"""Kiwi hub: the REST API and event stream on port 7789 (see docs/hub.md and docs/api.md)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kiwi-voice")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
