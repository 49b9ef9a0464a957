"""Kiwi's add-on side: Wyoming services and the hub."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kiwi-voice")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
