"""Helpers of the Kiwi integration tests (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.kiwi.api import KiwiClient
from custom_components.kiwi.const import DOMAIN
from tests.support.hub_process import HubProcess, start_hub
from tests.support.pipeline_client import AudioClient
from tests.support.speech import espeak_wav
from tests.support.voices import ENROL_SENTENCES
from tests.support.waiting import until_async
from tests.support.wyoming_process import ServiceProcess

# The session's kiwi-tts also has the tiny voice under this name, so the hub offers a choice.
SECOND_VOICE = "en_GB-kiwi_test-x_low"


@dataclass(frozen=True)
class WyomingServices:
    """The four services behind the session's hub."""

    tts: ServiceProcess
    wake: ServiceProcess
    stt: ServiceProcess
    speaker: ServiceProcess


async def start_home_hub(  # noqa: PLR0917 (what the hub stands in front of)
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    services: WyomingServices,
    stt: ServiceProcess,
    data_dir: Path,
    env: dict[str, str],
) -> HubProcess:
    """A hub whose Home Assistant is this harness's (its HTTP server on 127.0.0.1, an admin
    token), in front of the session's services and kiwi-stt `stt`; no Claude."""
    home_url = str((await hass_client()).make_url("/")).rstrip("/")
    return start_hub(
        data_dir,
        speaker=services.speaker,
        tts_uri=services.tts.uri,
        args=["--stt-uri", stt.uri, "--wake-uri", services.wake.uri],
        env={
            "KIWI_HA_TOKEN": hass_access_token,
            "KIWI_HA_URL": home_url,
            "ANTHROPIC_API_KEY": "",
            **env,
        },
    )


TEST_UNIQUE_ID = "kiwi-test-hub"
TEST_ENTRY_ID = "01KIWITESTENTRY0000000000"
WAIT_LIMIT_S = 15.0


def hub_client_for(hub: HubProcess, session: aiohttp.ClientSession) -> KiwiClient:
    """A client of `hub` (its current token) over `session`."""
    return KiwiClient("127.0.0.1", hub.port, hub.token, session)


def entry_for(hub: HubProcess, **overrides: object) -> MockConfigEntry:
    """A config entry for `hub` with a fixed id and unique id (stable snapshots)."""
    options = {
        "domain": DOMAIN,
        "title": "Kiwi",
        "unique_id": TEST_UNIQUE_ID,
        "entry_id": TEST_ENTRY_ID,
        "data": {CONF_HOST: "127.0.0.1", CONF_PORT: hub.port, CONF_TOKEN: hub.token},
    }
    options.update(overrides)
    return MockConfigEntry(**options)  # type: ignore[arg-type]


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add `entry` and set it up (whatever the outcome: tests check the state).

    HA's `homeassistant` integration comes first: `conversation` (a dependency) needs it.
    """
    assert await async_setup_component(hass, "homeassistant", {})
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def wait_for(
    hass: HomeAssistant,
    condition: Callable[[], bool],
    what: str,
    *,
    limit_s: float = WAIT_LIMIT_S,
) -> None:
    """Let Home Assistant's loop run until `condition()` holds; fail (not hang) after `limit_s`."""

    async def settled() -> bool:
        await hass.async_block_till_done()
        return condition()

    try:
        async with asyncio.timeout(limit_s):  # also when Home Assistant itself never settles
            await until_async(settled, what, timeout_s=limit_s)
    except TimeoutError:
        raise AssertionError(what) from None


async def wait_for_state(
    hass: HomeAssistant, entity_id: str, expected: str, *, limit_s: float = WAIT_LIMIT_S
) -> None:
    """Wait until `entity_id` is in state `expected`."""

    def reached() -> bool:
        state = hass.states.get(entity_id)
        return state is not None and state.state == expected

    state = hass.states.get(entity_id)
    await wait_for(
        hass,
        reached,
        f"{entity_id} did not become {expected} (was {state.state if state else None})",
        limit_s=limit_s,
    )


# espeak variants that speaker identification tells apart (shared/TESTDATA.md).
SPEAKER_VOICES = ("en-us+m3", "en-us+f2", "en-us+m7")

# The hub names speaker profiles spk_ + 8 random hex digits: masked so snapshots are stable.
SPEAKER_ID = re.compile(r"spk_[0-9a-f]{8}")


def mask_speaker_ids(data: object, path: object) -> object:
    """A syrupy matcher that replaces speaker ids in strings."""
    return SPEAKER_ID.sub("spk_<id>", data) if isinstance(data, str) else data


async def snapshot_kiwi_platform(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    config_entry_id: str,
) -> None:
    """HA's snapshot_platform, with the hub's random speaker ids masked."""
    entity_entries = er.async_entries_for_config_entry(entity_registry, config_entry_id)
    assert entity_entries
    assert len({entity_entry.domain for entity_entry in entity_entries}) == 1
    for entity_entry in entity_entries:
        name = SPEAKER_ID.sub("spk_id", entity_entry.entity_id)
        assert entity_entry == snapshot(name=f"{name}-entry", matcher=mask_speaker_ids)
        assert entity_entry.disabled_by is None
        state = hass.states.get(entity_entry.entity_id)
        assert state, f"State not found for {entity_entry.entity_id}"
        assert state == snapshot(name=f"{name}-state", matcher=mask_speaker_ids)


async def enroll(client: KiwiClient, name: str, voice: str = "en-us+m3") -> str:
    """Enroll a real espeak voice on the hub with three samples (kiwi-speaker names a voice
    from three on); the new profile's id."""
    clip = espeak_wav(f"Hello Kiwi, my name is {name} and this is my voice.", voice=voice)
    profile = await client.enroll_speaker(clip.read_bytes(), name=name, priority=1)
    for sentence in ENROL_SENTENCES[1:]:
        more = espeak_wav(sentence, voice=voice).read_bytes()
        await client.enroll_speaker(more, speaker_id=profile.id)
    return profile.id


async def say_to_kiwi(client: KiwiClient, text: str) -> dict[str, object]:
    """Feed espeak saying `text` through the hub's voice pipeline (POST /api/audio/file)."""
    clip = espeak_wav(text)
    return await client.request("POST", "/api/audio/file", wav=clip.read_bytes(), time_limit=120)


async def type_to_kiwi(client: KiwiClient, text: str) -> list[dict[str, object]]:
    """A typed turn over the web-microphone socket (/api/audio text_input); its frames."""
    frames: list[dict[str, object]] = []
    async with (
        asyncio.timeout(60),
        client.session.ws_connect(
            f"{client.base_url}/api/audio", headers=client.auth_headers
        ) as socket,
    ):
        await socket.send_json({"type": "text_input", "text": text})
        async for message in socket:
            if message.type is aiohttp.WSMsgType.TEXT:
                frames.append(message.json())
                if frames[-1]["type"] == "end":
                    break
    return frames


@contextlib.asynccontextmanager
async def browser_speaker(
    hub: HubProcess, session: aiohttp.ClientSession
) -> AsyncIterator[AudioClient]:
    """A browser microphone connected to `hub` (/api/audio, with the handshake done): something
    that plays what Kiwi says, so speaking is not refused with `no_audio_output`."""
    async with AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as client:
        yield client
