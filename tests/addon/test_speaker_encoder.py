"""kiwi-speaker's torch-free encoder against the real resemblyzer (torch + librosa, test env only).

The numpy front end must hear what resemblyzer hears (same speech kept, same mel spectrogram,
same partials), the ONNX network must compute what resemblyzer's torch network computes, and
the embeddings of real voices must agree to cosine >= 0.999. The checkpoint reader must read
both of torch's file layouts and refuse anything that is not plain tensors. And the service's
modules must never import torch, librosa, numba, llvmlite or resemblyzer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from packaging.requirements import Requirement

from kiwi_voice.speaker import frontend
from kiwi_voice.speaker.checkpoint import CheckpointError, load_checkpoint
from kiwi_voice.speaker.encoder import VoiceEncoder, bundled_weights
from kiwi_voice.speaker.onnx_graph import encoder_model
from tests.support.cache import REPO_ROOT
from tests.support.speech import espeak_wav
from tests.support.voices import TEST_SENTENCES, joe_wav, voice_clips, wav_samples

EQUAL_EMBEDDINGS = 0.999
FORBIDDEN = ("torch", "librosa", "numba", "llvmlite", "resemblyzer")


def floats(path: Path) -> np.ndarray:
    return np.frombuffer(wav_samples(path), "<i2").astype(np.float32) / 32768


@cache
def clips() -> dict[str, np.ndarray]:
    """Real voices of every source, short to long, plus all five librivox clips in one."""
    librivox = voice_clips("human:librivox")
    chosen = {
        "espeak m3": floats(espeak_wav(TEST_SENTENCES[0], "en-us+m3")),
        "espeak f2 fast": floats(espeak_wav(TEST_SENTENCES[1], "en-us+f2", speed=220)),
        "festival slt": floats(voice_clips("festival:cmu_us_slt_arctic_hts").test[0]),
        "festival czech_ph": floats(voice_clips("festival:czech_ph").test[1]),
        "piper joe": floats(joe_wav(TEST_SENTENCES[2])),
        "human librivox": floats(librivox.enrol[0]),
        "human cards (1.1 s)": floats(sorted(voice_clips("human:cards").test)[0]),
        "human raw": floats(voice_clips("human:raw").test[0]),
    }
    chosen["25 s, five recordings of one reader"] = np.concatenate(
        [floats(p) for p in (*librivox.enrol, *librivox.test)]
    )
    return chosen


@pytest.fixture(scope="module")
def ours() -> VoiceEncoder:
    weights = bundled_weights()
    assert weights is not None
    return VoiceEncoder(weights)


@pytest.fixture(scope="module")
def theirs(voice_encoder: Any) -> Any:
    return voice_encoder  # resemblyzer.VoiceEncoder with the same weights (conftest.py)


NAMES = (
    "espeak m3",
    "espeak f2 fast",
    "festival slt",
    "festival czech_ph",
    "piper joe",
    "human librivox",
    "human cards (1.1 s)",
    "human raw",
    "25 s, five recordings of one reader",
)


@pytest.mark.parametrize("name", NAMES)
def test_embeddings_equal_resemblyzers(name: str, ours: VoiceEncoder, theirs: Any) -> None:
    from resemblyzer import preprocess_wav

    samples = clips()[name]
    reference = theirs.embed_utterance(preprocess_wav(samples))
    embedded = ours.embed(samples)
    assert float(reference @ embedded.embedding) >= EQUAL_EMBEDDINGS
    assert np.linalg.norm(embedded.embedding) == pytest.approx(1.0, abs=1e-5)


def test_the_front_end_hears_what_resemblyzer_hears() -> None:
    from resemblyzer import audio
    from resemblyzer.voice_encoder import VoiceEncoder as Theirs

    for name, samples in clips().items():
        speech, _gain = frontend.preprocess(samples)
        reference = audio.preprocess_wav(samples)
        assert np.array_equal(speech, reference), name  # same samples kept, same volume
        mel = frontend.mel_spectrogram(speech)
        reference_mel = audio.wav_to_mel_spectrogram(reference)
        assert mel.shape == reference_mel.shape, name
        np.testing.assert_allclose(mel, reference_mel, rtol=1e-4, atol=1e-6 * mel.max())
    for length in (100, 16_000, 25_599, 25_600, 40_000, 123_456, 480_000):
        _, mel_slices = Theirs.compute_partial_slices(length, rate=1.3, min_coverage=0.75)
        assert frontend.partial_starts(length) == [s.start for s in mel_slices], length


def test_the_onnx_network_computes_resemblyzers(ours: VoiceEncoder, theirs: Any) -> None:
    import torch

    mels = np.random.default_rng(7).random((5, 160, 40), dtype=np.float32) * 0.2
    with torch.no_grad():
        reference = theirs(torch.from_numpy(mels)).numpy()
    np.testing.assert_allclose(ours.embed_partials(mels), reference, atol=2e-5)


def test_the_onnx_model_is_valid_onnx() -> None:
    import onnx

    weights = bundled_weights()
    assert weights is not None
    model = onnx.load_from_string(encoder_model(load_checkpoint(weights)["model_state"]))
    onnx.checker.check_model(model, full_check=True)
    assert [node.op_type for node in model.graph.node].count("LSTM") == 3
    assert model.opset_import[0].version == 17


def test_both_checkpoint_layouts_are_read_without_torch(tmp_path: Path) -> None:
    import torch

    weights = bundled_weights()
    assert weights is not None
    legacy = load_checkpoint(weights)["model_state"]
    original = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
    assert set(legacy) == set(original)
    for key, tensor in original.items():
        assert np.array_equal(legacy[key], tensor.numpy()), key
    # torch >= 1.6 writes a zip archive; a transposed view must come back as the same values.
    state = {**original, "view": original["linear.weight"].t()}
    torch.save({"model_state": state}, tmp_path / "zip.pt")
    zipped = load_checkpoint(tmp_path / "zip.pt")["model_state"]
    for key, tensor in state.items():
        assert np.array_equal(zipped[key], tensor.numpy()), key


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch /tmp/kiwi-speaker-exploited",))


def test_a_checkpoint_that_is_not_plain_tensors_is_refused(tmp_path: Path) -> None:
    import torch

    crafted = tmp_path / "crafted.pt"
    torch.save({"model_state": _Exploit()}, crafted, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"posix\.system|os\.system"):
        load_checkpoint(crafted)
    assert not Path("/tmp/kiwi-speaker-exploited").exists()
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "text.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(Path(weights_path()).read_bytes()[:4_000_000])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)


def weights_path() -> Path:
    weights = bundled_weights()
    assert weights is not None
    return weights


# -- no torch, no librosa ------------------------------------------------------------------------


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)] if code else [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )


def test_kiwi_speaker_help_imports_neither_torch_nor_librosa() -> None:
    result = _run("", "-X", "importtime", "-m", "kiwi_voice.speaker", "--help")
    assert result.returncode == 0, result.stderr
    assert "kiwi-speaker" in result.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()
    }
    assert not imported & set(FORBIDDEN), imported & set(FORBIDDEN)


def test_identifying_a_voice_imports_none_of_them() -> None:
    """Every speaker module, an encoder, a match: then look at what Python loaded."""
    result = _run(
        f"""
        import pkgutil, importlib, sys
        import numpy as np
        import kiwi_voice.speaker as package
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"kiwi_voice.speaker.{{module.name}}")
        from kiwi_voice.speaker.encoder import VoiceEncoder
        encoder = VoiceEncoder(__import__("pathlib").Path({str(weights_path())!r}))
        encoder.warm_up()
        rng = np.random.default_rng(1)
        tone = np.sin(np.arange(48000) * 0.05) * (0.3 + 0.2 * rng.random(48000))
        encoder.embed(tone.astype(np.float32))
        print(sorted({{name.split(".")[0] for name in sys.modules}} & {set(FORBIDDEN)!r}))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _requirements_closure(roots: list[str]) -> set[str]:
    """Every distribution that installing `roots` pulls in (markers for this Python)."""
    seen: set[str] = set()
    pending = [Requirement(root) for root in roots]
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        pending += [Requirement(r) for r in requires]
    return seen


def test_the_add_on_runtime_needs_no_torch_or_librosa() -> None:
    """What `pip install kiwi-voice` installs (its dependencies, transitively, as the add-on
    image resolves them) holds none of them; the test env keeps them only to compare."""
    project = tomllib.loads((REPO_ROOT / "wyoming_services" / "pyproject.toml").read_text())
    closure = _requirements_closure(project["project"]["dependencies"])
    assert "onnxruntime" in closure
    assert not closure & set(FORBIDDEN), closure & set(FORBIDDEN)


def test_kiwi_speaker_runs_from_the_runtime_dependencies_alone() -> None:
    """scripts/check-speaker-runtime.sh: a fresh venv with only kiwi-voice's declared
    dependencies (locked versions, from uv's cache) holds none of them, and its kiwi-speaker
    enrols and names a voice."""
    result = subprocess.run(
        ["bash", "scripts/check-speaker-runtime.sh"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "none of torch librosa numba llvmlite resemblyzer" in result.stdout
    assert "named Owner" in result.stdout
