"""The pipeline: turns run one at a time, the wake word barges in, stop stops.

Kiwi is one voice in the home, so one turn speaks at a time: a turn from another source waits
for the current one. Capturing is per source and may overlap a running turn. Barge-in: a wake
word (or push-to-talk) from any source cancels the running turn — its LLM stream, its TTS
requests and its audio — and Kiwi listens instead. A client's `interrupt` cancels that client's
turns; POST /api/stop cancels every turn.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Literal

from kiwi_voice.hub.event_payloads import EventType, wake_word_detected
from kiwi_voice.hub.playback import NoAudioOutput, PlaybackOutputs
from kiwi_voice.hub.state import AssistantState

from . import frames
from .metrics import TurnTimer
from .sink import BroadcastSink, TurnSink
from .turn import Turn, TurnRequest, TurnRunner, TurnServices

_LOGGER = logging.getLogger(__name__)
SOURCE = "pipeline"
_CANCEL_RETRY_SECONDS = 0.5


def new_turn_id() -> str:
    return "turn_" + secrets.token_hex(6)


class Pipeline:
    def __init__(self, services: TurnServices, outputs: PlaybackOutputs) -> None:
        self._services = services
        self._runner = TurnRunner(services)
        self._outputs = outputs
        self._broadcast = BroadcastSink(outputs)
        self._lock = asyncio.Lock()
        self._turns: dict[str, tuple[Turn, asyncio.Task[Turn]]] = {}
        self._active: Turn | None = None
        self._listening: dict[str, TurnSink] = {}  # turn id -> source capturing it

    @property
    def services(self) -> TurnServices:
        return self._services

    @property
    def busy(self) -> bool:
        return bool(self._turns) or bool(self._listening)

    # ---- turns ------------------------------------------------------------------------------

    def submit(self, request: TurnRequest) -> asyncio.Task[Turn]:
        """Queue a turn; the task ends when the turn has ended (cancelled if interrupted)."""
        return self._start(
            Turn(request, TurnTimer(request.turn_id, speech_ended=request.speech_ended))
        )

    def _start(self, turn: Turn) -> asyncio.Task[Turn]:
        self._listening.pop(turn.turn_id, None)
        task = asyncio.create_task(self._run(turn), name=turn.turn_id)
        self._turns[turn.turn_id] = (turn, task)
        task.add_done_callback(lambda _: self._turns.pop(turn.turn_id, None))
        return task

    async def _run(self, turn: Turn) -> Turn:
        try:
            await self._lock.acquire()
        except asyncio.CancelledError:
            # Interrupted while waiting for another turn: it never started, but it did end.
            turn.interrupted = True
            await turn.sink.send_frame(frames.turn_end(turn.turn_id, "none", "", True, None))
            raise
        self._active = turn
        self._services.state.session = turn.sink.label
        try:
            await self._runner.run(turn)
        finally:
            self._active = None
            self._lock.release()
        return turn

    # ---- listening --------------------------------------------------------------------------

    async def wake(
        self,
        sink: TurnSink,
        trigger: Literal["wake_word", "push_to_talk"],
        score: float | None = None,
    ) -> str:
        """A source heard the wake word (or push-to-talk was pressed): barge in and listen.

        Returns the id of the turn that the captured utterance will be.
        """
        turn_id = new_turn_id()
        await self._barge_in()
        wake_word = str(self._services.settings.get("wake_word"))
        payload = wake_word_detected(wake_word, score, trigger, sink.label)
        self._services.bus.publish(EventType.WAKE_WORD_DETECTED, payload, SOURCE)
        return await self._listen(sink, turn_id, trigger)

    async def listen(self, sink: TurnSink) -> str:
        """Listen on `sink`'s microphone now, no wake word (a conversation Home Assistant
        started, a question it asked): barge in, LISTENING, the id of the turn to capture."""
        turn_id = new_turn_id()
        await self._barge_in()
        return await self._listen(sink, turn_id, "conversation")

    async def _listen(self, sink: TurnSink, turn_id: str, trigger: frames.ListenTrigger) -> str:
        self._services.state.session = sink.label
        self._enter(AssistantState.LISTENING)
        self._listening[turn_id] = sink
        await sink.send_frame(frames.listening(turn_id, trigger))
        return turn_id

    async def heard_nothing(self, turn_id: str) -> None:
        """The capture after the wake word ended without speech: back to idle."""
        sink = self._listening.pop(turn_id, None)
        if sink is None:
            return
        state = self._services.state
        if state.state == AssistantState.LISTENING and not self._listening and not self._turns:
            state.reset(SOURCE)
        await sink.send_frame(frames.turn_end(turn_id, "none", "", False, None))

    def _enter(self, new: AssistantState) -> None:
        state = self._services.state
        if not state.can_enter(new):
            state.reset(SOURCE)
        state.transition(new, SOURCE)

    # ---- stopping ---------------------------------------------------------------------------

    async def _barge_in(self) -> None:
        active = self._active
        if active is None:
            return
        active.superseded = True
        entry = self._turns.get(active.turn_id)
        if entry is not None:
            await self._cancel([entry])

    async def interrupt(self, sink: TurnSink | None = None) -> bool:
        """Cancel the turns of `sink` (all turns when None); True if there was one."""
        entries = [e for e in self._turns.values() if sink is None or e[0].sink is sink]
        await self._cancel(entries)
        return bool(entries)

    @staticmethod
    async def _cancel(entries: list[tuple[Turn, asyncio.Task[Turn]]]) -> None:
        for turn, task in entries:
            if not turn.finishing:  # a turn that is ending anyway finishes its goodbyes
                task.cancel()
        for turn, task in entries:
            while not task.done():
                await asyncio.wait({task}, timeout=_CANCEL_RETRY_SECONDS)
                if not task.done() and not turn.interrupted and not turn.finishing:
                    # Python 3.11's wait_for (inside wyoming's client) can swallow a
                    # cancellation that arrives as its read completes: ask again.
                    task.cancel()

    # ---- announcements ----------------------------------------------------------------------

    async def announce(
        self, text: str, target: str | None = None, *, wait: bool = False
    ) -> list[str]:
        """Say `text` on every output (on the output labelled `target` only, when given).

        Returns once audio started (with `wait`: once it was said or interrupted), with the
        labels of the outputs it plays on. Raises
        NoAudioOutput when nothing can play it (reporting success then would be a lie), and
        ServiceError when TTS fails."""
        played_on = self._outputs.labels(target)
        if not played_on and target is not None:
            known = ", ".join(self._outputs.labels()) or "none"
            raise NoAudioOutput(
                "unknown_output", f"No output {target!r} is connected (connected: {known})"
            )
        if not played_on:
            raise NoAudioOutput(
                "no_audio_output",
                "Nothing can play audio: no browser microphone is connected and the hub has "
                "no speaker (KIWI_HOST_AUDIO; in the add-on, the host's audio)",
            )
        await self.interrupt()
        sink = self._broadcast if target is None else BroadcastSink(self._outputs, target)
        request = TurnRequest(turn_id=new_turn_id(), sink=sink, trigger="announcement", text=text)
        turn = Turn(request, TurnTimer(request.turn_id))
        turn.first_audio = asyncio.get_running_loop().create_future()
        task = self._start(turn)
        await turn.first_audio
        if wait:
            await asyncio.wait({task})  # not `await task`: a barge-in cancels it, not us
        return played_on

    async def close(self) -> None:
        await self.interrupt()
