"""kiwi-stt on Whisper base hears real voices: piper joe's sentences and a human reader
(pocketsphinx-testdata's librivox clips), each source at most 10 % word error rate after numbers
and spellings are normalised (tests/support/real_speech.normalize).

The clips of a source go to kiwi-stt in requests of up to 28 s (`batches`): Whisper's cost is per
30 s window, so this keeps the tier quick on two cores without changing what is recognised."""

from __future__ import annotations

from tests.support.real_speech import batches, joe_clips, librivox_clips, normalize, transcribe, wer
from tests.support.speech import wav_pcm
from tests.support.voices import TEST_SENTENCES
from tests.support.wyoming_process import ServiceProcess

MAX_WER = 0.10
RealServices = dict[str, ServiceProcess]


def test_normalising_makes_numbers_and_spellings_comparable() -> None:
    assert normalize("Set it to 21 degrees, Mr. Smith's favourite!") == normalize(
        "set it to twenty-one degrees mister smiths favorite"
    )
    assert wer([("a b c d", "a x c")]) == 0.5  # one substitution, one deletion


async def test_joe_sentences_are_transcribed_within_ten_percent_wer(
    real_services: RealServices, socket_enabled: None
) -> None:
    clips = [wav_pcm(clip) for clip in joe_clips(TEST_SENTENCES)]
    pairs = [
        (text, await transcribe(real_services["stt"].uri, pcm))
        for pcm, text in batches(list(zip(clips, TEST_SENTENCES, strict=True)))
    ]
    assert len(pairs) < len(TEST_SENTENCES)
    assert wer(pairs) <= MAX_WER, pairs


async def test_a_human_reader_is_transcribed_within_ten_percent_wer(
    real_services: RealServices, socket_enabled: None
) -> None:
    clips = [(wav_pcm(clip), reference) for clip, reference in librivox_clips()]
    assert len(clips) == 5
    pairs = [
        (reference, await transcribe(real_services["stt"].uri, pcm))
        for pcm, reference in batches(clips)
    ]
    assert wer(pairs) <= MAX_WER, pairs
