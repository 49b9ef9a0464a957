"""Speaker profiles, backed by kiwi-speaker over Wyoming."""

from __future__ import annotations

import io
import re
import wave
from typing import Annotated

from kiwi_voice.hub.endpoint import Call, Endpoint, QueryParam
from kiwi_voice.hub.errors import ApiError, ServiceError, bad_request, not_found
from kiwi_voice.hub.event_payloads import (
    EventType,
    speaker_deleted,
    speaker_enrolled,
    speaker_identified,
    speaker_updated,
)
from kiwi_voice.hub.protocol import (
    ShortText,
    SpeakerBlockedResponse,
    SpeakerDeletedResponse,
    SpeakerEnrolledResponse,
    SpeakerId,
    SpeakerIdentifiedResponse,
    SpeakerProfile,
    SpeakersResponse,
    SpeakerUnblockedResponse,
    SpeakerUpdateRequest,
)
from kiwi_voice.hub.shapes import Range
from kiwi_voice.hub.speaker_links import FIELDS
from kiwi_voice.hub.speakers import PcmAudio

from .failures import service_failed

TAG = "speakers"
SOURCE = "speaker"
_SPEAKER_ID = re.compile(r"^(spk_[0-9a-f]{8}|self)$")
MAX_AUDIO_BYTES = 10 * 1024 * 1024
WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
_PATH = {"speaker_id": SpeakerId}


def _speaker_id(call: Call) -> str:
    speaker_id = call.path_param("speaker_id")
    if not _SPEAKER_ID.match(speaker_id):
        raise not_found("unknown_speaker", f"no speaker profile {speaker_id!r}")
    return speaker_id


# What the speaker service says about the audio or the request: the client's to fix (400).
_BAD_INPUT = (
    "bad_audio",
    "no_audio",
    "audio_too_short",
    "audio_too_quiet",
    "audio_clipped",
    "bad_request",
    "empty_text",
)


def _failed(call: Call, err: ServiceError) -> ApiError:
    if err.code == "unknown_profile":
        return not_found("unknown_speaker", err.message)
    if err.code in _BAD_INPUT:
        return bad_request(err.code, err.message)
    if err.code == "enrollment_busy":
        return ApiError(409, err.code, err.message)
    return service_failed(call.ctx.bus, err)


def _linked(call: Call, profile: SpeakerProfile) -> SpeakerProfile:
    """The profile with the hub's links (speaker_links.py) beside kiwi-speaker's fields."""
    link = call.ctx.speaker_links.get(profile["id"])
    return {**profile, "person": link.person, "ha_user_id": link.ha_user_id, "soul": link.soul}


async def get_speakers(call: Call) -> SpeakersResponse:
    try:
        profiles = await call.ctx.speakers.list_profiles()
    except ServiceError as err:
        raise _failed(call, err) from err
    return {"speakers": [_linked(call, profile) for profile in profiles]}


async def _update(call: Call, **changes: object) -> SpeakerProfile:
    links = {key: changes.pop(key) for key in FIELDS if key in changes}
    soul = links.get("soul")
    if isinstance(soul, str) and call.ctx.soul_registry.get(soul) is None:
        # As POST /api/soul answers an unknown soul.
        raise not_found("unknown_soul", f"no soul with id {soul!r}")
    try:
        # With no change for kiwi-speaker this still answers the profile (or 404s).
        profile = await call.ctx.speakers.update(_speaker_id(call), **changes)
    except ServiceError as err:
        raise _failed(call, err) from err
    if links:
        call.ctx.speaker_links.update(profile["id"], links)
    profile = _linked(call, profile)
    payload = speaker_updated(
        profile["id"], profile["name"], profile["priority"], profile["is_blocked"]
    )
    call.ctx.bus.publish(EventType.SPEAKER_UPDATED, payload, SOURCE)
    return profile


async def delete_speaker(call: Call) -> SpeakerDeletedResponse:
    try:
        deleted = await call.ctx.speakers.delete(_speaker_id(call))
    except ServiceError as err:
        raise _failed(call, err) from err
    call.ctx.speaker_links.forget(deleted)
    call.ctx.bus.publish(EventType.SPEAKER_DELETED, speaker_deleted(deleted), SOURCE)
    return {"deleted": deleted}


async def block_speaker(call: Call) -> SpeakerBlockedResponse:
    profile = await _update(call, is_blocked=True)
    return {"blocked": profile["id"]}


async def unblock_speaker(call: Call) -> SpeakerUnblockedResponse:
    profile = await _update(call, is_blocked=False)
    return {"unblocked": profile["id"]}


async def patch_speaker(call: Call) -> SpeakerProfile:
    # An empty patch is valid by the declared shape (every field optional): it changes nothing.
    return await _update(call, **(call.body or {}))


async def read_wav(call: Call) -> PcmAudio:
    """The request's WAV body as PCM (also read by /api/assist/stt)."""
    request = call.request
    if request.content_type not in WAV_TYPES:
        raise ApiError(
            415, "unsupported_media_type", "send the audio as a WAV file (Content-Type: audio/wav)"
        )
    if request.content_length is not None and request.content_length > MAX_AUDIO_BYTES:
        raise ApiError(413, "payload_too_large", f"audio is limited to {MAX_AUDIO_BYTES} bytes")
    data = await request.read()
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            audio = PcmAudio(
                wav.getframerate(),
                wav.getsampwidth(),
                wav.getnchannels(),
                wav.readframes(wav.getnframes()),
            )
    except (wave.Error, EOFError) as err:
        raise bad_request("bad_audio", f"the body is not a readable PCM WAV file: {err}") from err
    if not audio.data:
        raise bad_request("no_audio", "the WAV file holds no audio")
    return audio


async def enroll_speaker(call: Call) -> SpeakerEnrolledResponse:
    audio = await read_wav(call)
    name, speaker_id = call.query.get("name"), call.query.get("id")
    if name is None and speaker_id is None:
        raise bad_request(
            "missing_field", "name: required to create a profile (or give id)", "name"
        )
    try:
        enrolled = await call.ctx.speakers.enroll(
            audio, name, call.query.get("priority"), speaker_id
        )
    except ServiceError as err:
        raise _failed(call, err) from err
    payload = speaker_enrolled(
        enrolled["id"], enrolled["name"], enrolled["priority"], enrolled["sample_count"]
    )
    call.ctx.bus.publish(EventType.SPEAKER_ENROLLED, payload, SOURCE)
    return enrolled


async def identify_speaker(call: Call) -> SpeakerIdentifiedResponse:
    audio = await read_wav(call)
    try:
        result = await call.ctx.speakers.identify(audio)
    except ServiceError as err:
        raise _failed(call, err) from err
    link = call.ctx.speaker_links.get(result["id"])
    payload = speaker_identified(
        result["name"],
        result["priority"],
        result["confidence"],
        result["id"],
        result["is_blocked"],
        person=link.person,
        ha_user_id=link.ha_user_id,
    )
    call.ctx.bus.publish(EventType.SPEAKER_IDENTIFIED, payload, SOURCE)
    return result


_SERVICE_ERRORS = (502, 503)
_WAV_ERRORS = (413, 415, 502, 503)

ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/speakers",
        handler=get_speakers,
        summary="All speaker profiles",
        tag=TAG,
        response=SpeakersResponse,
        errors=_SERVICE_ERRORS,
    ),
    Endpoint(
        method="DELETE",
        path="/api/speakers/{speaker_id}",
        handler=delete_speaker,
        summary="Remove a speaker profile",
        tag=TAG,
        path_params=_PATH,
        response=SpeakerDeletedResponse,
        errors=(404, *_SERVICE_ERRORS),
    ),
    Endpoint(
        method="PATCH",
        path="/api/speakers/{speaker_id}",
        handler=patch_speaker,
        summary="Rename or re-rank a speaker; link a Home Assistant person; a soul of its own "
        "(Kiwi addition)",
        tag=TAG,
        path_params=_PATH,
        request=SpeakerUpdateRequest,
        response=SpeakerProfile,
        errors=(404, *_SERVICE_ERRORS),
    ),
    Endpoint(
        method="POST",
        path="/api/speakers/{speaker_id}/block",
        handler=block_speaker,
        summary="Block a speaker",
        tag=TAG,
        path_params=_PATH,
        response=SpeakerBlockedResponse,
        errors=(404, *_SERVICE_ERRORS),
    ),
    Endpoint(
        method="POST",
        path="/api/speakers/{speaker_id}/unblock",
        handler=unblock_speaker,
        summary="Unblock a speaker",
        tag=TAG,
        path_params=_PATH,
        response=SpeakerUnblockedResponse,
        errors=(404, *_SERVICE_ERRORS),
    ),
    Endpoint(
        method="POST",
        path="/api/speakers/enroll",
        handler=enroll_speaker,
        summary="Create a voice profile, or add samples to one, from a WAV clip (Kiwi addition)",
        tag=TAG,
        raw_body="audio/wav",
        query=(
            QueryParam(name="name", annotation=ShortText, description="Name of a new profile"),
            QueryParam(
                name="priority",
                annotation=Annotated[int, Range(0, 3)],
                description="0 owner, 1 friend, 2 guest, 3 blocked role",
            ),
            QueryParam(name="id", annotation=SpeakerId, description="Add samples to this profile"),
        ),
        response=SpeakerEnrolledResponse,
        errors=(404, 409, *_WAV_ERRORS),
    ),
    Endpoint(
        method="POST",
        path="/api/speakers/identify",
        handler=identify_speaker,
        summary="Who is speaking in this WAV clip; publishes SPEAKER_IDENTIFIED (Kiwi addition)",
        tag=TAG,
        raw_body="audio/wav",
        response=SpeakerIdentifiedResponse,
        errors=_WAV_ERRORS,
    ),
)
