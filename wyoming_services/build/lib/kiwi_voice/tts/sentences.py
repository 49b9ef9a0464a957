"""Cutting streamed text into sentences, so synthesis can start before the text is complete.

Text arrives in arbitrary pieces (synthesize-chunk events, often an LLM's tokens). A
sentence is complete once its end punctuation is followed by whitespace; a very long run
without any is cut at the last space so a missing full stop cannot hold all audio back.
"""

from __future__ import annotations

import re

# End punctuation, optional closing quotes/brackets, then whitespace.
_SENTENCE_END = re.compile(r"[.!?…。！？;]+[\"'”’»)\]]*\s+")
DEFAULT_MAX_SENTENCE_CHARS = 400


class SentenceSplitter:
    """Accumulates text pieces and hands out each sentence once it is complete."""

    def __init__(self, max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS) -> None:
        self.max_sentence_chars = max_sentence_chars
        self._pending = ""

    def add(self, text: str) -> list[str]:
        """Add a piece of text; return the sentences it completed (maybe none)."""
        self._pending += text
        sentences: list[str] = []
        while True:
            match = _SENTENCE_END.search(self._pending)
            if match is None:
                break
            sentence, self._pending = self._pending[: match.end()], self._pending[match.end() :]
            if sentence.strip():
                sentences.append(sentence.strip())
        while len(self._pending) > self.max_sentence_chars:
            cut = self._pending.rfind(" ", 0, self.max_sentence_chars)
            cut = cut if cut > 0 else self.max_sentence_chars
            sentence, self._pending = self._pending[:cut], self._pending[cut:]
            if sentence.strip():
                sentences.append(sentence.strip())
        return sentences

    def finish(self) -> str:
        """The text left after the last complete sentence; the splitter is empty afterwards."""
        rest, self._pending = self._pending.strip(), ""
        return rest

    @property
    def pending_chars(self) -> int:
        return len(self._pending)
