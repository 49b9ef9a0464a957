"""kiwi-tts speaks with piper's joe: real audio of a plausible length, and a reply's first sentence
is heard while the rest of the answer is still being written (so before it is synthesised)."""

from __future__ import annotations

import aiohttp

from tests.support.fake_anthropic import FakeAnthropic, ScriptedReply, tokens
from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import AudioClient
from tests.support.real_speech import normalize, rms, synthesize, transcribe, wer
from tests.support.waiting import until
from tests.support.wyoming_process import ServiceProcess

RealServices = dict[str, ServiceProcess]
SENTENCE = "Turn on the kitchen lights and set the thermostat to twenty one degrees."
ANSWER = (
    "It will be sunny in the morning.",
    "Clouds come in around noon.",
    "Take an umbrella if you go out in the evening.",
)
# Speech runs at roughly two to four words a second; joe at its default pace sits inside.
WORDS_PER_SECOND = (1.5, 5.0)


async def test_joe_speaks_audibly_for_a_plausible_time_and_says_the_words(
    real_services: RealServices, socket_enabled: None
) -> None:
    pcm, rate = await synthesize(real_services["tts"].uri, SENTENCE)
    seconds = len(pcm) / (2 * rate)
    words = len(normalize(SENTENCE))
    assert rate == 22050  # en_US-joe-medium's own rate
    assert WORDS_PER_SECOND[0] <= words / seconds <= WORDS_PER_SECOND[1], seconds
    assert rms(pcm) > 500  # speech, not silence or a click (full scale is 32768)
    # What joe said is what was asked: kiwi-stt hears the sentence back.
    heard = await transcribe(real_services["stt"].uri, pcm, rate=rate)
    assert wer([(SENTENCE, heard)]) <= 0.10, heard


async def test_the_first_sentence_is_heard_before_the_rest_is_written(
    real_hub: HubProcess, real_claude: FakeAnthropic, socket_enabled: None
) -> None:
    """Claude stops after the first sentence until the test saw its audio arrive: the audio of
    sentence one cannot have waited for sentences two and three."""
    real_claude.reply = lambda request: ScriptedReply(" ".join(ANSWER))
    real_claude.hold_after_tokens = len(tokens(ANSWER[0] + " "))
    try:
        async with (
            aiohttp.ClientSession() as session,
            AudioClient.connect(session, real_hub.ws_url("/api/audio"), hello={}) as client,
        ):
            await client.send({"type": "text_input", "text": "what will the weather be like?"})
            first_audio = await client.wait(lambda r: r.audio is not None, wait_s=120)
            written_so_far = [f["text"] for f in client.frames("bot_text")]
            # The stream is held right after sentence one's last token: release it there.
            await until(lambda: real_claude.held > 0, "Claude's stream to be held")
            real_claude.release()
            end = await client.wait_frame("end", wait_s=180)
    finally:
        real_claude.hold_after_tokens = None
        real_claude.release()

    assert written_so_far == [ANSWER[0]]
    assert [f["text"] for f in client.frames("bot_text")] == list(ANSWER)
    assert end["route"] == "claude"
    assert end["text"] == " ".join(ANSWER)
    second = client.index_of("bot_text", text=ANSWER[1])
    assert first_audio.index < second
    assert any(r.audio for r in client.received[second:])  # the rest was spoken too
