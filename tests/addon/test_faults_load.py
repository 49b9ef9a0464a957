"""Load: 10 live /api/audio microphones and 100 /api/events listeners at once, with real turns.

The short version of bench/bench_load.py (the same load for 60 s): 10 s of real-time microphone
audio from 10 clients, each saying "hey jarvis, turn on the kitchen light" once, staggered,
through the real kiwi-wake, kiwi-stt, kiwi-speaker and kiwi-tts on the offline models, a local
Home Assistant and a local Claude. Zero errors: no error frame, no ERROR event, no socket closed
by the hub, every listener gets every event exactly once. Memory: the hub's resident memory at
its peak stays within a generous bound of where it started (the figures are printed; the bench
reports them for the long run).
"""

from __future__ import annotations

import pytest

from tests.support.load_run import run_load, trimmed_utterance, utterance_gap
from tests.support.pipeline_stack import PipelineStack, stack_fixture
from tests.support.speech import espeak_pcm

pytestmark = pytest.mark.timeout(240)

LOAD_SECONDS = 10.0
HUB_RSS_GROWTH_LIMIT_MB = 150.0  # generous: the point is "bounded", the bench has the figures


stack = stack_fixture(services=("stt", "tts", "wake", "speaker"))


async def test_ten_microphones_and_a_hundred_listeners(stack: PipelineStack) -> None:
    hub = stack.hub
    assert hub is not None
    pids = {"hub": hub.process.pid, **{n: s.process.pid for n, s in stack.services.items()}}
    utterance = trimmed_utterance(espeak_pcm("hey jarvis, turn on the kitchen light"))
    result = await run_load(
        f"ws://127.0.0.1:{hub.port}",
        hub.token,
        utterance,
        pids,
        seconds=LOAD_SECONDS,
        microphones=10,
        listeners=100,
        gap_s=utterance_gap(LOAD_SECONDS, 10, utterance),
    )
    summary = result.summary()
    print("load:", summary)  # the figures for docs/testing.md (pytest -s shows them)

    assert result.errors() == []
    assert hub.process.poll() is None, hub.log()
    assert summary["utterances_sent"] == 10
    # The wake word was heard in (nearly) every utterance, and every capture ended.
    assert summary["wake_words_detected"] >= summary["utterances_sent"] - 1
    assert summary["turns_ended"] >= summary["wake_words_detected"]
    assert summary["events_per_client"] > 0
    hub_rss = summary["rss_mb"]["hub"]
    assert hub_rss["peak"] - hub_rss["start"] < HUB_RSS_GROWTH_LIMIT_MB, hub_rss
    for name, service in stack.services.items():
        assert service.process.poll() is None, f"{name} died:\n{service.log()}"
