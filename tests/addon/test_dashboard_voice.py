"""The dashboard's voice side in a real browser: a spoken turn through the web microphone and its
answer's audio, interrupting, and granting an approval from the page.

Real processes: kiwi-stt (tiny random Whisper), kiwi-tts (tiny piper voice), kiwi-wake
(openWakeWord, hey_jarvis), kiwi-speaker and kiwi-hub, with the local Home Assistant and Anthropic
servers. Chromium's fake microphone plays "hey jarvis" and a command (espeak) once, as soon as the
page opens the microphone. The random Whisper model's transcript is never asserted on.
"""

from __future__ import annotations

import json
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.dashboard_browser import (
    CHROMIUM,
    DOCS_IMAGE,
    chromium_args,
    ingress_proxy,
    screenshot_path,
    update_docs_image,
)
from tests.support.fake_anthropic import ScriptedReply, ToolUse, echo_reply
from tests.support.hub_process import HubProcess
from tests.support.pipeline_stack import PipelineStack, stack_fixture
from tests.support.speech import espeak_wav, wav_pcm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

UI_TIMEOUT_MS = 30_000  # a spoken turn on two shared cores takes a few seconds
PCM_BYTES_PER_SECOND = 16_000 * 2
UNLOCK = ToolUse(
    name="call_home_assistant_service",
    input={"domain": "lock", "service": "unlock", "entity_id": "lock.front_door"},
)


stack = stack_fixture(
    services=("stt", "tts", "wake", "speaker"),
    env={"KIWI_APPROVALS_VIA_API": "true"},  # the dashboard is the owner's approval channel
)


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'hey jarvis', then a command: what chromium's fake microphone plays."""
    pcm = wav_pcm(espeak_wav("hey jarvis")) + wav_pcm(espeak_wav("what is the weather like today"))
    path = tmp_path_factory.mktemp("microphone") / "hey-jarvis-command.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(pcm)
    return path


@pytest.fixture(scope="module")
def browser(microphone_wav: Path) -> Iterator[Browser]:
    expect.set_options(timeout=UI_TIMEOUT_MS)  # set_default_timeout covers actions, not expect
    with sync_playwright() as playwright:
        yield playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=chromium_args(microphone_wav, loop_audio=False),  # the words are said once
        )


@pytest.fixture(scope="module")
def page(browser: Browser, hub: HubProcess) -> Iterator[Page]:
    errors: list[str] = []
    with ingress_proxy(hub.base_url) as proxy:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        opened = context.new_page()
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.goto(f"{proxy.url}?token={hub.token}")
        expect(opened.locator("body")).to_have_attribute("data-ready", "true")
        yield opened
        context.close()
    assert errors == []


def api(hub: HubProcess, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**hub.auth_headers, "Content-Type": "application/json"}
    request = urllib.request.Request(hub.base_url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def events(hub: HubProcess, name: str) -> list[dict[str, Any]]:
    history = api(hub, "GET", f"/api/events/history?types={name}&limit=1000")
    return [frame["data"] for frame in history["events"]]


def audio_numbers(page: Page) -> tuple[int, float]:
    """(bytes of answer audio the page received, seconds its player has played)."""
    data = page.locator("#mic-audio").evaluate(
        "node => [node.dataset.receivedBytes, node.dataset.playedSeconds]"
    )
    return int(data[0]), float(data[1])


def test_spoken_turn_shows_live_and_its_audio_plays(page: Page, hub: HubProcess) -> None:
    page.get_by_role("button", name="Start microphone").click()
    expect(page.get_by_role("button", name="Stop microphone")).to_be_enabled()
    expect(page.locator("#mic-status")).to_contain_text("hey jarvis")  # from the hub's hello_ack

    # The whole turn, as it happens: wake word, transcript, speaker, the streamed answer, speech.
    expect(page.locator("#turn-wake")).to_contain_text("hey_jarvis")
    expect(page.locator("#turn-transcript")).to_contain_text("[en]")
    expect(page.locator("#turn-speaker")).to_contain_text("Unknown")  # no profile enrolled
    expect(page.locator("#turn-answer")).to_contain_text("Hello from the fake Claude.")
    expect(page.locator("#turn-tts")).to_contain_text("Finished")
    expect(page.locator("#mic-status")).to_contain_text("Kiwi answered (claude)")
    expect(page.locator("#latency-chart")).to_have_attribute("data-turns", "1")
    expect(page.locator("#latency-legend")).to_contain_text("first audio")

    # The answer's audio came back to this page, all of it, and its player played it.
    spoken = events(hub, "TTS_FINISHED")
    assert len(spoken) == 1
    expected_bytes = spoken[0]["audio_seconds"] * PCM_BYTES_PER_SECOND
    page.wait_for_function(
        "want => Number(document.querySelector('#mic-audio').dataset.receivedBytes) >= want",
        arg=expected_bytes - 64,
    )
    page.wait_for_function(
        "want => Number(document.querySelector('#mic-audio').dataset.playedSeconds) >= want",
        arg=spoken[0]["audio_seconds"] * 0.9,
    )
    received, _played = audio_numbers(page)
    assert abs(received - expected_bytes) <= 64  # rounding of audio_seconds, nothing extra
    # The level meter moved while the words were said.
    assert float(page.locator("#mic-level").get_attribute("data-peak") or 0) > 0.05
    turn = events(hub, "TURN_METRICS")[0]
    expect(page.locator("#turn-id")).to_contain_text(turn["turn_id"])
    expect(page.locator("#assistant-state")).to_have_attribute("data-state", "IDLE")
    page.screenshot(path=screenshot_path("voice-turn"), full_page=True)
    if update_docs_image():  # the README's picture: the first screen of the live view
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=DOCS_IMAGE)


def test_interrupt_silences_the_answer(page: Page, stack: PipelineStack, hub: HubProcess) -> None:
    assert stack.claude is not None
    stack.claude.hold_after_tokens = 5  # Claude stops after its first sentence until released
    try:
        page.get_by_label("Type instead").fill("tell me a long story")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#assistant-state")).to_have_attribute("data-state", "SPEAKING")
        page.get_by_role("button", name="Interrupt").click()
        expect(page.locator("#mic-status")).to_contain_text("Kiwi was interrupted.")
        received_at_interrupt, _ = audio_numbers(page)
    finally:
        stack.claude.hold_after_tokens = None
        stack.claude.release()
    expect(page.locator("#turn-tts")).to_contain_text("Interrupted")
    expect(page.locator("#assistant-state")).to_have_attribute("data-state", "IDLE")
    assert events(hub, "TTS_FINISHED")[-1]["interrupted"] is True
    # Nothing of the interrupted turn is played later (the page drops it even if it arrives).
    page.get_by_label("Type instead").fill("are you there")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#turn-answer")).to_contain_text("You said: are you there.")
    expect(page.locator("#mic-status")).to_contain_text("Kiwi answered (claude)")
    expect(page.locator("#turn-tts")).to_contain_text("Finished")
    # What the page took in since the interrupt is exactly the new turn's audio.
    new_turn_bytes = events(hub, "TTS_FINISHED")[-1]["audio_seconds"] * PCM_BYTES_PER_SECOND
    page.wait_for_function(
        "want => Number(document.querySelector('#mic-audio').dataset.receivedBytes) >= want",
        arg=received_at_interrupt + new_turn_bytes - 64,
    )
    assert abs(audio_numbers(page)[0] - received_at_interrupt - new_turn_bytes) <= 64


def test_push_to_talk_from_the_keyboard(page: Page) -> None:
    page.get_by_role("radio", name="Push to talk").check()
    talk = page.get_by_role("button", name="Hold to talk")
    expect(talk).to_be_enabled()
    page.wait_for_function(
        "() => window.kiwiDashboard.microphone.session.ack.mode === 'push_to_talk'"
    )
    talk.focus()
    page.keyboard.down("Space")
    expect(talk).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#mic-status")).to_contain_text("Listening…")  # the hub's listening frame
    page.keyboard.up("Space")
    expect(talk).to_have_attribute("aria-pressed", "false")
    # The (silent) utterance is a turn of its own; what it made of silence is the model's business.
    expect(page.locator("#mic-status")).to_contain_text("Kiwi answered (")
    page.get_by_role("radio", name="Wake word").check()
    expect(talk).to_be_disabled()
    page.wait_for_function(
        "() => window.kiwiDashboard.microphone.session.ack.mode === 'continuous'"
    )


def test_an_approval_is_granted_from_the_page(
    page: Page, stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.claude is not None
    assert stack.homeassistant is not None

    def unlock_then_confirm(request: dict[str, Any]) -> ScriptedReply:
        last = request["messages"][-1]["content"]
        answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
        return (
            ScriptedReply("The front door is unlocked.")
            if answered
            else ScriptedReply(tool_uses=(UNLOCK,))
        )

    stack.claude.reply = unlock_then_confirm
    try:
        page.get_by_label("Type instead").fill("please unlock the front door")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#approvals-count")).to_have_text("1")
        expect(page.locator("#assistant-state")).to_have_attribute("data-state", "WAITING_APPROVAL")
        page.get_by_role("tab", name="Approvals").click()
        request = page.locator("#approvals li")
        expect(request).to_contain_text("The assistant wants to run")
        expect(request).to_contain_text("lock.front_door")
        pending = api(hub, "GET", "/api/approvals")["approvals"]
        assert [a["kind"] for a in pending] == ["exec"]
        page.screenshot(path=screenshot_path("approvals"), full_page=True)

        request.get_by_role("button", name="Approve").click()
        expect(page.locator("#approvals li")).to_have_count(0)
        expect(page.locator("#approvals-count")).to_be_hidden()
        expect(page.locator("#approvals-status")).to_contain_text("Approved")
        assert api(hub, "GET", "/api/approvals")["approvals"] == []
        resolved = events(hub, "EXEC_APPROVAL_RESOLVED")
        assert [(r["request_id"], r["approved"]) for r in resolved] == [
            (pending[0]["request_id"], True)
        ]
        page.get_by_role("tab", name="Live").click()
        expect(page.locator("#turn-answer")).to_contain_text("The front door is unlocked.")
        calls = [(c["domain"], c["service"]) for c in stack.homeassistant.service_calls]
        assert calls == [("lock", "unlock")]
    finally:
        stack.claude.reply = echo_reply
