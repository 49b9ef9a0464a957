"""Piper voices: on disk in the data dirs, or fetched from the piper voices catalogue.

A voice is `<name>.onnx` with `<name>.onnx.json` beside it. When one is missing, it is
downloaded from the catalogue (`--download-url`, by default rhasspy/piper-voices on Hugging
Face) into the download dir, config first and model last, each atomically, so a voice only
looks installed once both files are complete. The catalogue's `voices.json` is used when
it is on disk (or can be fetched) to list downloadable voices and to tell an unknown voice
from an unreachable server; without it, names follow piper's `<lang>_<REGION>-<name>-<quality>`.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from piper.download_voices import VOICE_PATTERN

from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.info import Availability
from kiwi_voice.common.model_store import DownloadError, ModelStore

_LOGGER = logging.getLogger(__name__)

DEFAULT_VOICES_URL = "https://huggingface.co/rhasspy/piper-voices/resolve/main"
CATALOGUE_FILE = "voices.json"


@dataclass(frozen=True)
class VoiceFiles:
    model: Path
    config: Path


@dataclass(frozen=True)
class VoiceListing:
    """What `describe` says about one voice."""

    name: str
    description: str
    languages: list[str]
    speakers: list[str]
    availability: Availability
    version: str | None = None


class VoiceCatalog:
    """Finds voices on disk and downloads missing ones (blocking: call from a worker)."""

    def __init__(self, store: ModelStore, base_url: str = DEFAULT_VOICES_URL) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/")
        self._catalogue: dict[str, Any] | None = None
        self._catalogue_lock = threading.Lock()

    # -- on disk ----------------------------------------------------------------------

    def find(self, name: str) -> VoiceFiles | None:
        """The voice's files if both are on disk (never touches the network)."""
        if "/" in name or name.startswith("."):
            return None
        model = self.store.find_file(f"{name}.onnx")
        if model is None:
            return None
        config = model.with_name(f"{model.name}.json")
        return VoiceFiles(model, config) if config.is_file() else None

    def local_voice_names(self) -> list[str]:
        return sorted(
            path.name.removesuffix(".onnx")
            for path in self.store.list_files("*.onnx")
            if path.with_name(f"{path.name}.json").is_file()
        )

    # -- catalogue --------------------------------------------------------------------

    def catalogue(self, *, fetch: bool) -> dict[str, Any] | None:
        """voices.json from disk, else (if `fetch`) from the catalogue; None if unavailable."""
        with self._catalogue_lock:
            if self._catalogue is None:
                path = self.store.find_file(CATALOGUE_FILE)
                if path is None and fetch:
                    try:
                        path = self.store.ensure(
                            CATALOGUE_FILE,
                            lambda: self.store.find_file(CATALOGUE_FILE),
                            lambda: self.store.download_file(
                                f"{self.base_url}/{CATALOGUE_FILE}", CATALOGUE_FILE
                            ),
                        )
                    except DownloadError:
                        return None
                if path is not None:
                    self._catalogue = _read_json(path)
            return self._catalogue

    def _catalogue_entry(self, name: str, catalogue: dict[str, Any]) -> dict[str, Any] | None:
        if name in catalogue:
            entry: dict[str, Any] = catalogue[name]
            return entry
        for entry in catalogue.values():
            if name in entry.get("aliases", []):
                return dict(entry)
        return None

    # -- download ---------------------------------------------------------------------

    def ensure(self, name: str) -> VoiceFiles:
        """The voice's files, downloading them first if they are not on disk."""
        if (files := self.find(name)) is not None:
            return files
        remote_paths = self._remote_paths(name)
        try:
            self.store.ensure(
                name, lambda: self._model_if_found(name), lambda: self._download(name, remote_paths)
            )
        except DownloadError as err:
            if err.not_found:
                raise ServiceError(ErrorCode.UNKNOWN_VOICE, err.text) from err
            raise
        files = self.find(name)
        assert files is not None
        return files

    def _model_if_found(self, name: str) -> Path | None:
        files = self.find(name)
        return files.model if files else None

    def _remote_paths(self, name: str) -> tuple[str, str]:
        """Catalogue-relative paths of the voice's model and config."""
        catalogue = self.catalogue(fetch=True)
        if catalogue is not None:
            entry = self._catalogue_entry(name, catalogue)
            if entry is None:
                raise ServiceError(
                    ErrorCode.UNKNOWN_VOICE,
                    f"voice {name!r} is neither on disk nor in the piper voices catalogue",
                )
            files = [str(f) for f in entry.get("files", {})]
            model = next((f for f in files if f.endswith(".onnx")), None)
            config = next((f for f in files if f.endswith(".onnx.json")), None)
            if model and config:
                return model, config
        match = VOICE_PATTERN.match(name)
        if match is None:
            raise ServiceError(
                ErrorCode.UNKNOWN_VOICE,
                f"voice {name!r} is not on disk and is not a piper voice name "
                "like en_US-lessac-medium",
            )
        family, region = match.group("lang_family"), match.group("lang_region")
        folder = (
            f"{family}/{family}_{region}/{match.group('voice_name')}/{match.group('voice_quality')}"
        )
        return f"{folder}/{name}.onnx", f"{folder}/{name}.onnx.json"

    def _download(self, name: str, remote_paths: tuple[str, str]) -> Path:
        model_path, config_path = remote_paths
        # Config first, model last: `find` needs both, so a voice never looks half there.
        self.store.download_file(
            f"{self.base_url}/{config_path}",
            f"{name}.onnx.json",
            label=f"piper voice {name} config",
        )
        return self.store.download_file(
            f"{self.base_url}/{model_path}", f"{name}.onnx", label=f"piper voice {name}"
        )

    # -- describe ---------------------------------------------------------------------

    def listings(self, default_voice: str) -> list[VoiceListing]:
        """Voices on disk, the default voice, and catalogue voices (without fetching)."""
        listings: dict[str, VoiceListing] = {}
        for name in self.local_voice_names():
            files = self.find(name)
            if files is not None:
                listings[name] = _listing(
                    name, _read_json(files.config), Availability.on_disk(files.model)
                )
        catalogue = self.catalogue(fetch=False) or {}
        for name in {default_voice, *catalogue} - listings.keys():
            failure = self.store.failure(name)
            availability = (
                Availability.missing(failure.reason)
                if failure
                else Availability.downloadable(self.base_url)
            )
            listings[name] = _listing(name, catalogue.get(name, {}), availability)
        return sorted(listings.values(), key=lambda listing: listing.name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        _LOGGER.warning("Ignoring unreadable %s: %s", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def _listing(name: str, config: dict[str, Any], availability: Availability) -> VoiceListing:
    """Describe a voice from its config or catalogue entry (both carry the same fields)."""
    language = config.get("language", {}).get("code") or name.split("-", maxsplit=1)[0]
    dataset = config.get("dataset") or config.get("name") or name
    quality = config.get("audio", {}).get("quality") or config.get("quality")
    title = f"{dataset} ({quality})" if quality else str(dataset)
    return VoiceListing(
        name=name,
        description=availability.describe(title),
        languages=[language],
        speakers=sorted(config.get("speaker_id_map") or {}),
        availability=availability,
        version=config.get("piper_version"),  # the piper release the voice was made for
    )
