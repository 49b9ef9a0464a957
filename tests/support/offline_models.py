"""Small real models for every engine, made offline and cached, so tests run the real engines.

- `whisper_model_dir()`: a tiny CTranslate2 Whisper model ("tiny-random") made with numpy
  (see `tiny_whisper`); faster-whisper loads and runs it like a downloaded one.
- `piper_voice_path()`: a tiny piper voice (see `tiny_piper`); piper-tts phonemizes with the
  real espeak-ng and runs the ONNX graph.
- `openwakeword_models_dir()`: openWakeWord's real pretrained ONNX models, taken from the
  0.5.1 wheel (CC BY-NC-SA 4.0: for tests and demos, see docs/models.md).
- `resemblyzer_weights_path()` / `warm_resemblyzer()`: resemblyzer's shipped pretrained weights.
- `populate_models_dir(models_dir)`: lays them out as Kiwi's `models/` directory.

This module is imported by both test environments. The HA env has none of the engine
libraries, so they are imported inside functions, and an entry the HA env cannot build is
built by the add-on env's Python in a subprocess (same cache, same key).

`python -m tests.support.offline_models MODELS_DIR` populates a models directory.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.support import tiny_piper, tiny_whisper
from tests.support.cache import REPO_ROOT, cache_dir, cached_dir, recipe_key

WHISPER_MODEL_NAME = "tiny-random"
PIPER_VOICE_NAME = tiny_piper.VOICE_NAME
OPENWAKEWORD_VERSION = "0.5.1"
OPENWAKEWORD_WHEEL = f"openwakeword-{OPENWAKEWORD_VERSION}-py3-none-any.whl"
OPENWAKEWORD_FEATURE_MODELS = ("melspectrogram.onnx", "embedding_model.onnx")
OPENWAKEWORD_WAKE_WORDS = ("hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy")
OPENWAKEWORD_MODELS = (
    *OPENWAKEWORD_FEATURE_MODELS,
    *(f"{word}_v0.1.onnx" for word in OPENWAKEWORD_WAKE_WORDS),
)
ADDON_PYTHON_ENV = "KIWI_ADDON_PYTHON"
WHEEL_ENV = "KIWI_OWW_WHEEL"

_SUPPORT_DIR = Path(__file__).resolve().parent
_WHEEL_SEARCH_PATH = (
    REPO_ROOT / ".cache" / "wheels" / OPENWAKEWORD_WHEEL,
    Path("/tmp/oww") / OPENWAKEWORD_WHEEL,
)


def _addon_python() -> Path:
    configured = os.environ.get(ADDON_PYTHON_ENV)
    return Path(configured) if configured else REPO_ROOT / ".venv-addon" / "bin" / "python"


def _has_modules(*names: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in names)


def _built_by_addon_env(entry: Path, function_name: str) -> Path:
    """Build a cache entry with the add-on env's Python when this interpreter lacks the engines."""
    if not entry.exists():
        python = _addon_python()
        if not python.exists():
            raise FileNotFoundError(
                f"{entry.name} needs the add-on environment ({python}); run `make setup`"
            )
        code = f"from tests.support.offline_models import {function_name}; {function_name}()"
        subprocess.run(
            [str(python), "-c", code],
            cwd=REPO_ROOT,
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
    return entry


def _whisper_entry() -> str:
    return f"whisper-{recipe_key(_SUPPORT_DIR / 'tiny_whisper.py')}"


def whisper_model_dir() -> Path:
    """The tiny CTranslate2 Whisper model directory (named "tiny-random")."""
    if not _has_modules("ctranslate2", "tokenizers", "numpy"):
        entry = cache_dir() / _whisper_entry()
        return _built_by_addon_env(entry, "whisper_model_dir") / WHISPER_MODEL_NAME

    def build(staging: Path) -> None:
        tiny_whisper.build_whisper_model(staging / WHISPER_MODEL_NAME)

    return cached_dir(_whisper_entry(), build) / WHISPER_MODEL_NAME


def _piper_entry() -> str:
    return f"piper-{recipe_key(_SUPPORT_DIR / 'tiny_piper.py')}"


def piper_voice_path() -> Path:
    """The tiny piper voice `en_US-kiwi_test-x_low.onnx` (its `.onnx.json` lies beside it)."""
    voice_file = f"{PIPER_VOICE_NAME}.onnx"
    if not _has_modules("onnx", "piper"):
        entry = cache_dir() / _piper_entry()
        return _built_by_addon_env(entry, "piper_voice_path") / voice_file
    return cached_dir(_piper_entry(), tiny_piper.build_piper_voice) / voice_file


def piper_bench_voice_path() -> Path:
    """The benchmark voice (same tones, realistic compute per phoneme; see `tiny_piper`)."""
    entry = f"piper-bench-{recipe_key(_SUPPORT_DIR / 'tiny_piper.py')}"
    return cached_dir(entry, tiny_piper.build_piper_bench_voice) / (
        f"{tiny_piper.BENCH_VOICE_NAME}.onnx"
    )


def openwakeword_wheel() -> Path:
    """The openwakeword 0.5.1 wheel, the last release that carries its pretrained models."""
    configured = os.environ.get(WHEEL_ENV)
    candidates = (Path(configured),) if configured else _WHEEL_SEARCH_PATH
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{OPENWAKEWORD_WHEEL} not found in {', '.join(map(str, candidates))}; "
        "`make setup` downloads it from PyPI"
    )


def openwakeword_models_dir() -> Path:
    """A directory with the real pretrained openWakeWord ONNX models (feature + wake words)."""
    wheel = openwakeword_wheel()

    def extract(staging: Path) -> None:
        with zipfile.ZipFile(wheel) as archive:
            for model in OPENWAKEWORD_MODELS:
                member = f"openwakeword/resources/models/{model}"
                with archive.open(member) as source, (staging / model).open("wb") as target:
                    shutil.copyfileobj(source, target)

    key = recipe_key(wheel.name, str(wheel.stat().st_size), *OPENWAKEWORD_MODELS)
    return cached_dir(f"openwakeword-{key}", extract)


def resemblyzer_weights_path() -> Path:
    """resemblyzer's shipped pretrained voice encoder weights (found without importing torch)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("resemblyzer is installed in the add-on environment only")
    return Path(spec.origin).parent / "pretrained.pt"


def configure_numba_cache() -> Path:
    """Point numba's JIT cache into the test cache; call before librosa/resemblyzer import.

    resemblyzer's first `preprocess_wav` compiles librosa's numba kernels (~20 s); with a
    writable cache every later process, services started by tests included, reuses them.
    """
    numba_dir = Path(os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba")))
    numba_dir.mkdir(parents=True, exist_ok=True)
    return numba_dir


def warm_resemblyzer() -> object:
    """Load resemblyzer's VoiceEncoder and run one utterance through it, compiling numba's code.

    Returns the loaded `resemblyzer.VoiceEncoder`.
    """
    configure_numba_cache()
    import numpy as np
    from resemblyzer import VoiceEncoder, preprocess_wav

    from tests.support.speech import espeak_wav

    encoder = VoiceEncoder("cpu", verbose=False)
    encoder.embed_utterance(preprocess_wav(espeak_wav("warming up the voice encoder")))
    encoder.embed_utterance(preprocess_wav(np.zeros(16000, np.float32) + 0.01, 16000))
    return encoder


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(target)


def populate_models_dir(models_dir: Path) -> None:
    """Lay the offline models out as Kiwi's `models/` directory (symlinks into the cache).

    `whisper/tiny-random/`, `piper/en_US-kiwi_test-x_low.onnx(.json)`, `openwakeword/*.onnx`.
    """
    for engine in ("whisper", "piper", "openwakeword"):
        (models_dir / engine).mkdir(parents=True, exist_ok=True)
    _link(whisper_model_dir(), models_dir / "whisper" / WHISPER_MODEL_NAME)
    voice = piper_voice_path()
    for file in (voice, voice.with_name(f"{voice.name}.json")):
        _link(file, models_dir / "piper" / file.name)
    wake_dir = openwakeword_models_dir()
    for model in OPENWAKEWORD_MODELS:
        _link(wake_dir / model, models_dir / "openwakeword" / model)


def _timed(label: str, make: Callable[[], object]) -> None:
    started = time.perf_counter()
    result = make()
    print(f"{label}: {time.perf_counter() - started:.2f} s -> {result}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.offline_models",
        description="Build Kiwi's offline test models (cached) and lay them out in MODELS_DIR.",
    )
    parser.add_argument("models_dir", type=Path, help="e.g. .kiwi/models")
    args = parser.parse_args(argv)
    _timed("whisper", whisper_model_dir)
    _timed("piper", piper_voice_path)
    _timed("openwakeword", openwakeword_models_dir)
    _timed("models dir", lambda: populate_models_dir(args.models_dir) or args.models_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
