"""Build a tiny CTranslate2 Whisper model that faster-whisper loads and runs like a real one.

The weights are made with numpy, not trained: 2 encoder and 2 decoder layers, 64 dimensions,
80 mel bins, and Whisper's real multilingual token layout (51,865 ids), so faster-whisper's
whole path runs: feature extraction, encoder, language detection, timestamp rules, decoding
and detokenisation.

The decoder is *designed* rather than random where it decides what comes out, so that every
transcription ends after a few tokens (fast, deterministic): the layers' weights are small,
so the decoder's final hidden state is dominated by the embedding of its input token, and the
output projection turns that into one next token (a bigram model). After
<|startoftranscript|> it says English; after the task token, the first timestamp, then the
text " kiwi" in three tokens, then end-of-text. The audio still flows through the encoder and
cross-attention and nudges the logits a little, never enough to change these choices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Whisper's language tokens, in the order of their ids (50259 onwards).
WHISPER_LANGUAGES: tuple[str, ...] = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
    "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
    "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
    "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
    "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su",
)  # fmt: skip

VOCAB_SIZE = 51865
EMPTY_TOKEN_ID = 50256  # "" in Whisper's multilingual vocabulary; CTranslate2 checks for it
EOT_ID = 50257
SOT_ID = 50258
FIRST_LANGUAGE_ID = 50259
TRANSLATE_ID = 50358
TRANSCRIBE_ID = 50359
SOT_LM_ID = 50360
SOT_PREV_ID = 50361
NO_SPEECH_ID = 50362
NO_TIMESTAMPS_ID = 50363
FIRST_TIMESTAMP_ID = 50364

N_MELS = 80
D_MODEL = 64
N_HEADS = 2
N_LAYERS = 2
FFN_DIM = 4 * D_MODEL
ENCODER_POSITIONS = 1500  # 30 s of 10 ms frames, halved by the strided second convolution
DECODER_POSITIONS = 448
NUM_MERGES = 50000  # 256 byte tokens + 50,000 merges = ids 0..50255, then "" at 50256

# The text the designed decoder writes, as byte-level BPE tokens ("Ġ" is the space byte).
DESIGNED_TEXT_TOKENS: tuple[str, ...] = ("Ġk", "iw", "i")
DESIGNED_TEXT = " kiwi"

_WEIGHT_SCALE = 0.02  # small, so the layers perturb but never override the designed logits
_EMBEDDING_AMPLITUDE = 4.0
_PROJECTION_GAIN = 2.0


def _bytes_to_unicode() -> list[str]:
    """GPT-2's printable stand-in for each byte value, in byte order (byte-level BPE alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    stand_ins: dict[int, int] = {byte: byte for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in stand_ins:
            stand_ins[byte] = 256 + extra
            extra += 1
    return [chr(stand_ins[byte]) for byte in range(256)]


def _text_tokens() -> tuple[list[str], list[tuple[str, str]]]:
    """Ids 0..50255: the 256 byte tokens, then 50,000 two-byte merges (letters and space first)."""
    alphabet = _bytes_to_unicode()
    preferred = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["Ġ"]
    ordered = preferred + [char for char in alphabet if char not in preferred]
    merges: list[tuple[str, str]] = []
    for left in ordered:
        for right in ordered:
            merges.append((left, right))
            if len(merges) == NUM_MERGES:
                return alphabet + [a + b for a, b in merges], merges
    raise AssertionError("the byte alphabet gives more pairs than merges")


def _special_tokens() -> list[str]:
    """Ids 50257..51864 in Whisper's multilingual order."""
    tokens = ["<|endoftext|>", "<|startoftranscript|>"]
    tokens += [f"<|{code}|>" for code in WHISPER_LANGUAGES]
    tokens += [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]
    tokens += [f"<|{index * 0.02:.2f}|>" for index in range(VOCAB_SIZE - FIRST_TIMESTAMP_ID)]
    return tokens


def vocabulary() -> list[str]:
    """All 51,865 tokens by id, as CTranslate2's vocabulary.json lists them."""
    text_tokens, _ = _text_tokens()
    tokens = [*text_tokens, "", *_special_tokens()]
    assert len(tokens) == VOCAB_SIZE
    return tokens


def write_tokenizer(path: Path) -> None:
    """A byte-level BPE tokenizer.json with the same ids, as faster-whisper reads it."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    text_tokens, merges = _text_tokens()
    vocab = {token: index for index, token in enumerate(text_tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # "" cannot be a BPE token; a placeholder keeps 50256 taken so the special ids line up.
    tokenizer.add_tokens([AddedToken("<|unused-50256|>", special=True)])
    specials = _special_tokens()
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in specials])
    assert tokenizer.token_to_id("<|endoftext|>") == EOT_ID
    assert tokenizer.get_vocab_size() == VOCAB_SIZE
    tokenizer.save(str(path))


def _designed_rows(rng: Any) -> tuple[Any, Any, Any]:
    """Decoder position embeddings, output projection and token embeddings.

    The decoder is a designed bigram model: the embedding of each input token writes a large
    value into one "next token" dimension, and the projection row of that next token reads it.
    Any token not listed leads to end-of-text, so a prompt of any length (previous text,
    initial prompt, hotwords) still ends with the same few tokens.
    """
    import numpy as np

    text_ids = [vocabulary().index(token) for token in DESIGNED_TEXT_TOKENS]
    next_token = {
        SOT_ID: FIRST_LANGUAGE_ID,  # language detection reads the logits after SOT: English
        TRANSCRIBE_ID: FIRST_TIMESTAMP_ID,  # <|0.00|> opens the segment
        TRANSLATE_ID: FIRST_TIMESTAMP_ID,
        NO_TIMESTAMPS_ID: text_ids[0],
        FIRST_TIMESTAMP_ID: text_ids[0],
        text_ids[0]: text_ids[1],
        text_ids[1]: text_ids[2],
    }
    targets = sorted({*next_token.values(), EOT_ID})
    target_dims = {token_id: dim for dim, token_id in enumerate(targets)}

    embeddings = rng.normal(0.0, _WEIGHT_SCALE, (VOCAB_SIZE, D_MODEL)).astype(np.float32)
    embeddings[:, target_dims[EOT_ID]] += _EMBEDDING_AMPLITUDE
    for token_id, target in next_token.items():
        embeddings[token_id, target_dims[EOT_ID]] -= _EMBEDDING_AMPLITUDE
        embeddings[token_id, target_dims[target]] += _EMBEDDING_AMPLITUDE

    projection = rng.normal(0.0, _WEIGHT_SCALE, (VOCAB_SIZE, D_MODEL)).astype(np.float32)
    for token_id, dim in target_dims.items():
        projection[token_id, dim] = _PROJECTION_GAIN
    positions = rng.normal(0.0, _WEIGHT_SCALE, (DECODER_POSITIONS, D_MODEL)).astype(np.float32)
    return positions, projection, embeddings


def _fill_attention(spec: Any, rng: Any, fused_outputs: list[int]) -> None:
    import numpy as np

    spec.layer_norm.gamma = np.ones(D_MODEL, np.float32)
    spec.layer_norm.beta = np.zeros(D_MODEL, np.float32)
    for linear, rows in zip(spec.linear, fused_outputs, strict=True):
        linear.weight = rng.normal(0.0, _WEIGHT_SCALE, (rows, D_MODEL)).astype(np.float32)
        linear.bias = np.zeros(rows, np.float32)


def _fill_ffn(spec: Any, rng: Any) -> None:
    import numpy as np

    spec.layer_norm.gamma = np.ones(D_MODEL, np.float32)
    spec.layer_norm.beta = np.zeros(D_MODEL, np.float32)
    spec.linear_0.weight = rng.normal(0.0, _WEIGHT_SCALE, (FFN_DIM, D_MODEL)).astype(np.float32)
    spec.linear_0.bias = np.zeros(FFN_DIM, np.float32)
    spec.linear_1.weight = rng.normal(0.0, _WEIGHT_SCALE, (D_MODEL, FFN_DIM)).astype(np.float32)
    spec.linear_1.bias = np.zeros(D_MODEL, np.float32)


def _sinusoids(length: int, channels: int) -> Any:
    """Whisper's fixed encoder position embedding."""
    import numpy as np

    increment = np.log(10000) / (channels // 2 - 1)
    inverse = np.exp(-increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inverse[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def _model_spec() -> Any:
    import numpy as np
    from ctranslate2.specs import whisper_spec

    rng = np.random.default_rng(20240601)
    spec = whisper_spec.WhisperSpec(N_LAYERS, N_HEADS, N_LAYERS, N_HEADS)
    encoder, decoder = spec.encoder, spec.decoder

    encoder.conv1.weight = rng.normal(0.0, 0.1, (D_MODEL, N_MELS, 3)).astype(np.float32)
    encoder.conv1.bias = np.zeros(D_MODEL, np.float32)
    encoder.conv2.weight = rng.normal(0.0, 0.1, (D_MODEL, D_MODEL, 3)).astype(np.float32)
    encoder.conv2.bias = np.zeros(D_MODEL, np.float32)
    encoder.position_encodings.encodings = _sinusoids(ENCODER_POSITIONS, D_MODEL)
    encoder.layer_norm.gamma = np.ones(D_MODEL, np.float32)
    encoder.layer_norm.beta = np.zeros(D_MODEL, np.float32)
    for layer in encoder.layer:
        _fill_attention(layer.self_attention, rng, [3 * D_MODEL, D_MODEL])
        _fill_ffn(layer.ffn, rng)

    positions, projection, embeddings = _designed_rows(rng)
    decoder.embeddings.weight = embeddings
    decoder.position_encodings.encodings = positions
    decoder.layer_norm.gamma = np.ones(D_MODEL, np.float32)
    decoder.layer_norm.beta = np.zeros(D_MODEL, np.float32)
    decoder.projection.weight = projection
    for layer in decoder.layer:
        _fill_attention(layer.self_attention, rng, [3 * D_MODEL, D_MODEL])
        _fill_attention(layer.attention, rng, [D_MODEL, 2 * D_MODEL, D_MODEL])
        _fill_ffn(layer.ffn, rng)

    spec.register_vocabulary(vocabulary())
    spec.config.suppress_ids = []
    spec.config.suppress_ids_begin = [220, EOT_ID]
    spec.config.lang_ids = list(range(FIRST_LANGUAGE_ID, TRANSLATE_ID))
    spec.config.alignment_heads = [(N_LAYERS - 1, head) for head in range(N_HEADS)]
    return spec


def _preprocessor_config() -> dict[str, Any]:
    return {
        "chunk_length": 30,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": N_MELS,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "sampling_rate": 16000,
    }


def build_whisper_model(output_dir: Path) -> None:
    """Write the CTranslate2 model dir (model.bin, config.json, vocabulary.json, tokenizer...)."""
    spec = _model_spec()
    spec.validate()
    spec.optimize(quantization="float32")
    output_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(output_dir))
    write_tokenizer(output_dir / "tokenizer.json")
    (output_dir / "preprocessor_config.json").write_text(
        json.dumps(_preprocessor_config(), indent=2) + "\n", encoding="utf-8"
    )
