"""What a speaker profile is linked to outside kiwi-speaker: the Home Assistant person and user
(set by Kiwi's integration from its options flow) and the soul that speaker's turns use.

kiwi-speaker keeps voiceprints; these links are the hub's, in its SQLite store (namespace
`speaker_links`), so a turn knows at once who the voice is in Home Assistant and how to answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .store import Store

_NAMESPACE = "speaker_links"
FIELDS = ("person", "ha_user_id", "soul")


@dataclass(frozen=True)
class SpeakerLink:
    person: str | None = None  # HA person entity id, e.g. person.anna
    ha_user_id: str | None = None  # that person's HA user: the turn runs as this user
    soul: str | None = None  # the soul this speaker's turns use (None: the active soul)

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


class SpeakerLinks:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._links: dict[str, SpeakerLink] = {}
        for speaker_id, raw in store.read_namespace(_NAMESPACE).items():
            if isinstance(raw, dict):  # a damaged row is dropped, not fatal
                self._links[speaker_id] = SpeakerLink(
                    **{k: v if isinstance(v, str) else None for k, v in raw.items() if k in FIELDS}
                )

    def get(self, speaker_id: str | None) -> SpeakerLink:
        return self._links.get(speaker_id or "", SpeakerLink())

    def update(self, speaker_id: str, changes: dict[str, Any]) -> SpeakerLink:
        """Set the named fields (None clears one); returns the link as it is now."""
        current = self.get(speaker_id).as_dict()
        current.update({k: v for k, v in changes.items() if k in FIELDS})
        link = SpeakerLink(**current)
        if link == SpeakerLink():
            self.forget(speaker_id)
        else:
            self._links[speaker_id] = link
            self._store.write_namespace(_NAMESPACE, {speaker_id: link.as_dict()})
        return link

    def forget(self, speaker_id: str) -> None:
        if self._links.pop(speaker_id, None) is not None:
            self._store.write_namespace(_NAMESPACE, {}, [speaker_id])
