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
SAMPLE_RATE = 16000
HOP_LENGTH = 256  # samples per phoneme id at length_scale 1.0, as real piper voices
NUM_SYMBOLS = 256
BASE_FREQUENCY_HZ = 100.0
FREQUENCY_STEP_HZ = 20.0
AMPLITUDE = 0.5
_OPSET = 17
_IR_VERSION = 8  # understood by every onnxruntime that piper-tts 1.8 runs on


def _graph() -> Any:
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
    import onnx
    from onnx import helper

    model = helper.make_model(
        _graph(),
        producer_name="kiwi-tests",
        opset_imports=[helper.make_opsetid("", _OPSET)],
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = output_dir / f"{VOICE_NAME}.onnx"
    onnx.save(model, str(model_path))
    config_path = output_dir / f"{VOICE_NAME}.onnx.json"
    config_path.write_text(json.dumps(_config(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return model_path
