"""What every connection of the speaker service shares.

The encoder and its background cohort (loaded once), the profile store, the decision
thresholds, the two executors (embeddings; database), the index the matcher works on (rebuilt
when the profiles or the cohort change), and the names of new profiles being enrolled right now.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.executor import EngineExecutor

from .encoder_slot import EncoderSlot
from .matching import VoiceIndex
from .settings import Thresholds
from .store import ProfileStore, SetAside


@dataclass
class SpeakerContext:
    encoder: EncoderSlot
    store: ProfileStore
    thresholds: Thresholds
    engine: EngineExecutor
    database: EngineExecutor
    max_seconds: float = 30.0
    store_set_aside: SetAside | None = None
    _index: VoiceIndex | None = field(default=None, init=False, repr=False)
    _index_key: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _index_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _enrolling: set[str] = field(default_factory=set, init=False, repr=False)

    async def index(self) -> VoiceIndex:
        """The matcher's index for the current profiles and background cohort."""
        async with self._index_lock:
            snapshot = await self.database.run(self.store.snapshot)
            background = self.encoder.background
            key = (snapshot.version, id(background))
            if self._index is None or self._index_key != key:
                self._index = await self.database.run(
                    VoiceIndex.build, snapshot, background.embeddings, self.thresholds
                )
                self._index_key = key
            return self._index

    def claim_name(self, name: str) -> str:
        """Mark a new profile called `name` as being enrolled; refuse a second one meanwhile.

        Two clients that enrol the same new name at once would otherwise make two half-enrolled
        profiles of one person. Returns the key to `release_name` when the request is over.
        """
        key = name.strip().casefold()
        if key in self._enrolling:
            raise ServiceError(
                ErrorCode.ENROLLMENT_BUSY,
                f"a profile named {name!r} is being enrolled on another connection; wait for it "
                "and add samples to that profile by its id",
            )
        self._enrolling.add(key)
        return key

    def release_name(self, key: str) -> None:
        self._enrolling.discard(key)
