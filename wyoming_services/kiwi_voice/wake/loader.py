"""Loading the wake models from disk, and fetching missing built-in ones in the background.

`load_model_set` builds one immutable `ModelSet`: the engine (or None with the reason), and
the status of every wake word found. `WakeModels` holds the current set for the handlers; at
start it is what the disk has, so the service answers `describe` at once. When built-in files
are missing and downloads are allowed, one background thread fetches them (through the common
`ModelStore`, atomically, logging progress) and then swaps in a freshly loaded set. A failed
download leaves the service up, and `describe` says what is missing and why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_voice.common.model_store import DownloadError, ModelStore

from .catalog import (
    BUILTIN_RELEASE_URL,
    BUILTIN_WAKE_WORD_FILES,
    FEATURE_FILES,
    WakeWordFile,
    find_feature_files,
    resolve_name,
    scan_wake_words,
    split_stem,
    tflite_runtime_missing,
)
from .classifiers import WakeWordClassifier, load_classifier
from .engine import DetectionSettings, WakeEngine
from .features import FeatureModels

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class WakeWordStatus:
    file: WakeWordFile
    loaded: bool
    problem: str | None = None


@dataclass(frozen=True)
class ModelSet:
    """What the service can do right now."""

    engine: WakeEngine | None
    wake_words: list[WakeWordStatus]
    problem: str | None = None  # why there is no engine
    default_models: list[str] = field(default_factory=list)  # for streams that name none
    missing_defaults: list[str] = field(default_factory=list)

    def status(self, name: str) -> WakeWordStatus | None:
        return next((s for s in self.wake_words if s.file.name == name), None)


@dataclass(frozen=True)
class WakeConfig:
    store: ModelStore
    custom_dirs: Sequence[Path]
    settings: DetectionSettings
    default_wake_words: Sequence[str]  # empty: every loaded wake word
    download: bool
    download_url: str = BUILTIN_RELEASE_URL  # where `<url>/<file>` is fetched from


def load_model_set(config: WakeConfig, download_problem: str | None = None) -> ModelSet:
    """Load what is on disk now (blocking: ONNX sessions are built here)."""
    found = scan_wake_words(config.store, config.custom_dirs)
    features = find_feature_files(config.store)
    if features.melspectrogram is None or features.embedding is None:
        problem = f"missing feature model(s) {', '.join(features.missing)}"
        refusals = [r for f in features.missing if (r := config.store.refusal(f)) is not None]
        if refusals:
            problem += f" ({'; '.join(refusals)})"
        if download_problem:
            problem += f"; {download_problem}"
        statuses = [WakeWordStatus(f, False, "needs the feature models") for f in found]
        return ModelSet(None, statuses, problem, missing_defaults=list(config.default_wake_words))

    try:
        feature_models = FeatureModels(features.melspectrogram, features.embedding)
    except Exception as err:  # a corrupt file: stay up and say so, never crash-loop
        _LOGGER.error("Cannot load the openWakeWord feature models: %s", err)
        statuses = [WakeWordStatus(f, False, "needs the feature models") for f in found]
        return ModelSet(
            None,
            statuses,
            f"feature models cannot be loaded: {err}",
            missing_defaults=list(config.default_wake_words),
        )
    classifiers: dict[str, WakeWordClassifier] = {}
    statuses = []
    for wake_word in found:
        if not wake_word.runnable:
            statuses.append(WakeWordStatus(wake_word, False, tflite_runtime_missing()))
            continue
        try:
            classifiers[wake_word.name] = load_classifier(wake_word.name, wake_word.path)
        except Exception as err:  # a broken file must not take the other models down
            _LOGGER.error("Cannot load wake word model %s: %s", wake_word.path, err)
            statuses.append(WakeWordStatus(wake_word, False, f"cannot be loaded: {err}"))
            continue
        statuses.append(WakeWordStatus(wake_word, True))

    defaults, missing = _default_models(config.default_wake_words, list(classifiers))
    engine = WakeEngine(feature_models, classifiers, config.settings)
    problem = None if classifiers else "no runnable wake word model found"
    if missing and download_problem:
        problem = download_problem
    return ModelSet(engine, statuses, problem, defaults, missing)


def _default_models(wanted: Sequence[str], loaded: list[str]) -> tuple[list[str], list[str]]:
    if not wanted:
        return loaded, []
    defaults: list[str] = []
    missing: list[str] = []
    for name in wanted:
        model = resolve_name(name, loaded)
        if model is None:
            missing.append(name)
        elif model not in defaults:
            defaults.append(model)
    return defaults, missing


def missing_builtin_files(config: WakeConfig) -> list[str]:
    """Built-in files to fetch: the feature models, and the wake words the defaults need.

    Without default wake words, the built-in ones are fetched only when there is no wake word
    model at all, so a folder of the user's own models does not pull in the others.
    """
    found = {s.name for s in scan_wake_words(config.store, config.custom_dirs)}
    builtin_names = {split_stem(Path(f).stem)[0]: f for f in BUILTIN_WAKE_WORD_FILES}
    if config.default_wake_words:
        wanted = {resolve_name(w, builtin_names) for w in config.default_wake_words}
        wake_words = [builtin_names[n] for n in sorted(n for n in wanted if n and n not in found)]
    else:
        wake_words = [] if found else list(BUILTIN_WAKE_WORD_FILES)
    features = [f for f in FEATURE_FILES if config.store.find_file(f) is None]
    return features + wake_words


class WakeModels:
    """The current `ModelSet`, replaced whole when a background download completes."""

    def __init__(self, config: WakeConfig) -> None:
        self.config = config
        self.current = load_model_set(config)
        self._download_thread: threading.Thread | None = None
        self.downloading: list[str] = []

    def start_missing_downloads(self) -> None:
        """Fetch missing built-in files in one background thread, if downloads are allowed."""
        missing = missing_builtin_files(self.config)
        if not missing:
            return
        if not self.config.download:
            _LOGGER.warning("Missing %s; downloads are off", ", ".join(missing))
            return
        self.downloading = missing
        self._download_thread = threading.Thread(
            target=self._download, args=(missing,), name="wake-download", daemon=True
        )
        self._download_thread.start()

    def _download(self, files: list[str]) -> None:
        store = self.config.store
        problem: str | None = None
        for file_name in files:
            try:
                store.ensure(
                    file_name,
                    lambda name=file_name: store.find_file(name),
                    lambda name=file_name: store.download_file(
                        f"{self.config.download_url.rstrip('/')}/{name}",
                        name,
                        label=f"openWakeWord {name}",
                    ),
                )
            except DownloadError as err:
                problem = err.text
                break
            except OSError as err:  # e.g. a download dir that cannot be written
                problem = f"cannot store {file_name} in {store.download_dir}: {err}"
                _LOGGER.error("Model download failed: %s", problem)
                break
        self.downloading = []
        self.current = load_model_set(self.config, problem)
        _LOGGER.info("Wake models after download: %s", self.current.problem or "ready")

    def wait_for_downloads(self, timeout: float | None = None) -> None:
        if self._download_thread is not None:
            self._download_thread.join(timeout)
