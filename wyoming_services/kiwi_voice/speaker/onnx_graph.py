"""resemblyzer's encoder network as an ONNX model, written without the `onnx` package.

The graph is small and fixed: three ONNX `LSTM` nodes (onnxruntime's kernel runs the 160 steps
of a partial ~4x faster than numpy's small matrix products), then `MatMul`, `Add`, `Relu` and
`LpNormalization` on the last hidden state. It is serialised here with a minimal protobuf
writer (field numbers from onnx.proto3, IR version 8, opset 17), so the add-on needs only
onnxruntime, which it already has. tests/addon/test_speaker_encoder.py parses the result with
the real `onnx` package and checks it.

Input `mels`: (frames, partials, 40) float32, time-major. Output `embeddings`:
(partials, 256), L2-normalised.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

IR_VERSION = 8
OPSET = 17
INPUT_NAME = "mels"
OUTPUT_NAME = "embeddings"
_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7  # AttributeProto.AttributeType


# -- protobuf wire format --------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 fields are two's complement, 10 bytes
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _bytes(field: int, value: bytes) -> bytes:
    return _key(field, 2) + _varint(len(value)) + value


def _str(field: int, value: str) -> bytes:
    return _bytes(field, value.encode())


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


# -- ONNX messages ---------------------------------------------------------------------------


def _tensor(name: str, array: NDArray[np.float32] | NDArray[np.int64]) -> bytes:
    data_type = _INT64 if array.dtype == np.int64 else _FLOAT
    dtype = "<i8" if data_type == _INT64 else "<f4"
    dims = b"".join(_int(1, d) for d in array.shape)
    raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return dims + _int(2, data_type) + _str(8, name) + _bytes(9, raw)


def _attribute(name: str, value: int | float | list[int]) -> bytes:
    if isinstance(value, list):
        return _str(1, name) + b"".join(_int(8, v) for v in value) + _int(20, _ATTR_INTS)
    if isinstance(value, float):
        return _str(1, name) + _float(2, value) + _int(20, _ATTR_FLOAT)
    return _str(1, name) + _int(3, value) + _int(20, _ATTR_INT)


def _node(
    op_type: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    **attributes: int | float | list[int],
) -> bytes:
    body = b"".join(_str(1, name) for name in inputs)
    body += b"".join(_str(2, name) for name in outputs)
    body += _str(4, op_type)
    body += b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items())
    return body


def _value_info(name: str, dims: Iterable[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _str(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, _FLOAT) + _bytes(2, shape)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


# -- the encoder -----------------------------------------------------------------------------


def _onnx_gates(array: NDArray[np.float32]) -> NDArray[np.float32]:
    """Reorder LSTM gates from torch's (input, forget, cell, output) to ONNX's (i, o, f, c)."""
    i, f, g, o = np.split(np.asarray(array, dtype=np.float32), 4, axis=0)
    return np.concatenate((i, o, f, g), axis=0)


def encoder_model(state: Mapping[str, NDArray[np.float32]], layers: int = 3) -> bytes:
    """The serialised ONNX model of resemblyzer's network with the weights in `state`."""
    hidden = int(state["lstm.weight_hh_l0"].shape[1])
    nodes: list[bytes] = []
    initializers: list[bytes] = [
        _tensor("axis0", np.array([0], dtype=np.int64)),
        _tensor("axis1", np.array([1], dtype=np.int64)),
    ]
    layer_input = INPUT_NAME
    for index in range(layers):
        weights = _onnx_gates(state[f"lstm.weight_ih_l{index}"])[np.newaxis]
        recurrence = _onnx_gates(state[f"lstm.weight_hh_l{index}"])[np.newaxis]
        biases = np.concatenate(
            (
                _onnx_gates(state[f"lstm.bias_ih_l{index}"]),
                _onnx_gates(state[f"lstm.bias_hh_l{index}"]),
            )
        )[np.newaxis]
        names = (f"W{index}", f"R{index}", f"B{index}")
        for name, array in zip(names, (weights, recurrence, biases), strict=True):
            initializers.append(_tensor(name, array))
        sequence, last = f"sequence{index}", f"last{index}"
        nodes.append(_node("LSTM", [layer_input, *names], [sequence, last], hidden_size=hidden))
        # Y is (time, directions=1, batch, hidden): drop the direction axis for the next layer.
        layer_input = f"steps{index}"
        nodes.append(_node("Squeeze", [sequence, "axis1"], [layer_input]))
    initializers.append(_tensor("linear_weight", np.asarray(state["linear.weight"]).T))
    initializers.append(_tensor("linear_bias", np.asarray(state["linear.bias"])))
    nodes += [
        _node("Squeeze", [f"last{layers - 1}", "axis0"], ["hidden"]),
        _node("MatMul", ["hidden", "linear_weight"], ["projected"]),
        _node("Add", ["projected", "linear_bias"], ["biased"]),
        _node("Relu", ["biased"], ["rectified"]),
        _node("LpNormalization", ["rectified"], [OUTPUT_NAME], axis=1, p=2),
    ]
    input_dims = ("frames", "partials", int(state["lstm.weight_ih_l0"].shape[1]))
    output_dims = ("partials", int(state["linear.weight"].shape[0]))
    graph = b"".join(_bytes(1, node) for node in nodes)
    graph += _str(2, "resemblyzer_voice_encoder")
    graph += b"".join(_bytes(5, tensor) for tensor in initializers)
    graph += _bytes(11, _value_info(INPUT_NAME, input_dims))
    graph += _bytes(12, _value_info(OUTPUT_NAME, output_dims))
    opset = _str(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _str(2, "kiwi-speaker") + _bytes(7, graph) + _bytes(8, opset)
