"""faster-whisper behind a small interface: one model, found on disk or downloaded once.

The model is loaded once and shared by every connection; CTranslate2 runs up to `workers`
transcriptions at the same time on it (`num_workers`). Transcription is a generator so the
handler can send each segment as soon as faster-whisper has decoded it.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiwi_voice.common.audio import FloatAudio
from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.info import Availability
from kiwi_voice.common.model_store import (
    DirectoryProgress,
    DownloadError,
    ModelStore,
    ProgressLog,
)

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

_LOGGER = logging.getLogger(__name__)

# What faster-whisper needs in a model dir; without tokenizer.json it asks the model hub.
REQUIRED_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


@dataclass(frozen=True)
class WhisperSettings:
    model: str
    language: str | None  # None: detect per utterance
    beam_size: int
    device: str
    compute_type: str
    cpu_threads: int
    initial_prompt: str | None
    vad_filter: bool
    workers: int
    # Encode only the utterance (plus silence) rather than a padded 30 s window: see
    # fitted_window.py. False: faster-whisper as it comes.
    fitted_window: bool = True


@dataclass(frozen=True)
class LanguageDetected:
    language: str
    probability: float


@dataclass(frozen=True)
class Segment:
    text: str
    start: float
    end: float


TranscriptPart = LanguageDetected | Segment


def model_dir_name(model: str) -> str:
    """Folder name of a model under the data dirs (`org/repo` ids become `org--repo`)."""
    return model.replace("/", "--")


def whisper_languages() -> list[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return sorted(_LANGUAGE_CODES)


class WhisperEngine:
    """The one faster-whisper model of this service."""

    def __init__(self, settings: WhisperSettings, store: ModelStore) -> None:
        self.settings = settings
        self.store = store
        self._model: WhisperModel | None = None
        self._load_lock = threading.Lock()
        self._languages = whisper_languages()

    # -- model files ------------------------------------------------------------------

    def find_model_dir(self) -> Path | None:
        """The model's folder on disk, if a complete copy is there (no network)."""
        direct = Path(self.settings.model)
        if direct.is_absolute() or direct.parts[0] in (".", ".."):
            complete = all(any(direct.glob(f)) for f in REQUIRED_MODEL_FILES)
            return direct if direct.is_dir() and complete else None
        return self.store.find_dir(model_dir_name(self.settings.model), REQUIRED_MODEL_FILES)

    def availability(self) -> Availability:
        if (path := self.find_model_dir()) is not None:
            return Availability.on_disk(path)
        if (refusal := self.store.refusal(model_dir_name(self.settings.model))) is not None:
            return Availability.missing(refusal)
        if (failure := self.store.failure(self.settings.model)) is not None:
            return Availability.missing(failure.reason)
        if not self.is_downloadable():
            return Availability.missing(
                "not on disk, and not a model name faster-whisper can download"
            )
        return Availability.downloadable("the Hugging Face hub (faster-whisper)")

    def is_downloadable(self) -> bool:
        """A faster-whisper size name or a Hugging Face repo id (not a local path)."""
        from faster_whisper.utils import available_models

        name = self.settings.model
        if Path(name).is_absolute() or name.startswith("."):
            return False
        return name in available_models() or name.count("/") == 1

    @property
    def languages(self) -> list[str]:
        """Languages the model can transcribe (English only for `.en` models)."""
        if self._model is not None and not self._model.model.is_multilingual:
            return ["en"]
        if self.settings.model.endswith(".en"):
            return ["en"]
        return self._languages

    def _download(self) -> Path:
        from faster_whisper import download_model

        name = self.settings.model
        if not self.is_downloadable():
            raise DownloadError(
                f"whisper model {name!r} is not in {', '.join(map(str, self.store.search_dirs))} "
                "and is not a model faster-whisper can download",
                not_found=True,
            )
        with self.store.staging_dir(model_dir_name(name)) as staging:
            progress = ProgressLog(f"whisper model {name}", None)
            watcher = DirectoryProgress(staging, progress)
            watcher.start()
            try:
                with warnings.catch_warnings():
                    # faster-whisper passes an argument huggingface_hub has deprecated.
                    warnings.simplefilter("ignore", UserWarning)
                    download_model(name, output_dir=str(staging))
            except ValueError as err:  # faster-whisper does not know the name
                raise DownloadError(
                    f"whisper model {name!r} is not in {self.store.search_dirs} and is not a "
                    f"model faster-whisper can download: {err}",
                    not_found=True,
                ) from err
            except Exception as err:  # hub, network and disk errors all mean "missing"
                reason = " ".join(str(err).split())
                raise DownloadError(f"download of whisper model {name!r} failed: {reason}") from err
            finally:
                watcher.stop()
            missing = [f for f in REQUIRED_MODEL_FILES if not (staging / f).is_file()]
            if missing:
                raise DownloadError(f"downloaded whisper model {name!r} lacks {missing}")
            progress.finish()
        return self.store.download_dir / model_dir_name(name)

    # -- loading ----------------------------------------------------------------------

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def ensure_on_disk(self) -> Path:
        """The model's folder, downloading the model first if it is not on disk. Blocking."""
        return self.store.ensure(self.settings.model, self.find_model_dir, self._download)

    def load(self) -> None:
        """Load the model once (downloading it first if needed). Blocking; thread-safe."""
        if self._model is not None:
            return
        with self._load_lock:
            if self.is_loaded:  # another thread loaded it while this one waited
                return
            path = self.ensure_on_disk()
            if self.settings.fitted_window:
                from .fitted_window import FittedWindowWhisper as Model
            else:
                from faster_whisper import WhisperModel as Model

            started = time.monotonic()
            try:
                self._model = Model(
                    str(path),
                    device=self.settings.device,
                    compute_type=self.settings.compute_type,
                    cpu_threads=self.settings.cpu_threads,
                    num_workers=self.settings.workers,
                )
            except (RuntimeError, ValueError, OSError) as err:
                raise ServiceError(
                    ErrorCode.ENGINE_FAILED, f"could not load whisper model from {path}: {err}"
                ) from err
            _LOGGER.info(
                "Loaded whisper model %s from %s in %.2f s",
                self.settings.model,
                path,
                time.monotonic() - started,
            )

    # -- transcription ----------------------------------------------------------------

    def resolve_language(self, requested: str | None) -> str | None:
        """The language to decode in: the request's, else the configured one, else detect."""
        language = requested or self.settings.language
        if not language or language == "auto":
            return None
        base = language.replace("_", "-").split("-")[0].lower()
        if base not in self.languages:
            raise ServiceError(
                ErrorCode.BAD_REQUEST,
                f"language {language!r} is not supported by whisper model {self.settings.model}",
            )
        return base

    def transcribe(self, audio: FloatAudio, language: str | None) -> Iterator[TranscriptPart]:
        """Decode 16 kHz mono float audio: first the language, then segment by segment."""
        from . import fitted_window  # imports faster-whisper, as load() did

        self.load()
        assert self._model is not None
        seconds = len(audio) / fitted_window.SAMPLE_RATE
        # faster-whisper's VAD filter would cut away the silence the fitted window relies on.
        fitted = (
            self.settings.fitted_window
            and not self.settings.vad_filter
            and fitted_window.fits(seconds)
        )
        try:
            segments, info = self._model.transcribe(
                fitted_window.with_silence(audio) if fitted else audio,
                language=language,
                beam_size=self.settings.beam_size,
                initial_prompt=self.settings.initial_prompt,
                vad_filter=self.settings.vad_filter,
                condition_on_previous_text=False,
                max_new_tokens=fitted_window.max_new_tokens(seconds) if fitted else None,
            )
            yield LanguageDetected(info.language, info.language_probability)
            if fitted:
                for text, start, end in fitted_window.spoken_segments(segments, audio):
                    yield Segment(text, start, end)
            else:
                for segment in segments:
                    yield Segment(segment.text, segment.start, segment.end)
        except (RuntimeError, ValueError) as err:
            raise ServiceError(ErrorCode.ENGINE_FAILED, f"transcription failed: {err}") from err
