"""Open-set identification through the real kiwi-speaker: who is named, who is a guest.

The evaluation set (tests/support/voices.py): 13 enrolled voices and 9 never-enrolled ones,
from espeak-ng variants, Debian festival voices (recorded people), piper joe and the
pocketsphinx human readers. Each enrolled voice is enrolled with three clips and tested with
clips of *other* sentences (humans: other recordings); every clip of a never-enrolled voice is
tried. Targets (issue 14): enrolled voices named as themselves >= 98 %, never-enrolled voices
named as anyone <= 2 %. Clips are deterministic (`sox -D`), so the counts are too.

Also here: the set itself is fair (no two evaluation voices are the same voice under two names,
and the background cohort has heard none of them), and auto-learning never widens a profile
towards another voice.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiwi_voice.speaker.cohort import COHORT_PATH
from kiwi_voice.speaker.encoder import VoiceEncoder, bundled_weights
from kiwi_voice.speaker.settings import ADAPT_THRESHOLD
from tests.support.speaker_client import (
    describe_when_loaded,
    enroll,
    enroll_clips,
    identify,
    profiles,
    request,
)
from tests.support.speech import espeak_wav
from tests.support.voices import (
    ENROL_SENTENCES,
    ENROLLED_VOICES,
    NEVER_ENROLLED_VOICES,
    TEST_SENTENCES,
    voice_clips,
    wav_samples,
)
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(900)

ACCEPT_TARGET = 0.98
FALSE_ACCEPT_TARGET = 0.02
DISTINCT_VOICES = 0.90  # no two evaluation voices closer than this (profile cosine)
UNHEARD = 0.95  # no background voice this close to an evaluation voice
PARALLEL_REQUESTS = 2


@dataclass(frozen=True)
class Trial:
    voice: str
    clip: Path
    expected: str | None  # the profile id it should be named as; None: never enrolled
    answer: dict[str, Any]


def start_speaker(folder: Path) -> ServiceProcess:
    return start_service(
        "kiwi-speaker",
        ["--db", str(folder / "speakers.db"), "--workers", "2"],
        folder / "kiwi-speaker.log",
    )


async def _bounded(jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(PARALLEL_REQUESTS)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(job) for job in jobs))


async def _evaluate(port: int) -> list[Trial]:
    await describe_when_loaded(port)
    profile_ids: dict[str, str] = {}
    for voice in ENROLLED_VOICES:  # one at a time: enrolment of one voice is sequential
        answer = await enroll_clips(port, voice_clips(voice).enrol, name=voice)
        assert answer["ready"], answer
        profile_ids[voice] = answer["id"]
    planned: list[tuple[str, Path, str | None]] = [
        (voice, clip, profile_ids[voice])
        for voice in ENROLLED_VOICES
        for clip in voice_clips(voice).test
    ]
    for voice in NEVER_ENROLLED_VOICES:
        clips = voice_clips(voice)
        planned += [(voice, clip, None) for clip in (*clips.enrol, *clips.test)]
    answers = await _bounded([identify(port, wav_samples(clip)) for _, clip, _ in planned])
    return [Trial(v, c, e, a) for (v, c, e), a in zip(planned, answers, strict=True)]


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Trial]]:
    folder = tmp_path_factory.mktemp("speaker-open-set")
    service = start_speaker(folder)
    try:
        yield asyncio.run(_evaluate(service.port))
    finally:
        assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log(), service.log()


def _describe(trial: Trial) -> str:
    answer = trial.answer
    best = answer["best"] or {}
    return (
        f"{trial.voice} {trial.clip.name}: {answer['decision']} ({answer['reason']}), "
        f"closest {best.get('name')} cosine {answer['confidence']} score {answer['score']} "
        f"threshold {answer['threshold']} margin {answer['margin']}"
    )


def test_the_evaluation_set_is_as_large_as_the_targets_ask() -> None:
    assert len(ENROLLED_VOICES) >= 12
    assert len(NEVER_ENROLLED_VOICES) >= 6
    assert not set(ENROLLED_VOICES) & set(NEVER_ENROLLED_VOICES)
    sources = {voice.split(":")[0] for voice in (*ENROLLED_VOICES, *NEVER_ENROLLED_VOICES)}
    assert sources == {"espeak", "festival", "piper", "human"}
    assert not set(ENROL_SENTENCES) & set(TEST_SENTENCES)
    for voice in (*ENROLLED_VOICES, *NEVER_ENROLLED_VOICES):
        clips = voice_clips(voice)
        assert len(clips.enrol) == 3
        assert clips.test
        assert not set(clips.enrol) & set(clips.test)


def test_enrolled_voices_are_named_as_themselves(trials: list[Trial]) -> None:
    genuine = [t for t in trials if t.expected is not None]
    missed = [t for t in genuine if t.answer["id"] != t.expected]
    accepted = 1 - len(missed) / len(genuine)
    assert len(genuine) >= 60
    assert accepted >= ACCEPT_TARGET, "\n".join(map(_describe, missed))
    named = [t for t in genuine if t.answer["id"] is not None]
    assert all(t.answer["id"] == t.expected for t in named), "a voice named as someone else"


def test_never_enrolled_voices_are_guests(trials: list[Trial]) -> None:
    strangers = [t for t in trials if t.expected is None]
    taken = [t for t in strangers if t.answer["id"] is not None]
    assert len(strangers) >= 60
    assert len(taken) / len(strangers) <= FALSE_ACCEPT_TARGET, "\n".join(map(_describe, taken))
    for trial in strangers:
        if trial.answer["id"] is None:
            assert trial.answer["decision"] == "unknown"
            assert trial.answer["reason"] != "match"
            assert trial.answer["best"] is not None  # the closest profile is still reported


# -- the evaluation set is fair ------------------------------------------------------------------


@pytest.fixture(scope="module")
def voice_embeddings() -> dict[str, np.ndarray]:
    """Each evaluation voice's mean embedding over all its clips (in process, same encoder)."""
    weights = bundled_weights()
    assert weights is not None
    encoder = VoiceEncoder(weights)
    means = {}
    for voice in (*ENROLLED_VOICES, *NEVER_ENROLLED_VOICES):
        clips = voice_clips(voice)
        rows = [
            encoder.embed(np.frombuffer(wav_samples(c), "<i2").astype(np.float32) / 32768)
            for c in (*clips.enrol, *clips.test)
        ]
        mean = np.mean([r.embedding for r in rows], axis=0)
        means[voice] = mean / np.linalg.norm(mean)
    return means


def test_no_two_evaluation_voices_are_one_voice(voice_embeddings: dict[str, np.ndarray]) -> None:
    voices = list(voice_embeddings)
    for index, first in enumerate(voices):
        for second in voices[index + 1 :]:
            similarity = float(voice_embeddings[first] @ voice_embeddings[second])
            assert similarity < DISTINCT_VOICES, (first, second, similarity)


def test_the_background_cohort_has_heard_none_of_them(
    voice_embeddings: dict[str, np.ndarray],
) -> None:
    with np.load(COHORT_PATH, allow_pickle=False) as cohort:
        background, names = cohort["embeddings"], [str(v) for v in cohort["voices"]]
    assert len(names) >= 80
    assert not set(names) & set(voice_embeddings)
    for voice, embedding in voice_embeddings.items():
        closest = float(np.max(background @ embedding))
        assert closest < UNHEARD, (voice, names[int(np.argmax(background @ embedding))])


# -- auto-learning -------------------------------------------------------------------------------


OWNER = "espeak:en-us+m3"


@pytest.fixture
async def learning_speaker(tmp_path: Path) -> AsyncIterator[tuple[int, str, Path]]:
    """A fresh service with the owner (espeak m3) enrolled; (port, owner id, database)."""
    service = start_speaker(tmp_path)
    try:
        await describe_when_loaded(service.port)
        owner = await enroll_clips(service.port, voice_clips(OWNER).enrol, name="Owner")
        yield service.port, owner["id"], tmp_path / "speakers.db"
    finally:
        assert service.stop() == 0, service.log()


def _stored(database: Path, profile_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(profile embedding, enrolment samples, learned samples) as stored on disk."""
    with sqlite3.connect(database) as db:
        [(blob,)] = db.execute("SELECT embedding FROM profiles WHERE id = ?", (profile_id,))
        rows = db.execute(
            "SELECT embedding, auto_learned FROM samples WHERE profile_id = ? ORDER BY id",
            (profile_id,),
        ).fetchall()
    vectors = [(np.frombuffer(b, "<f4"), bool(a)) for b, a in rows]
    enrolled = np.stack([v for v, auto in vectors if not auto])
    learned = np.array([v for v, auto in vectors if auto]).reshape(-1, 256)
    return np.frombuffer(blob, "<f4"), enrolled, learned


async def _learn(port: int, profile_id: str, clip: Path) -> str:
    answer = await request(
        port, "speaker-enroll", {"id": profile_id, "auto_learned": True}, wav_samples(clip)
    )
    if answer.type == "error":
        return str(answer.data["code"])
    assert answer.type == "speaker-enrolled", answer
    return "learned"


async def test_learning_keeps_the_owners_voice_and_refuses_other_voices(
    learning_speaker: tuple[int, str, Path],
) -> None:
    port, owner_id, database = learning_speaker
    before, _, _ = _stored(database, owner_id)
    # The owner's own new sentences are learned...
    owner_results = [await _learn(port, owner_id, c) for c in voice_clips(OWNER).test[:3]]
    assert owner_results.count("learned") >= 2, owner_results
    # ...other voices are not: the closest distinct espeak variants, a festival voice, a human.
    for impostor in (
        "espeak:en-us+m2",
        "espeak:en-us+Denis",
        "festival:kal_diphone",
        "human:cards",
    ):
        clips = voice_clips(impostor)
        results = [await _learn(port, owner_id, c) for c in (*clips.enrol, *clips.test)]
        assert set(results) <= {"sample_rejected", "audio_too_short"}, (impostor, results)
    after, enrolled, learned = _stored(database, owner_id)
    anchor = enrolled.mean(axis=0) / np.linalg.norm(enrolled.mean(axis=0))
    assert len(learned) == owner_results.count("learned")
    assert np.all(learned @ anchor >= ADAPT_THRESHOLD)
    assert float(after @ before) > 0.99


async def test_a_voice_drifting_step_by_step_cannot_drag_the_profile_along(
    learning_speaker: tuple[int, str, Path],
) -> None:
    """espeak m3 raised in pitch 5 steps at a time: each step is close to the previous one, so
    a profile that followed every sample it identified would walk off with it."""
    port, owner_id, database = learning_speaker
    steps = range(55, 100, 5)
    results = {}
    for pitch in steps:
        for sentence in TEST_SENTENCES[:3]:
            clip = espeak_wav(sentence, voice="en-us+m3", pitch=pitch)
            results[(pitch, sentence)] = await _learn(port, owner_id, clip)
    after, enrolled, learned = _stored(database, owner_id)
    anchor = enrolled.mean(axis=0) / np.linalg.norm(enrolled.mean(axis=0))
    assert np.all(learned @ anchor >= ADAPT_THRESHOLD)  # every learned sample near the enrolment
    assert all(results[(95, s)] == "sample_rejected" for s in TEST_SENTENCES[:3])
    assert float(after @ anchor) >= ADAPT_THRESHOLD
    far = await identify(port, wav_samples(espeak_wav(TEST_SENTENCES[3], "en-us+m3", pitch=95)))
    assert far["id"] is None, far  # the far end of the walk is still a stranger


async def test_a_guest_being_learned_takes_only_its_own_voice(
    learning_speaker: tuple[int, str, Path],
) -> None:
    """What the hub's guest learning does: an unknown voice starts a profile Kiwi learns."""
    port, owner_id, _ = learning_speaker
    guest = voice_clips("festival:ked_diphone")
    started = await enroll(
        port, wav_samples(guest.test[0]), name="Guest 1", priority=2, auto_learned=True
    )
    assert (started["ready"], started["samples_needed"]) == (False, 2)
    heard = await identify(port, wav_samples(guest.test[1]))
    assert (heard["decision"], heard["reason"]) == ("unknown", "incomplete_profile")
    assert heard["best"]["id"] == started["id"]
    assert heard["best"]["auto_learned"]
    for clip in (*voice_clips("espeak:en-us+Annie").test[:2], *voice_clips(OWNER).test[:2]):
        assert await _learn(port, started["id"], clip) == "sample_rejected"
    assert await _learn(port, started["id"], guest.test[1]) == "learned"
    assert await _learn(port, started["id"], guest.test[2]) == "learned"
    listed = await profiles(port)
    assert listed[started["id"]]["sample_count"] == 3
    named = await identify(port, wav_samples(guest.test[3]))
    assert (named["id"], named["decision"]) == (started["id"], "known")
    owner = await identify(port, wav_samples(voice_clips(OWNER).test[4]))
    assert owner["id"] == owner_id
