"""Unknown voices learned as guests (`auto_learn_guests`, off by default).

kiwi-speaker's identification, wrapped for voice turns. With learning on:
- a voice that matches no profile becomes a *candidate*: a new profile "Guest N" (priority 2,
  `auto_learned`) enrolled from that utterance;
- each later utterance whose closest profile is a candidate (with at least
  `auto_learn_min_confidence` cosine) is offered to it as a learned sample; kiwi-speaker takes
  it only when the voice is clearly the candidate's (`sample_rejected` otherwise: auto-learning
  never widens a profile towards another voice, see kiwi_voice/speaker/matching.py). Once the
  candidate has `auto_learn_samples` samples and kiwi-speaker calls it ready, it is a guest;
- until then the candidate is still reported as unknown, so the policy treats it as an
  unknown voice (`unknown_speaker_policy`), never as a guest.

The owner sees learned voices in GET /api/speakers (`auto_learned: true`) and can rename,
re-rank, block or delete them like any profile. At most `MAX_CANDIDATES` voices are being
learned at a time, so background noise cannot fill the profile list.
"""

from __future__ import annotations

import logging
import time
from typing import cast

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.protocol import SpeakerIdentifiedResponse, SpeakerProfile
from kiwi_voice.hub.settings import SettingsStore
from kiwi_voice.hub.speakers import PcmAudio, SpeakersClient

_LOGGER = logging.getLogger(__name__)
MAX_CANDIDATES = 5
_PROFILES_CACHE_SECONDS = 30.0
GUEST_PRIORITY = 2


class LearningSpeakers:
    def __init__(self, speakers: SpeakersClient, settings: SettingsStore) -> None:
        self._speakers = speakers
        self._settings = settings
        self._profiles: dict[str, SpeakerProfile] = {}
        self._profiles_at = -_PROFILES_CACHE_SECONDS

    async def identify(self, audio: PcmAudio) -> SpeakerIdentifiedResponse:
        result = await self._speakers.identify(audio)
        if not self._settings.get("auto_learn_guests") or result["is_self"]:
            return result
        try:
            return await self._learn(audio, result)
        except ServiceError as err:  # learning is a bonus: the identification still stands
            _LOGGER.warning("Learning a voice failed: %s (%s)", err.message, err.code)
            return result

    async def _learn(
        self, audio: PcmAudio, result: SpeakerIdentifiedResponse
    ) -> SpeakerIdentifiedResponse:
        needed = int(self._settings.get("auto_learn_samples"))
        candidate = result["id"] or self._candidate_heard(result)
        if candidate is None:
            await self._new_candidate(audio, needed)
            return result
        best = result["best"]
        assert best is not None  # a named voice or a candidate is the closest profile
        if best["priority"] != GUEST_PRIORITY or best["is_blocked"]:
            return result  # the owner ranked or blocked this voice: it is not learned any more
        profile = await self._profile(candidate)
        if profile is None or not profile["auto_learned"] or profile["sample_count"] >= needed:
            return result  # an enrolled voice, or one already learned
        count, ready = profile["sample_count"], result["id"] is not None
        if best["confidence"] >= float(self._settings.get("auto_learn_min_confidence")):
            enrolled = await self._speakers.enroll(audio, None, None, candidate, auto_learned=True)
            count, ready = enrolled["sample_count"], enrolled["ready"]
            self._profiles[candidate] = cast(SpeakerProfile, {**profile, "sample_count": count})
        if count >= needed and ready:
            _LOGGER.info("Learned %s as a guest (%d samples)", profile["name"], count)
            return {
                **result,
                "id": best["id"],
                "name": best["name"],
                "priority": best["priority"],
                "is_blocked": best["is_blocked"],
                "decision": "known",
            }
        return {**result, "id": None, "name": None, "priority": None, "decision": "unknown"}

    @staticmethod
    def _candidate_heard(result: SpeakerIdentifiedResponse) -> str | None:
        """The guest being learned that an unknown voice is closest to, if any.

        kiwi-speaker does not name a profile before it has enough samples, so a candidate's
        voice comes back unknown with the candidate as the closest profile.
        """
        best = result["best"]
        if best and best["auto_learned"] and result["reason"] == "incomplete_profile":
            return best["id"]
        return None

    async def _new_candidate(self, audio: PcmAudio, needed: int) -> None:
        profiles = await self._all_profiles(refresh=True)
        learned = [p for p in profiles.values() if p["auto_learned"]]
        if sum(p["sample_count"] < needed for p in learned) >= MAX_CANDIDATES:
            _LOGGER.info("Not learning another voice: %d are being learned", MAX_CANDIDATES)
            return
        name = f"Guest {len(learned) + 1}"
        enrolled = await self._speakers.enroll(audio, name, GUEST_PRIORITY, None, auto_learned=True)
        _LOGGER.info("Learning a new voice as %s (%s)", name, enrolled["id"])
        self._profiles[enrolled["id"]] = {
            "id": enrolled["id"],
            "name": enrolled["name"],
            "priority": enrolled["priority"],
            "is_blocked": False,
            "auto_learned": True,
            "sample_count": enrolled["sample_count"],
            "last_seen": None,
        }

    async def _profile(self, profile_id: str) -> SpeakerProfile | None:
        profiles = await self._all_profiles(refresh=False)
        if profile_id not in profiles:  # enrolled since the last look
            profiles = await self._all_profiles(refresh=True)
        return profiles.get(profile_id)

    async def _all_profiles(self, *, refresh: bool) -> dict[str, SpeakerProfile]:
        stale = time.monotonic() - self._profiles_at > _PROFILES_CACHE_SECONDS
        if refresh or stale:
            self._profiles = {p["id"]: p for p in await self._speakers.list_profiles()}
            self._profiles_at = time.monotonic()
        return self._profiles
