"""The word error rate the speech benchmark reports (bench/speech_corpus.py, on the real-speech
tier's rule in tests/support/real_speech.py): Whisper's way of writing numbers and titles must not
count as errors, real mistakes must."""

from __future__ import annotations

import pytest

from bench.speech_corpus import wer
from tests.support.real_speech import normalize as normalise
from tests.support.real_speech import number_words, word_errors


@pytest.mark.parametrize(
    ("number", "words"),
    [(0, "zero"), (21, "twenty one"), (40, "forty"), (115, "one hundred fifteen"),
     (2026, "two thousand twenty six")],
)  # fmt: skip
def test_numbers_become_words(number: int, words: str) -> None:
    assert number_words(number) == words


def test_whisper_spelling_of_the_same_words_is_no_error() -> None:
    reference = "turn on the kitchen lights and set the thermostat to twenty one degrees"
    assert word_errors(
        reference, "Turn on the kitchen lights and set the thermostat to 21 degrees."
    ) == (0, 13)
    assert word_errors("and mister john dashwood", "And Mr. John Dashwood") == (0, 4)
    assert normalise("He was not an ill-disposed young man.") == [
        "he",
        "was",
        "not",
        "an",
        "ill",
        "disposed",
        "young",
        "man",
    ]


def test_substitutions_insertions_and_deletions_count() -> None:
    assert word_errors("lock the front door", "lock the door") == (1, 4)
    assert word_errors("lock the front door", "lock the round door please") == (2, 4)
    assert wer([("a b c d", "a b c d"), ("e f g h", "e x g")]) == 25.0
