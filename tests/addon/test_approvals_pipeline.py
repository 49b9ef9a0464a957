"""A guest's voice command waits for the owner: the hub's real parts in this process (pipeline,
policy, approval gate, Telegram bot), real kiwi-speaker and kiwi-tts processes, the local
Telegram Bot API and Home Assistant servers.

Two espeak voices are enrolled: the owner (priority 0) and a guest (priority 2). A turn is the
voice's audio (identified by kiwi-speaker) with its transcript already known, as the text wake
engine hands it over, so the command is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from wyoming.audio import AudioChunk

from kiwi_voice.hub.approvals.runtime import ApprovalsRuntime
from kiwi_voice.hub.events import PublishedEvent
from kiwi_voice.hub.options import HubOptions
from kiwi_voice.hub.pipeline.engine import new_turn_id
from kiwi_voice.hub.pipeline.frames import TurnFrame
from kiwi_voice.hub.pipeline.turn import TurnRequest
from kiwi_voice.hub.speakers import PcmAudio, SpeakersClient
from kiwi_voice.hub.voice.runtime import PipelineRuntime
from kiwi_voice.hub.wiring import build_hub
from tests.support.fake_homeassistant import FakeHomeAssistant
from tests.support.fake_telegram import FakeTelegram
from tests.support.pipeline_stack import service_starters, start_services
from tests.support.ports import free_port
from tests.support.speech import espeak_wav, wav_pcm
from tests.support.voices import ENROL_SENTENCES
from tests.support.waiting import until
from tests.support.wyoming_process import ServiceProcess

pytestmark = pytest.mark.timeout(60)
OWNER_CHAT = 880_001
OWNER_VOICE, GUEST_VOICE = "en-us+m3", "en-us+f2"
COMMAND = "turn on the kitchen light"


def voice(text: str, espeak_voice: str) -> bytes:
    return wav_pcm(espeak_wav(text, voice=espeak_voice))


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, offline_models_dir: Path
) -> Iterator[dict[str, ServiceProcess]]:
    root = tmp_path_factory.mktemp("approvals-pipeline")
    started = start_services(service_starters(offline_models_dir, root), ("speaker", "tts"))
    try:
        asyncio.run(_enroll(started["speaker"].uri))
        yield started
    finally:
        for service in started.values():
            service.stop()


async def _enroll(uri: str) -> None:
    """Three samples per voice: kiwi-speaker names a voice once it has that much speech."""
    client = SpeakersClient(uri)
    for name, espeak_voice, priority in (("Olivia", OWNER_VOICE, 0), ("Gus", GUEST_VOICE, 2)):
        profile_id = None
        for text in ENROL_SENTENCES:
            audio = PcmAudio(rate=16_000, width=2, channels=1, data=voice(text, espeak_voice))
            enrolled = await client.enroll(audio, name, priority, profile_id)
            profile_id = enrolled["id"]
        assert enrolled["ready"]


@pytest.fixture(scope="module")
def homeassistant() -> Iterator[FakeHomeAssistant]:
    fake = FakeHomeAssistant()
    fake.start()
    yield fake
    fake.stop()


class RecordingSink:
    """A turn source that keeps the frames it is sent and ignores the audio."""

    label = "test:sink"

    def __init__(self) -> None:
        self.frames: list[TurnFrame] = []

    async def send_frame(self, frame: TurnFrame) -> None:
        self.frames.append(frame)

    async def play(self, turn_id: str, chunk: AudioChunk) -> None:
        return None

    async def stop_playback(self, turn_id: str) -> None:
        return None

    async def wait_played(self, turn_id: str) -> None:
        return None

    def end_of(self, turn_id: str) -> dict[str, Any] | None:
        ends = [f for f in self.frames if f["type"] == "end" and f["turn_id"] == turn_id]
        return dict(ends[0]) if ends else None


@dataclass
class Hub:
    runtime: PipelineRuntime
    approvals: ApprovalsRuntime
    sink: RecordingSink = field(default_factory=RecordingSink)
    events: list[PublishedEvent] = field(default_factory=list)

    def say(self, text: str, espeak_voice: str) -> str:
        """Submit a voice turn; its turn id."""
        request = TurnRequest(
            turn_id=new_turn_id(),
            sink=self.sink,
            trigger="wake_word",
            audio=voice(text, espeak_voice),
            text=text,
        )
        self.runtime.pipeline.submit(request)
        return request.turn_id

    async def end_of(self, turn_id: str) -> dict[str, Any]:
        return await until(lambda: self.sink.end_of(turn_id), f"the end of {turn_id}", timeout_s=20)

    async def event(self, name: str) -> dict[str, Any]:
        found = await until(lambda: [e for e in self.events if e.event == name], name, timeout_s=20)
        return dict(found[0].data)

    def payloads(self, name: str) -> list[dict[str, Any]]:
        return [dict(e.data) for e in self.events if e.event == name]


@pytest.fixture
async def hub(
    tmp_path: Path,
    services: dict[str, ServiceProcess],
    telegram: FakeTelegram,
    homeassistant: FakeHomeAssistant,
) -> AsyncIterator[Hub]:
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    options = HubOptions(
        port=0,
        data_dir=tmp_path,
        stt_uri=nowhere,
        wake_uri=nowhere,
        tts_uri=services["tts"].uri,
        speaker_uri=services["speaker"].uri,
    )
    environ = {
        "KIWI_HOST_AUDIO": "off",
        "KIWI_HA_URL": homeassistant.url,
        "KIWI_HA_TOKEN": homeassistant.token,
        "KIWI_GUEST_POLICY": "approve",
        "KIWI_TELEGRAM_BOT_TOKEN": telegram.token,
        "KIWI_TELEGRAM_CHAT_ID": str(OWNER_CHAT),
        "KIWI_TELEGRAM_API_URL": telegram.url,
        "KIWI_TELEGRAM_POLL_TIMEOUT": "1",
    }
    wired = build_hub(options, environ)  # the wiring kiwi-hub serves
    runner = web.AppRunner(wired.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    started = Hub(wired.pipeline, wired.approvals)
    wired.context.bus.listen(started.events.append)
    assert wired.approvals.telegram is not None
    await asyncio.wait_for(wired.approvals.telegram.wait_connected(), 10)
    try:
        yield started
    finally:
        await runner.cleanup()


async def prompt_of(telegram: FakeTelegram, request_id: str) -> dict[str, Any]:
    found = await telegram.until(lambda f: [m for m in f.sent if request_id in m["text"]])
    return found[0]


def press(telegram: FakeTelegram, message: dict[str, Any], label: str) -> None:
    row = message["reply_markup"]["inline_keyboard"][0]
    data = next(b["callback_data"] for b in row if b["text"] == label)
    telegram.press(data, chat_id=OWNER_CHAT, user_id=OWNER_CHAT, message=message)


async def test_guest_command_runs_once_the_owner_approves(
    hub: Hub, telegram: FakeTelegram, homeassistant: FakeHomeAssistant
) -> None:
    asked_before = len(homeassistant.texts())
    turn = hub.say(COMMAND, GUEST_VOICE)
    requested = await hub.event("APPROVAL_REQUESTED")
    assert (requested["speaker"], requested["command"]) == ("Gus", COMMAND)
    assert requested["request_id"].startswith("apr_")
    assert hub.runtime.context.state.state == "WAITING_APPROVAL"
    assert len(homeassistant.texts()) == asked_before  # not before the owner says yes

    press(telegram, await prompt_of(telegram, requested["request_id"]), "✅ Approve")
    end = await hub.end_of(turn)

    assert (end["route"], end["text"]) == ("homeassistant", "Turned on the kitchen light")
    assert homeassistant.texts()[asked_before:] == [COMMAND]
    identified = hub.payloads("SPEAKER_IDENTIFIED")[0]
    assert (identified["name"], identified["priority"]) == ("Gus", 2)
    assert hub.payloads("APPROVAL_RESOLVED") == [
        {
            "approved": True,
            "speaker": "Gus",
            "request_id": requested["request_id"],
            "decided_by": "telegram",
        }
    ]
    states = [e["new"] for e in hub.payloads("STATE_CHANGED")]
    assert states.index("WAITING_APPROVAL") < states.index("SPEAKING")


async def test_declined_command_is_refused_aloud(
    hub: Hub, telegram: FakeTelegram, homeassistant: FakeHomeAssistant
) -> None:
    asked_before = len(homeassistant.texts())
    turn = hub.say("open the garage door", GUEST_VOICE)
    requested = await hub.event("APPROVAL_REQUESTED")
    press(telegram, await prompt_of(telegram, requested["request_id"]), "❌ Deny")
    end = await hub.end_of(turn)

    assert (end["route"], end["text"]) == ("refusal", "Sorry Gus, the owner declined that.")
    assert len(homeassistant.texts()) == asked_before
    assert hub.payloads("APPROVAL_RESOLVED")[0]["approved"] is False
    assert hub.payloads("TTS_STARTED")[0]["text"] == "Sorry Gus, the owner declined that."


async def test_unanswered_command_is_refused_after_the_timeout(hub: Hub) -> None:
    hub.runtime.context.settings.update({"approval_timeout_seconds": 0.5})
    turn = hub.say(COMMAND, GUEST_VOICE)
    end = await hub.end_of(turn)
    assert end["route"] == "refusal"
    assert end["text"] == "Sorry Gus, the owner did not answer in time, so I did not do that."
    assert hub.payloads("APPROVAL_RESOLVED")[0]["decided_by"] == "timeout"


async def test_owner_answers_by_voice(hub: Hub, homeassistant: FakeHomeAssistant) -> None:
    asked_before = len(homeassistant.texts())
    guest_turn = hub.say(COMMAND, GUEST_VOICE)
    requested = await hub.event("APPROVAL_REQUESTED")
    # The owner's wake word interrupts the waiting turn; the request stays pending.
    await hub.runtime.pipeline.wake(hub.sink, "wake_word")
    assert (await hub.end_of(guest_turn))["interrupted"] is True
    assert hub.runtime.context.state.state == "LISTENING"
    owner_turn = hub.say("Yes, go ahead, I approve it.", OWNER_VOICE)
    end = await hub.end_of(owner_turn)

    assert end["route"] == "approval"
    assert end["text"] == "Okay, approved. Turned on the kitchen light"
    assert homeassistant.texts()[asked_before:] == [COMMAND]
    assert hub.payloads("APPROVAL_RESOLVED") == [
        {
            "approved": True,
            "speaker": "Gus",
            "request_id": requested["request_id"],
            "decided_by": "voice",
        }
    ]


async def test_only_the_owners_voice_answers(hub: Hub) -> None:
    hub.say(COMMAND, GUEST_VOICE)
    first = await hub.event("APPROVAL_REQUESTED")
    await hub.runtime.pipeline.wake(hub.sink, "wake_word")
    # The guest's own yes is a request of the guest's, not an answer.
    hub.say("Yes, go ahead, I approve it.", GUEST_VOICE)
    requests = await until(
        lambda: hub.payloads("APPROVAL_REQUESTED")[1:], "a second APPROVAL_REQUESTED", timeout_s=20
    )
    assert requests[0]["command"] == "Yes, go ahead, I approve it."
    pending = [a.request_id for a in hub.approvals.registry.pending()]
    assert pending == [first["request_id"], requests[0]["request_id"]]
    assert hub.payloads("APPROVAL_RESOLVED") == []


async def test_unknown_voice_is_learned_as_a_guest_after_enough_samples(hub: Hub) -> None:
    settings = hub.runtime.context.settings
    settings.update({"auto_learn_guests": True, "auto_learn_samples": 3})
    newcomer = "en-us+klatt"  # enrolled nowhere, unlike the enrolled voices
    sentences = (
        "Good evening, what a lovely house you have here.",
        "I am visiting for the weekend with my family.",
        "Could you tell me what the weather will be tomorrow?",
    )
    learner = hub.approvals.speakers
    names = []
    for sentence in sentences:
        audio = PcmAudio(rate=16_000, width=2, channels=1, data=voice(sentence, newcomer))
        names.append((await learner.identify(audio))["name"])
    # Two samples: still unknown to the policy; the third makes the voice a guest.
    assert names == [None, None, "Guest 1"]
    client = SpeakersClient(hub.runtime.context.options.speaker_uri)
    learned = [p for p in await client.list_profiles() if p["auto_learned"]]
    assert [(p["name"], p["priority"], p["sample_count"]) for p in learned] == [("Guest 1", 2, 3)]
    try:
        hub.say(COMMAND, newcomer)
        requested = await hub.event("APPROVAL_REQUESTED")
        assert (requested["speaker"], requested["command"]) == ("Guest 1", COMMAND)
    finally:
        await client.delete(learned[0]["id"])
