"""Read a PyTorch checkpoint's tensors as numpy arrays, without importing torch.

resemblyzer's `pretrained.pt` is a `torch.save` file. Two layouts exist and both are read:

- the legacy stream (torch < 1.6, what resemblyzer ships): five pickles in a row (magic number,
  protocol version, system info, the object, the storage keys), then each storage's raw bytes,
  preceded by its element count as a little-endian int64;
- the zip archive (torch >= 1.6): `<root>/data.pkl` plus one file per storage,
  `<root>/data/<key>`.

Tensors are pickled as calls to `torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)` whose storages are "persistent ids". The unpickler here resolves only those names
and plain containers; any other class in the file is refused, so a crafted checkpoint cannot
run code (torch's own `weights_only` rule, done without torch).
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(ValueError):
    """The file is not a PyTorch checkpoint this reader understands."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass
class _Storage:
    dtype: np.dtype[Any]
    numel: int
    data: NDArray[Any] | None = None


@dataclass(frozen=True)
class _LazyTensor:
    """A tensor whose storage bytes come later in a legacy file."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> NDArray[Any]:
        if self.storage.data is None:
            raise CheckpointError("a tensor's storage was never written in the checkpoint")
        itemsize = self.storage.dtype.itemsize
        if not self.size:
            return self.storage.data[self.offset : self.offset + 1].reshape(()).copy()
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)  # a compact copy, detached from the storage buffer


def _rebuild_tensor(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _LazyTensor:
    return _LazyTensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: _LazyTensor, *_: Any) -> _LazyTensor:
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"checkpoint refers to {module}.{name}, which is not read")

    def persistent_load(self, saved_id: Any) -> _Storage:
        if not isinstance(saved_id, tuple) or not saved_id or saved_id[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {saved_id!r}")
        storage_type, key, _location, numel = saved_id[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, int(numel))
        return self._storages[key]


def _materialise(value: Any) -> Any:
    if isinstance(value, _LazyTensor):
        return value.array()
    if isinstance(value, dict):
        return {k: _materialise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_materialise(v) for v in value)
    return value


def _load_legacy(stream: BinaryIO) -> Any:
    if pickle.load(stream) != LEGACY_MAGIC:  # plain ints, before any object
        raise CheckpointError("not a PyTorch checkpoint (bad magic number)")
    pickle.load(stream)  # protocol version
    pickle.load(stream)  # system info: endianness and type sizes
    storages: dict[str, _Storage] = {}
    result = _Unpickler(stream, storages).load()
    keys = _Unpickler(stream, storages).load()
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", stream.read(8))
        raw = stream.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
            raise CheckpointError(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _materialise(result)


def _load_zip(archive: zipfile.ZipFile) -> Any:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise CheckpointError("zip checkpoint without exactly one data.pkl")
    root = pickles[0][: -len("data.pkl")]
    storages: dict[str, _Storage] = {}
    result = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
    for key, storage in storages.items():
        raw = archive.read(f"{root}data/{key}")
        if len(raw) < storage.numel * storage.dtype.itemsize:
            raise CheckpointError(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype, count=storage.numel)
    return _materialise(result)


def load_checkpoint(path: Path) -> Any:
    """The checkpoint's object (usually a dict) with every tensor as a numpy array."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _load_zip(archive)
        with path.open("rb") as stream:
            return _load_legacy(stream)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, zipfile.BadZipFile) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
