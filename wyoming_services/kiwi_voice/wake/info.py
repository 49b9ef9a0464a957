"""The wake service's `info`: what it runs, which models it has and which it is missing."""

from __future__ import annotations

from wyoming.info import Attribution, Info, WakeModel, WakeProgram

from kiwi_voice.common.info import KIWI_VERSION, package_version

from .catalog import WakeWordFile, split_stem
from .engine import DetectionSettings
from .loader import ModelSet

PROGRAM_NAME = "kiwi-wake"
OPENWAKEWORD_ATTRIBUTION = Attribution(
    name="David Scripka (openWakeWord)", url="https://github.com/dscripka/openWakeWord"
)


def build_info(
    models: ModelSet, settings: DetectionSettings, workers: int, downloading: list[str]
) -> Info:
    runtime = package_version("onnxruntime") or "?"
    tflite = package_version("pyopen-wakeword")
    tflite_runtime = f" and TensorFlow Lite (pyopen-wakeword {tflite})" if tflite else ""
    description = (
        f"openWakeWord {package_version('openwakeword') or '?'} on ONNX Runtime {runtime}"
        f"{tflite_runtime}; models loaded once and shared by all streams, batched across "
        f"streams, {workers} inference thread(s); "
        f"threshold {settings.threshold:g}, trigger level {settings.trigger_level}, "
        f"refractory {settings.refractory_seconds:g} s"
    )
    if settings.second_look_frames:
        description += f"; second look within {settings.second_look_frames} frame(s)"
    if downloading:
        description += f" (downloading {', '.join(downloading)})"
    elif models.problem:
        description += f" (NOT READY: {models.problem})"
    if models.engine is not None and models.missing_defaults:
        description += f" (default wake word(s) not found: {', '.join(models.missing_defaults)})"

    wake_models = [_wake_model(s.file, s.loaded, s.problem) for s in models.wake_words]
    listed = {m.name for m in wake_models}
    # Named as defaults but not on disk: list them, not installed, so a client sees the gap.
    for wanted in models.missing_defaults:
        name = split_stem(wanted)[0]
        if name not in listed:
            wake_models.append(
                WakeModel(
                    name=name,
                    description=f"{name.replace('_', ' ')} (NOT AVAILABLE: no model file)",
                    phrase=name.replace("_", " "),
                    attribution=OPENWAKEWORD_ATTRIBUTION,
                    installed=False,
                    languages=[],
                    version=None,
                )
            )

    program = WakeProgram(
        name=PROGRAM_NAME,
        description=description,
        attribution=OPENWAKEWORD_ATTRIBUTION,
        installed=models.engine is not None,
        version=KIWI_VERSION,
        models=wake_models,
    )
    return Info(wake=[program])


def _wake_model(file: WakeWordFile, loaded: bool, problem: str | None) -> WakeModel:
    # Home Assistant shows the description as the wake word's name: keep it the phrase when
    # all is well, and say what is wrong when it is not.
    description = file.phrase if loaded else f"{file.phrase} (NOT RUNNABLE: {problem})"
    attribution = (
        OPENWAKEWORD_ATTRIBUTION
        if file.builtin
        else Attribution(name="custom model", url=file.path.resolve().as_uri())
    )
    return WakeModel(
        name=file.name,
        description=description,
        phrase=file.phrase,
        attribution=attribution,
        installed=loaded,
        languages=file.languages,
        version=file.version,
    )
