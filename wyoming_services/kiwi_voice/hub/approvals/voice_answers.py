"""Is an utterance the owner's yes or no? Short, whole answers only ("yes", "no, deny it"):
a longer sentence that merely contains "yes" is a request of its own, not an answer."""

from __future__ import annotations

import re

# Whole answers after lower-casing and dropping punctuation; a few of Kiwi's languages.
_YES = frozenset(
    {
        "yes", "yeah", "yep", "yup", "sure", "ok", "okay", "approve", "approved", "allow",
        "allow it", "approve it", "do it", "go ahead", "yes please", "yes do it",
        "yes approve", "yes approve it", "yes go ahead", "let them", "permit",
        "da", "да", "sí", "si", "oui", "ja", "sim", "evet", "tak", "はい", "是", "네",
    }
)  # fmt: skip
_NO = frozenset(
    {
        "no", "nope", "nah", "deny", "denied", "deny it", "decline", "refuse", "reject",
        "dont", "do not", "no way", "dont do it", "do not do it", "no thanks", "no deny",
        "no deny it", "no dont", "never",
        "net", "нет", "non", "nein", "não", "hayır", "nie", "いいえ", "不", "아니요",
    }
)  # fmt: skip
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_MAX_WORDS = 5


def normalize(text: str) -> str:
    without = _PUNCTUATION.sub("", text.lower().replace("'", ""))
    return " ".join(without.split())


def yes_or_no(text: str) -> bool | None:
    """True for a yes, False for a no, None for anything else."""
    phrase = normalize(text)
    if not phrase or len(phrase.split()) > _MAX_WORDS:
        return None
    if phrase in _YES:
        return True
    if phrase in _NO:
        return False
    return None
