"""Routing a turn: Home Assistant's conversation API first, then Claude with the active soul.

Real processes: kiwi-hub, kiwi-tts (offline piper voice), a local Home Assistant conversation
API and a local Anthropic Messages API that the real `anthropic` client streams from. Turns
are typed (`text_input` on /api/audio, POST /api/conversation) so the text is known; the
audio path is covered by test_audio_pipeline_e2e.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from tests.support.fake_homeassistant import NOT_UNDERSTOOD
from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import AudioClient, EventLog, is_subsequence
from tests.support.pipeline_stack import PipelineStack, stack_fixture, start_stack

pytestmark = pytest.mark.timeout(60)
COMEDIAN_PROMPT_START = "You are Kiwi in stand-up mode"
TEXT_ONLY = {"output_format": "none"}


stack = stack_fixture(services=("tts",))


async def _ask(client: AudioClient, text: str) -> dict[str, object]:
    """Type `text`; return the turn's end frame."""
    before = len(client.frames("end"))
    await client.send({"type": "text_input", "text": text})
    await client.wait(lambda r: len(client.frames("end")) > before)
    return client.frames("end")[before]


async def test_home_assistant_handles_a_command(stack: PipelineStack, hub: HubProcess) -> None:
    assert stack.homeassistant is not None
    assert stack.claude is not None
    claude_requests = len(stack.claude.requests)
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, hub.ws_url("/api/events")) as events,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
    ):
        end = await _ask(client, "turn on the kitchen light")
        metrics = await events.wait("TURN_METRICS", turn_id=end["turn_id"])
        async with session.get(f"{hub.base_url}/api/status", headers=hub.auth_headers) as answer:
            status = await answer.json()

    assert end["route"] == "homeassistant"
    assert end["text"] == "Turned on the kitchen light"
    assert stack.homeassistant.requests[-1] == {
        "text": "turn on the kitchen light",
        "language": "en",
    }
    assert len(stack.claude.requests) == claude_requests  # HA handled it: Claude never asked
    assert "LLM_TOKEN" not in events.names()
    assert is_subsequence(
        [
            "STATE_CHANGED",
            "STATE_CHANGED",
            "TTS_STARTED",
            "TTS_FINISHED",
            "STATE_CHANGED",
            "TURN_METRICS",
        ],
        events.names(),
    )
    states = [(e["old"], e["new"]) for e in events.of("STATE_CHANGED")]
    assert states == [("IDLE", "PROCESSING"), ("PROCESSING", "SPEAKING"), ("SPEAKING", "IDLE")]
    assert events.of("TTS_STARTED")[0]["text"] == "Turned on the kitchen light"
    assert events.of("TTS_FINISHED")[0]["interrupted"] is False
    # The spoken answer came back on this socket, between its audio_start and its end.
    start = client.index_of("audio_start", turn_id=end["turn_id"])
    finish = client.index_of("end", turn_id=end["turn_id"])
    audio = [r for r in client.received if r.audio is not None]
    assert audio
    assert all(start < r.index < finish for r in audio)
    assert metrics["data"]["route"] == "homeassistant"
    assert metrics["data"]["llm_first_token_ms"] is None
    assert metrics["data"]["first_audio_ms"] > 0
    assert status["last_turn_metrics"] == metrics["data"]


async def test_claude_answers_with_the_active_souls_model_and_prompt(
    stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.claude is not None
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        async with session.post(f"{hub.base_url}/api/soul", json={"soul": "comedian"}) as answer:
            assert answer.status == 200
            soul = await answer.json()
        try:
            async with (
                EventLog.connect(session, hub.ws_url("/api/events")) as events,
                AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
            ):
                # The reply stops after its first sentence until the test has seen that
                # sentence spoken: speaking must not wait for the whole answer.
                stack.claude.hold_after_tokens = 5
                await client.send({"type": "text_input", "text": "tell me something funny"})
                await events.wait("TTS_STARTED")
                complete_before_speaking = events.of("LLM_COMPLETE")
                stack.claude.release()
                end = await client.wait_frame("end")
                await events.wait("TURN_METRICS", turn_id=end["turn_id"])
        finally:
            stack.claude.hold_after_tokens = None
            async with session.post(f"{hub.base_url}/api/soul", json={"soul": "default"}):
                pass

    request = stack.claude.last_request()
    assert request["model"] == soul["model"] == "claude-haiku-4-5"
    assert request["system"].startswith(COMEDIAN_PROMPT_START)
    assert request["stream"] is True
    assert request["messages"][-1] == {"role": "user", "content": "tell me something funny"}
    assert stack.homeassistant is not None
    assert stack.homeassistant.requests[-1]["text"] == "tell me something funny"  # asked first

    reply = "Hello from the fake Claude. You said: tell me something funny."
    assert end == {
        "type": "end",
        "turn_id": end["turn_id"],
        "route": "claude",
        "text": reply,
        "interrupted": False,
        "model": "claude-haiku-4-5",
    }
    tokens = [e["token"] for e in events.of("LLM_TOKEN")]
    assert len(tokens) > 1
    assert "".join(tokens) == reply
    assert events.of("LLM_COMPLETE") == [{"text": reply, "model": "claude-haiku-4-5"}]
    assert "".join(f["text"] for f in client.frames("bot_delta")) == reply
    # TTS-aligned text: one frame per sentence, in order.
    assert [f["text"] for f in client.frames("bot_text")] == [
        "Hello from the fake Claude.",
        "You said: tell me something funny.",
    ]
    assert complete_before_speaking == []
    assert events.of("TTS_STARTED")[0]["text"] == "Hello from the fake Claude."


async def test_each_speaker_keeps_its_own_context_until_reset(
    stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.claude is not None
    async with (
        aiohttp.ClientSession(headers=hub.auth_headers) as session,
        # Text only: these turns need no audio, so nothing waits for playback.
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello=TEXT_ONLY) as ann,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello=TEXT_ONLY) as bob,
    ):
        await _ask(ann, "remember the number seven")
        await _ask(ann, "which number was it")
        ann_second = stack.claude.last_request()["messages"]
        await _ask(bob, "which number was it")
        bob_first = stack.claude.last_request()["messages"]
        async with EventLog.connect(session, hub.ws_url("/api/events")) as events:
            async with session.post(f"{hub.base_url}/api/reset-context") as answer:
                assert await answer.json() == {"status": "context_reset"}
            await events.wait("CONTEXT_RESET")
        await _ask(ann, "which number was it")
        ann_after_reset = stack.claude.last_request()["messages"]

    assert [m["role"] for m in ann_second] == ["user", "assistant", "user"]
    assert ann_second[0]["content"] == "remember the number seven"
    assert ann_second[1]["content"].endswith("You said: remember the number seven.")
    assert bob_first == [{"role": "user", "content": "which number was it"}]
    assert ann_after_reset == [{"role": "user", "content": "which number was it"}]


async def test_conversation_api_answers_as_json_sse_and_ndjson(
    stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.claude is not None
    url = f"{hub.base_url}/api/conversation"
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        async with session.post(url, json={"text": "turn off the porch light"}) as answer:
            assert answer.status == 200
            home = await answer.json()
        async with session.post(url, json={"text": "tell me a story", "language": "en"}) as answer:
            first = await answer.json()
        follow_up = {"text": "and then?", "conversation_id": first["conversation_id"]}
        async with session.post(
            url, json=follow_up, headers={"Accept": "text/event-stream"}
        ) as answer:
            assert answer.headers["Content-Type"].startswith("text/event-stream")
            sse = await answer.text()
        history = stack.claude.last_request()["messages"]
        async with session.post(
            url, json={"text": "one more"}, headers={"Accept": "application/x-ndjson"}
        ) as answer:
            ndjson = [json.loads(line) for line in (await answer.text()).splitlines()]
        async with session.post(url, json={"text": ""}) as answer:
            empty = answer.status, await answer.json()

    assert home["route"] == "homeassistant"
    assert home["response"] == "Turned off the porch light"
    assert home["response_type"] == "action_done"
    assert home["model"] is None
    assert home["conversation_id"].startswith("conv_")
    assert first["route"] == "claude"
    assert first["model"] == "claude-sonnet-4-5"
    assert first["response"] == "Hello from the fake Claude. You said: tell me a story."

    messages = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1][6:]))
        for block in sse.strip().split("\n\n")
    ]
    kinds = [kind for kind, _ in messages]
    assert kinds[-1] == "done"
    assert set(kinds[:-1]) == {"delta"}
    assert len(kinds) > 2
    done = messages[-1][1]
    assert done["conversation_id"] == first["conversation_id"]
    assert "".join(data["text"] for kind, data in messages[:-1]) == done["response"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]

    assert [m["type"] for m in ndjson][-1] == "done"
    assert ndjson[-1]["route"] == "claude"
    assert "".join(m["text"] for m in ndjson[:-1]) == ndjson[-1]["response"]
    assert empty[0] == 400
    assert empty[1]["error"]["field"] == "text"


async def test_home_assistant_down_falls_back_to_claude(
    stack: PipelineStack, hub: HubProcess
) -> None:
    assert stack.homeassistant is not None
    stack.homeassistant.fail_with_status = 500
    try:
        async with (
            aiohttp.ClientSession() as session,
            EventLog.connect(session, hub.ws_url("/api/events")) as events,
            AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
        ):
            end = await _ask(client, "turn on the lamp")
            await events.wait("TURN_METRICS", turn_id=end["turn_id"])
    finally:
        stack.homeassistant.fail_with_status = None

    assert end["route"] == "claude"
    errors = events.of("ERROR")
    assert errors == [
        {
            "message": "Home Assistant answered HTTP 500",
            "source": "homeassistant",
            "code": "homeassistant_error",
            "turn_id": end["turn_id"],
        }
    ]


async def test_without_an_api_key_home_assistant_answers_everything(
    offline_models_dir: Path, tmp_path: Path, stack: PipelineStack
) -> None:
    """Home Assistant answers what it can; a question it cannot handle gets its answer and
    the setting that would answer it (an Anthropic API key), in words and in an ERROR."""
    no_claude = start_stack(
        offline_models_dir,
        tmp_path,
        services=(),
        claude=False,
        shared={"tts": stack.services["tts"]},
    )
    try:
        hub = no_claude.hub
        assert hub is not None
        assert no_claude.homeassistant is not None
        async with (
            aiohttp.ClientSession(headers=hub.auth_headers) as session,
            EventLog.connect(session, hub.ws_url("/api/events")) as events,
            AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
        ):
            end = await _ask(client, "tell me a joke")
            await events.wait("TURN_METRICS", turn_id=end["turn_id"])
            async with session.post(
                f"{hub.base_url}/api/conversation", json={"text": "write a poem"}
            ) as answer:
                conversation = await answer.json()
            command = await _ask(client, "turn on the kitchen light")
    finally:
        no_claude.stop()

    assert end["route"] == "homeassistant"
    assert str(end["text"]).startswith(NOT_UNDERSTOOD)
    assert "open questions need an Anthropic API key" in str(end["text"])
    assert conversation["route"] == "homeassistant"
    assert "open questions need an Anthropic API key" in conversation["response"]
    assert conversation["response_type"] == "error"
    error = events.of("ERROR")[0]
    assert (error["code"], error["setting"], error["turn_id"]) == (
        "llm_not_configured",
        "anthropic_api_key",
        end["turn_id"],
    )
    # A command Home Assistant handled needs no key: no hint.
    assert command["text"] == "Turned on the kitchen light"


async def test_with_nothing_to_answer_kiwi_says_what_to_set_up(
    offline_models_dir: Path, tmp_path: Path, stack: PipelineStack
) -> None:
    """A fresh `make run`: no Home Assistant, no Anthropic key. The turn still gets a spoken
    answer, and it (and the ERROR event) says what to configure."""
    bare = start_stack(
        offline_models_dir,
        tmp_path,
        services=(),
        claude=False,
        homeassistant=False,
        shared={"tts": stack.services["tts"]},
    )
    try:
        hub = bare.hub
        assert hub is not None
        async with (
            aiohttp.ClientSession(headers=hub.auth_headers) as session,
            EventLog.connect(session, hub.ws_url("/api/events")) as events,
            AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client,
        ):
            end = await _ask(client, "turn on the kitchen light")
            await events.wait("TURN_METRICS", turn_id=end["turn_id"])
    finally:
        bare.stop()

    assert end["route"] == "apology"
    assert "Connect me to Home Assistant" in str(end["text"])
    assert "Anthropic API key" in str(end["text"])
    assert client.audio_bytes() > 0  # said out loud
    assert client.index_of("audio_start") < client.index_of("end")
    [error] = events.of("ERROR")
    assert (error["source"], error["code"], error["turn_id"]) == ("hub", "no_route", end["turn_id"])
    assert error["setting"] == "homeassistant_token"
    for setting in ("homeassistant_url", "KIWI_HA_URL", "KIWI_HA_TOKEN", "ANTHROPIC_API_KEY"):
        assert setting in error["message"]
    assert client.frames("error", turn_id=end["turn_id"])[0]["code"] == "no_route"
