"""Speech-to-text entity: Kiwi's STT for Assist pipelines, with who spoke.

Audio goes to the hub (POST /api/assist/stt), which transcribes it with kiwi-stt and identifies
the speaker from the same audio in parallel; the hub publishes SPEECH_RECOGNIZED and
SPEAKER_IDENTIFIED. The utterance id it answers travels to Kiwi's conversation agent through
the pipeline run (assist_turn.py), so a guest's command waits for approval and HA runs it as the
speaker's linked user. Pick "Kiwi" as the pipeline's speech-to-text to get that.
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterable

from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import KiwiError
from .assist_turn import AssistUtterance, set_utterance
from .const import LOGGER
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity

PARALLEL_UPDATES = 0
RATE, WIDTH, CHANNELS = 16_000, 2, 1
STT_TIME_LIMIT_S = 60.0

SPEECH_TO_TEXT = EntityDescription(key="stt", translation_key="stt")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's speech-to-text entity."""
    async_add_entities([KiwiSttEntity(entry, SPEECH_TO_TEXT)])


def wav_bytes(pcm: bytes) -> bytes:
    """16 kHz mono 16-bit PCM as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(CHANNELS)
        wav.setsampwidth(WIDTH)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    return out.getvalue()


class KiwiSttEntity(KiwiEntity, stt.SpeechToTextEntity):
    """Transcribes through the hub and remembers who spoke for the conversation agent."""

    @property
    def supported_languages(self) -> list[str]:
        """The languages the hub speaks."""
        return list(self.coordinator.data.languages.available)

    @property
    def supported_formats(self) -> list[stt.AudioFormats]:
        """WAV only."""
        return [stt.AudioFormats.WAV]

    @property
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        """PCM only."""
        return [stt.AudioCodecs.PCM]

    @property
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        """16 bits."""
        return [stt.AudioBitRates.BITRATE_16]

    @property
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        """16 kHz, what kiwi-stt and kiwi-speaker take."""
        return [stt.AudioSampleRates.SAMPLERATE_16000]

    @property
    def supported_channels(self) -> list[stt.AudioChannels]:
        """Mono."""
        return [stt.AudioChannels.CHANNEL_MONO]

    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        """The utterance (the pipeline's VAD ends the stream) to the hub, its text back."""
        pcm = b"".join([chunk async for chunk in stream])
        try:
            body = await self.coordinator.client.request(
                "POST",
                "/api/assist/stt",
                wav=wav_bytes(pcm),
                params={"language": metadata.language, "client": "homeassistant"},
                time_limit=STT_TIME_LIMIT_S,
            )
        except KiwiError as err:
            LOGGER.warning("Kiwi could not transcribe the Assist audio: %s", err)
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        text = str(body.get("text") or "")
        utterance_id = body.get("utterance_id")
        if isinstance(utterance_id, str):
            set_utterance(AssistUtterance(utterance_id, text))
        return stt.SpeechResult(text, stt.SpeechResultState.SUCCESS)
