"""Is an utterance the owner's yes or no?

An answer is a short utterance made only of answer words: "yes", "Yes, go ahead, I approve
it", "No, I do not approve that". A word of refusal anywhere makes it a no. Anything with
other words ("yes, and turn on the lights") is a request of its own, not an answer.

Voice identification needs a second or two of speech: a lone "yes" is often too short for
Kiwi to know it is the owner, so docs/approvals.md suggests answering in a short sentence.
"""

from __future__ import annotations

import re

_AFFIRM = frozenset(
    {
        "yes", "yeah", "yep", "yup", "sure", "ok", "okay", "alright", "fine", "approve",
        "approved", "allow", "allowed", "permit", "absolutely", "certainly", "confirm",
        "confirmed",
        "да", "sí", "si", "oui", "ja", "sim", "evet", "tak", "はい", "是", "네",
    }
)  # fmt: skip
_NEGATE = frozenset(
    {
        "no", "nope", "nah", "deny", "denied", "decline", "declined", "dont", "not", "never",
        "refuse", "reject", "cancel",
        "нет", "non", "nein", "não", "hayır", "nie", "いいえ", "不", "아니요",
    }
)  # fmt: skip
_AFFIRM_PHRASES = ("go ahead", "do it", "let them")
_FILLER = frozenset(
    {
        "please", "it", "that", "them", "him", "her", "this", "do", "go", "ahead", "let",
        "kiwi", "thanks", "thank", "you", "of", "course", "i", "say", "way", "sorry", "can",
        "they", "may",
    }
)  # fmt: skip
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_MAX_WORDS = 10


def normalize(text: str) -> str:
    without = _PUNCTUATION.sub(" ", text.lower().replace("'", "").replace("’", ""))
    return " ".join(without.split())


def yes_or_no(text: str) -> bool | None:
    """True for a yes, False for a no, None for anything else."""
    phrase = normalize(text)
    words = phrase.split()
    if not words or len(words) > _MAX_WORDS:
        return None
    if any(word not in _AFFIRM | _NEGATE | _FILLER for word in words):
        return None
    if any(word in _NEGATE for word in words):
        return False
    if any(word in _AFFIRM for word in words):
        return True
    padded = f" {phrase} "
    return True if any(f" {p} " in padded for p in _AFFIRM_PHRASES) else None
