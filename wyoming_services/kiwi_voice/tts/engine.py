"""piper-tts behind a small interface: a few voices kept loaded, synthesis sentence by sentence.

Loaded voices live in a small LRU cache shared by every connection (a voice is an ONNX
session; onnxruntime runs it from several threads at once). `synthesize` is a generator
that yields each sentence's audio as soon as piper has made it, so the first sentence can
be on its way to the client while later ones are still being synthesised.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig
from piper.voice import ESPEAK_DATA_DIR

from kiwi_voice.common.errors import ErrorCode, ServiceError

from .voices import VoiceCatalog

_LOGGER = logging.getLogger(__name__)

# Accepted ranges of the per-request synthesis settings: wide enough for any sensible
# use, narrow enough that a typo cannot make a minute of audio out of one word.
SCALE_LIMITS: dict[str, tuple[float, float]] = {
    "length_scale": (0.1, 5.0),
    "noise_scale": (0.0, 2.0),
    "noise_w_scale": (0.0, 2.0),
    "volume": (0.0, 4.0),
}


@dataclass(frozen=True)
class SynthesisDefaults:
    """Service-wide settings; None means "the voice's own value"."""

    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    volume: float = 1.0
    sentence_silence_s: float = 0.2


@dataclass
class LoadedVoice:
    name: str
    voice: PiperVoice

    @property
    def sample_rate(self) -> int:
        return int(self.voice.config.sample_rate)

    @property
    def language(self) -> str:
        return str(self.voice.config.espeak_voice)

    def speaker_id(self, speaker: str | None) -> int | None:
        """A speaker name or numeric id of a multi-speaker voice; error if unknown."""
        if speaker is None or speaker == "":
            return None
        id_map: Mapping[str, int] = self.voice.config.speaker_id_map or {}
        if speaker in id_map:
            return id_map[speaker]
        if speaker.isdigit() and int(speaker) < max(1, self.voice.config.num_speakers):
            return int(speaker)
        known = ", ".join(sorted(id_map)) or "none: a single-speaker voice"
        raise ServiceError(
            ErrorCode.UNKNOWN_VOICE, f"voice {self.name!r} has no speaker {speaker!r} ({known})"
        )


@dataclass(frozen=True)
class SentenceAudio:
    """One sentence's audio: mono s16 PCM at the voice's sample rate."""

    index: int
    pcm: bytes
    sample_rate: int


@dataclass
class SynthesisProgress:
    """Counts sentences as the worker finishes them, so the handler can report progress."""

    sentences_ready: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sentence_done(self) -> None:
        with self._lock:
            self.sentences_ready += 1


def session_options() -> onnxruntime.SessionOptions:
    """onnxruntime settings that keep a voice's resident memory near its weights.

    The default CPU memory arena keeps the largest tensors any sentence needed (a long
    sentence grows it by 100 MB and more) for the life of the process. Without the arena the
    buffers go back to the heap after each run, where `release_free_memory` returns them to
    the system; bench/bench_rss.py measures what this saves and bench_speech what it costs.
    """
    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    return options


def load_piper_voice(model: Path, config: Path, *, use_cuda: bool) -> PiperVoice:
    """`PiperVoice.load`, with Kiwi's session options (piper's load takes none)."""
    with config.open(encoding="utf-8") as config_file:
        voice_config = PiperConfig.from_dict(json.load(config_file))
    providers: list[Any] = (
        [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})]
        if use_cuda
        else ["CPUExecutionProvider"]
    )
    session = onnxruntime.InferenceSession(
        str(model), sess_options=session_options(), providers=providers
    )
    return PiperVoice(
        config=voice_config,
        session=session,
        espeak_data_dir=Path(ESPEAK_DATA_DIR),
        download_dir=Path.cwd(),
    )


class PiperEngine:
    """The voices of this service and the synthesis settings applied to them."""

    def __init__(
        self,
        catalog: VoiceCatalog,
        *,
        default_voice: str,
        default_speaker: str | None,
        defaults: SynthesisDefaults,
        max_loaded_voices: int,
        use_cuda: bool = False,
    ) -> None:
        self.catalog = catalog
        self.default_voice = default_voice
        self.default_speaker = default_speaker
        self.defaults = defaults
        self.max_loaded_voices = max(1, max_loaded_voices)
        self.use_cuda = use_cuda
        self._loaded: OrderedDict[str, LoadedVoice] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- voices -----------------------------------------------------------------------

    def voice_for_language(self, language: str) -> str:
        """The default voice if it speaks `language`, else the first voice on disk that does."""
        wanted = language.replace("-", "_").lower()

        def speaks(codes: list[str]) -> bool:
            return any(wanted in (code.lower(), code.lower().split("_")[0]) for code in codes)

        listings = {entry.name: entry for entry in self.catalog.listings(self.default_voice)}
        default = listings[self.default_voice]
        if default.availability.installed and speaks(default.languages):
            return self.default_voice
        for name in self.catalog.local_voice_names():
            if name in listings and speaks(listings[name].languages):
                return name
        raise ServiceError(ErrorCode.UNKNOWN_VOICE, f"no voice for language {language!r}")

    def loaded_voice_names(self) -> list[str]:
        with self._cache_lock:
            return list(self._loaded)

    def cached_voice(self, name: str | None) -> LoadedVoice | None:
        """The voice if it is loaded already (never blocks on disk or network)."""
        name = name or self.default_voice
        with self._cache_lock:
            if (cached := self._loaded.get(name)) is not None:
                self._loaded.move_to_end(name)
            return cached

    def voice(self, name: str | None) -> LoadedVoice:
        """A loaded voice (default if None), loading or downloading it first. Blocking."""
        name = name or self.default_voice
        if (cached := self.cached_voice(name)) is not None:
            return cached
        with self.catalog.store.key_lock(f"load:{name}"):
            with self._cache_lock:
                if (cached := self._loaded.get(name)) is not None:
                    return cached
            files = self.catalog.ensure(name)
            started = time.monotonic()
            try:
                piper_voice = load_piper_voice(files.model, files.config, use_cuda=self.use_cuda)
            except Exception as err:  # onnxruntime and JSON errors: the file is unusable
                raise ServiceError(
                    ErrorCode.ENGINE_FAILED, f"could not load piper voice {name!r}: {err}"
                ) from err
            loaded = LoadedVoice(name, piper_voice)
            with self._cache_lock:
                self._loaded[name] = loaded
                while len(self._loaded) > self.max_loaded_voices:
                    evicted, _ = self._loaded.popitem(last=False)
                    _LOGGER.info("Unloaded voice %s (keeping %d)", evicted, self.max_loaded_voices)
            _LOGGER.info(
                "Loaded voice %s from %s in %.2f s", name, files.model, time.monotonic() - started
            )
            return loaded

    # -- synthesis --------------------------------------------------------------------

    def synthesis_config(
        self, loaded: LoadedVoice, speaker: str | None, overrides: dict[str, Any] | None
    ) -> SynthesisConfig:
        """Service defaults, then the request's speaker and scale overrides (validated)."""
        if speaker is None and loaded.name == self.default_voice:
            speaker = self.default_speaker
        values: dict[str, Any] = {
            "length_scale": self.defaults.length_scale,
            "noise_scale": self.defaults.noise_scale,
            "noise_w_scale": self.defaults.noise_w_scale,
            "volume": self.defaults.volume,
        }
        for key, value in (overrides or {}).items():
            if key not in SCALE_LIMITS:
                raise ServiceError(
                    ErrorCode.BAD_REQUEST,
                    f"unknown synthesis setting {key!r} (known: {', '.join(SCALE_LIMITS)})",
                )
            low, high = SCALE_LIMITS[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not low <= value <= high
            ):
                raise ServiceError(
                    ErrorCode.BAD_REQUEST, f"{key} must be a number from {low} to {high}"
                )
            values[key] = float(value)
        return SynthesisConfig(speaker_id=loaded.speaker_id(speaker), **values)

    def synthesize(
        self,
        loaded: LoadedVoice,
        text: str,
        config: SynthesisConfig,
        progress: SynthesisProgress,
        *,
        first_index: int = 0,
    ) -> Iterator[SentenceAudio]:
        """Yield the audio of each sentence of `text` as soon as it is synthesised.

        `first_index` numbers the sentences on from earlier calls of the same request;
        every sentence but the request's first starts with a short silence.
        """
        silence = b"\0\0" * int(loaded.sample_rate * self.defaults.sentence_silence_s)
        index = first_index
        try:
            for chunk in loaded.voice.synthesize(text, config):
                pcm = chunk.audio_int16_bytes
                progress.sentence_done()
                yield SentenceAudio(index, silence + pcm if index else pcm, chunk.sample_rate)
                index += 1
        except ServiceError:
            raise
        except Exception as err:  # espeak-ng and onnxruntime raise their own types
            raise ServiceError(ErrorCode.ENGINE_FAILED, f"synthesis failed: {err}") from err
