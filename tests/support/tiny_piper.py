"""Build a tiny piper voice: a small ONNX graph with the signature of a real piper model.

`piper.PiperVoice.load()` runs it like any voice: the real espeak-ng phonemizer turns text
into phonemes, piper maps them to ids with its default id map, and onnxruntime runs the
graph. Instead of a neural vocoder the graph plays one tone per phoneme id: phoneme id `i`
lasts `round(256 * length_scale)` samples at `100 + 20 * i` Hz. So the audio is
deterministic, its length follows the number of phonemes and the length scale, and different
text gives different audio.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

VOICE_NAME = "en_US-kiwi_test-x_low"
# The benchmark voice: the same tones plus dense work per phoneme, so synthesis costs about what
# a real piper "medium" voice costs on a desktop CPU (a real-time factor near 0.06) and sentence
# streaming can show its effect. Tests use the free VOICE_NAME voice.
BENCH_VOICE_NAME = "en_US-kiwi_bench-medium"
BENCH_FRAMES_PER_PHONEME = 128
BENCH_HIDDEN = 256
BENCH_LAYERS = 20
SAMPLE_RATE = 16000
HOP_LENGTH = 256  # samples per phoneme id at length_scale 1.0, as real piper voices
NUM_SYMBOLS = 256
BASE_FREQUENCY_HZ = 100.0
FREQUENCY_STEP_HZ = 20.0
AMPLITUDE = 0.5
_OPSET = 17
_IR_VERSION = 8  # understood by every onnxruntime that piper-tts 1.8 runs on


def _dense_work_nodes(layers: int) -> tuple[list[Any], list[Any]]:
    """Nodes that burn realistic compute per phoneme and add exactly zero to the output.

    `frequency_3d` [1, T, 1] is expanded to [1, T, FRAMES, HIDDEN] and pushed through `layers`
    MatMul+Tanh steps; the result is summed, multiplied by zero and added to the waveform, so
    onnxruntime has to compute it but the audio is the same as the free voice's.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Expand", ["frequency_3d", "work_shape"], ["work_0"]),
        helper.make_node("Mul", ["work_0", "work_input_scale"], ["work_in"]),
    ]
    initializers = [
        helper.make_tensor(
            "work_shape", TensorProto.INT64, [4], [1, 1, BENCH_FRAMES_PER_PHONEME, BENCH_HIDDEN]
        ),
        helper.make_tensor("work_input_scale", TensorProto.FLOAT, [], [1e-3]),
        helper.make_tensor("work_zero", TensorProto.FLOAT, [], [0.0]),
    ]
    nodes[0].input[0] = "frequency_4d"
    nodes.insert(0, helper.make_node("Unsqueeze", ["frequency_3d", "last_axis"], ["frequency_4d"]))
    current = "work_in"
    for layer in range(layers):
        weight = rng.standard_normal((BENCH_HIDDEN, BENCH_HIDDEN)).astype(np.float32)
        initializers.append(numpy_helper.from_array(weight / 16.0, f"work_w{layer}"))
        nodes += [
            helper.make_node("MatMul", [current, f"work_w{layer}"], [f"work_mm{layer}"]),
            helper.make_node("Tanh", [f"work_mm{layer}"], [f"work_h{layer}"]),
        ]
        current = f"work_h{layer}"
    nodes += [
        helper.make_node("ReduceSum", [current], ["work_sum"], keepdims=0),
        helper.make_node("Mul", ["work_sum", "work_zero"], ["work_nothing"]),
        helper.make_node("Add", ["scaled_tone_free", "work_nothing"], ["scaled_tone"]),
    ]
    return nodes, initializers


def _graph(work_layers: int = 0) -> Any:
    from onnx import TensorProto, helper

    def const(name: str, data_type: int, dims: list[int], values: list[Any]) -> Any:
        return helper.make_tensor(name, data_type, dims, values)

    nodes = [
        # Samples per phoneme from scales = [noise_scale, length_scale, noise_w].
        helper.make_node("Gather", ["scales", "length_index"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["length_scale", "hop_length"], ["hop_scaled"]),
        helper.make_node("Round", ["hop_scaled"], ["hop_rounded"]),
        helper.make_node("Max", ["hop_rounded", "one_f"], ["hop_at_least_one"]),
        helper.make_node("Cast", ["hop_at_least_one"], ["samples_per_id"], to=TensorProto.INT64),
        helper.make_node("Range", ["zero_i", "samples_per_id", "one_i"], ["sample_index"]),
        helper.make_node("Cast", ["sample_index"], ["sample_index_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["sample_index_f", "radians_per_sample"], ["time_radians"]),
        # One frequency per phoneme id: [1, T] -> [1, T, 1].
        helper.make_node("Cast", ["input"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["ids_f", "frequency_step"], ["id_offset"]),
        helper.make_node("Add", ["id_offset", "base_frequency"], ["frequency"]),
        helper.make_node("Unsqueeze", ["frequency", "last_axis"], ["frequency_3d"]),
        # [1, T, 1] x [S] -> [1, T, S] -> [1, 1, T * S]
        helper.make_node("Mul", ["frequency_3d", "time_radians"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["tone"]),
        helper.make_node("Mul", ["tone", "amplitude"], ["scaled_tone"]),
        helper.make_node("Reshape", ["scaled_tone", "output_shape"], ["output"]),
    ]
    initializers = [
        const("length_index", TensorProto.INT64, [], [1]),
        const("hop_length", TensorProto.FLOAT, [], [float(HOP_LENGTH)]),
        const("one_f", TensorProto.FLOAT, [], [1.0]),
        const("zero_i", TensorProto.INT64, [], [0]),
        const("one_i", TensorProto.INT64, [], [1]),
        const("radians_per_sample", TensorProto.FLOAT, [], [2.0 * math.pi / SAMPLE_RATE]),
        const("frequency_step", TensorProto.FLOAT, [], [FREQUENCY_STEP_HZ]),
        const("base_frequency", TensorProto.FLOAT, [], [BASE_FREQUENCY_HZ]),
        const("last_axis", TensorProto.INT64, [1], [2]),
        const("amplitude", TensorProto.FLOAT, [], [AMPLITUDE]),
        const("output_shape", TensorProto.INT64, [3], [1, 1, -1]),
    ]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
        # piper always feeds the lengths; a batch of one needs no mask
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
    ]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "time"])]
    if work_layers:
        tone = next(node for node in nodes if node.output[0] == "scaled_tone")
        tone.output[0] = "scaled_tone_free"
        work_nodes, work_initializers = _dense_work_nodes(work_layers)
        reshape = nodes.pop()  # keep the output Reshape last, after the added work
        nodes += [*work_nodes, reshape]
        initializers += work_initializers
    return helper.make_graph(nodes, "kiwi_test_voice", inputs, outputs, initializers)


def _config() -> dict[str, Any]:
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    return {
        "dataset": "kiwi_test",
        "audio": {"sample_rate": SAMPLE_RATE, "quality": "x_low"},
        "espeak": {"voice": "en-us"},
        "language": {
            "code": "en_US",
            "family": "en",
            "region": "US",
            "name_native": "English",
            "name_english": "English",
            "country_english": "United States",
        },
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        "num_symbols": NUM_SYMBOLS,
        "num_speakers": 1,
        "speaker_id_map": {},
        "hop_length": HOP_LENGTH,
        "piper_version": "1.0.0",
    }


def build_piper_voice(output_dir: Path) -> Path:
    """Write `<VOICE_NAME>.onnx` and `<VOICE_NAME>.onnx.json` into output_dir; returns the .onnx."""
    return _build(output_dir, VOICE_NAME, work_layers=0)


def build_piper_bench_voice(output_dir: Path) -> Path:
    """The benchmark voice `<BENCH_VOICE_NAME>.onnx`: same audio, realistic compute cost."""
    return _build(output_dir, BENCH_VOICE_NAME, work_layers=BENCH_LAYERS)


def _build(output_dir: Path, voice_name: str, work_layers: int) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(
        _graph(work_layers),
        producer_name="kiwi-tests",
        opset_imports=[helper.make_opsetid("", _OPSET)],
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = output_dir / f"{voice_name}.onnx"
    onnx.save(model, str(model_path))
    config_path = output_dir / f"{voice_name}.onnx.json"
    config_path.write_text(json.dumps(_config(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return model_path
