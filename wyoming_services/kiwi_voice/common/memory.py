"""Giving freed heap memory back to the system after a request.

glibc keeps the memory an inference freed in its arenas, so a service's resident size after one
turn stays at the peak of that turn (about 40 MB for Whisper base, 60-100 MB for a piper voice)
until the next one reuses it. `malloc_trim(0)` returns those free pages; it takes a few
milliseconds, so the services call it after the answer is on its way, never before. Other C
libraries (musl) have no such call and nothing to trim: there it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

_LOGGER = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        _LOGGER.debug("this C library has no malloc_trim; freed memory stays with the process")
        return None
    return trim


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; True when the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
