"""What a Home Assistant action will touch, found out through Home Assistant before it runs.

A call names its targets many ways; each is followed to entities the way HA itself does:
- `entity_id` (also `all`), `device_id`, `area_id`, `floor_id`, `label_id`, wherever they are
  given (arguments, `target`, `data`); devices, areas, floors and labels through HA's registries;
- `homeassistant.turn_on/turn_off/toggle/...` act on any domain: the entity's own domain counts;
- scripts (`script.turn_on`, `script.<name>`, or a script entity turned on) and automations
  (`automation.trigger`): their actions, read with `script/config` / `automation/config`,
  followed into nested sequences, choices, conditions, repeats and parallel branches, and into the
  scripts and scenes they call;
- scenes (`scene.turn_on`, `scene.apply`, `scene.create`): the entities they set;
- `conversation.process` and every command for HA's own conversation agent: the intent HA would
  recognise and the entities it would target (`conversation/agent/homeassistant/debug`, which
  matches without acting), or the automations a sentence trigger would start.

What cannot be followed (a template, a device action without entities, a config HA will not
show, HA unreachable) is listed in `unknown`: the caller treats the call as sensitive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kiwi_voice.hub.errors import ServiceError, ServiceUnavailable
from kiwi_voice.hub.homeassistant import HomeAssistantClient, HomeAssistantSocket

from .ha_actions import InvalidServiceCall, service_call
from .home_state import HomeState, HomeStateReader
from .model import ServiceCall

_LOGGER = logging.getLogger(__name__)
MAX_DEPTH = 8  # scripts calling scripts: deeper than this is not followed (and counts as unknown)
# HA intents that only read the home.
READ_ONLY_INTENTS = frozenset(
    {
        "HassGetState",
        "HassGetWeather",
        "HassGetCurrentTime",
        "HassGetCurrentDate",
        "HassClimateGetTemperature",
        "HassNevermind",
        "HassRespond",
        "HassTimerStatus",
        "HassListCompleteItem",
        "HassGetTodoItems",
    }
)
# homeassistant.<service> run as the entity's domain's own service (HA's mapping for covers).
_COVER_SERVICES = {"turn_on": "open_cover", "turn_off": "close_cover", "toggle": "toggle"}


@dataclass(frozen=True)
class Touch:
    """One entity a call acts on, with what acts on it and how the call got there."""

    entity_id: str
    action: str  # domain.service that reaches it (or intent:<name>, scene)
    via: str = ""  # e.g. "script.leave_home", "area garage"
    names: tuple[str, ...] = ()  # its area, floor, device and labels (for the patterns)

    @property
    def domain(self) -> str:
        return self.entity_id.split(".", 1)[0]

    def describe(self) -> str:
        where = f" (via {self.via})" if self.via else ""
        return f"{self.action} on {self.entity_id}{where}"


@dataclass
class Resolution:
    touches: list[Touch] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # every domain.service the call runs
    unknown: list[str] = field(default_factory=list)  # what could not be followed
    # Home Assistant could not be reached at all: the call could not run either.
    unreachable: ServiceUnavailable | None = None


class TargetResolver:
    def __init__(self, homeassistant: HomeAssistantClient, reader: HomeStateReader) -> None:
        self._homeassistant = homeassistant
        self._reader = reader

    async def resolve(self, call: ServiceCall) -> Resolution:
        try:
            async with self._homeassistant.websocket() as socket:
                walk = _Walk(socket, await self._reader.read(socket))
                await walk.call(call, via="", depth=0)
                return walk.result
        except ServiceError as err:
            _LOGGER.warning("Cannot tell what %s touches: %s", call.name, err.message)
            return Resolution(
                services=[call.name],
                unknown=[f"Home Assistant could not be asked what it touches ({err.message})"],
                unreachable=err if isinstance(err, ServiceUnavailable) else None,
            )


def _templated(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


class _Walk:
    """One resolution: follows a call and everything it runs, over one WebSocket."""

    def __init__(self, socket: HomeAssistantSocket, state: HomeState) -> None:
        self._socket = socket
        self._state = state
        self._followed: set[str] = set()  # scripts and automations already walked
        self.result = Resolution()

    def _unknown(self, reason: str) -> None:
        self.result.unknown.append(reason)

    def _touch(self, entity_id: str, action: str, via: str) -> None:
        names = tuple(self._state.names_of(entity_id))
        self.result.touches.append(Touch(entity_id, action, via.strip(" →"), names))

    # ---- a service call ------------------------------------------------------------------------

    async def call(self, call: ServiceCall, via: str, depth: int) -> None:
        self.result.services.append(call.name)
        if depth > MAX_DEPTH:
            self._unknown(f"{call.name}: nested more than {MAX_DEPTH} deep")
            return
        entities = self._targets(call)
        for entity_id in entities:
            self._touch(entity_id, self._action_on(call, entity_id), via)
        if call.domain == "conversation" and call.service == "process":
            text, language = call.data.get("text"), call.data.get("language")
            if not isinstance(text, str) or _templated(text):
                self._unknown("conversation.process without a plain text")
                return
            await self.sentence(text, language if isinstance(language, str) else None, via, depth)
        elif call.domain == "script":
            if call.service in ("turn_on", "toggle"):
                runs = [e for e in entities if e.startswith("script.")]
            elif call.service in ("turn_off", "reload"):
                runs = []
            else:  # script.<name>: the script itself
                runs = [f"script.{call.service}"]
                self._touch(runs[0], call.name, via)
            for script in runs:
                await self.script(script, via, depth + 1)
        elif call.domain == "automation" and call.service == "trigger":
            for automation in (e for e in entities if e.startswith("automation.")):
                await self.automation(automation, via, depth + 1)
        elif call.domain == "scene":
            if call.service == "turn_on":
                for scene in (e for e in entities if e.startswith("scene.")):
                    self.scene(scene, via)
            elif call.service in ("apply", "create"):
                self._scene_data(call, via)
        elif call.domain == "homeassistant" and call.service in ("turn_on", "toggle"):
            for entity_id in entities:
                await self._run_entity(entity_id, via, depth + 1)

    def _targets(self, call: ServiceCall) -> list[str]:
        """The entity ids the call's target names: explicit ones, and those of its devices,
        areas, floors and labels (of the call's domain, as HA's entity services pick them;
        of any domain for homeassistant.*)."""
        state = self._state
        any_domain = call.domain == "homeassistant"
        found: list[str] = []
        for entity_id in call.entity_ids:
            if entity_id == "all":
                found += state.entities_of_domain(None if any_domain else call.domain)
            elif entity_id != "none":
                found.append(entity_id)
        named: list[str] = []
        for device in call.target.get("device_id", ()):
            named += state.entities_of_device(device)
        for area in call.target.get("area_id", ()):
            named += state.entities_of_area(area)
        for floor in call.target.get("floor_id", ()):
            named += state.entities_of_floor(floor)
        for label in call.target.get("label_id", ()):
            named += state.entities_of_label(label)
        if not any_domain:
            named = [e for e in named if e.split(".", 1)[0] == call.domain]
        return list(dict.fromkeys(found + named))

    @staticmethod
    def _action_on(call: ServiceCall, entity_id: str) -> str:
        if call.domain != "homeassistant":
            return call.name
        domain = entity_id.split(".", 1)[0]
        service = _COVER_SERVICES.get(call.service, call.service) if domain == "cover" else None
        return f"{domain}.{service or call.service}"

    async def _run_entity(self, entity_id: str, via: str, depth: int) -> None:
        """An entity turned on that runs something: a script or a scene."""
        domain = entity_id.split(".", 1)[0]
        if domain == "script":
            await self.script(entity_id, via, depth)
        elif domain == "scene":
            self.scene(entity_id, via)

    # ---- scripts, automations, scenes ----------------------------------------------------------

    async def script(self, entity_id: str, via: str, depth: int) -> None:
        config = await self._config("script/config", entity_id)
        if config is not None:
            await self.actions(config.get("sequence"), f"{via} → {entity_id}", depth)

    async def automation(self, entity_id: str, via: str, depth: int) -> None:
        config = await self._config("automation/config", entity_id)
        if config is not None:
            actions = config.get("actions", config.get("action"))
            await self.actions(actions, f"{via} → {entity_id}", depth)

    async def _config(self, command: str, entity_id: str) -> dict[str, Any] | None:
        if entity_id in self._followed:
            return None  # already walked in this resolution (or a loop)
        self._followed.add(entity_id)
        try:
            result = await self._socket.command({"type": command, "entity_id": entity_id})
        except ServiceError as err:
            self._unknown(f"{entity_id}: its actions cannot be read ({err.message})")
            return None
        config = result.get("config") if isinstance(result, dict) else None
        if not isinstance(config, dict):
            self._unknown(f"{entity_id}: Home Assistant sent no config")
            return None
        return config

    def scene(self, entity_id: str, via: str) -> None:
        info = self._state.entities.get(entity_id)
        members = info.attributes.get("entity_id") if info is not None else None
        if not isinstance(members, list):
            self._unknown(f"{entity_id}: which entities it sets is not known")
            return
        for member in members:
            if isinstance(member, str):
                self._touch(member, "scene", f"{via} → {entity_id}")

    def _scene_data(self, call: ServiceCall, via: str) -> None:
        entities = call.data.get("entities")
        if isinstance(entities, dict):
            members: list[Any] = list(entities)
        elif isinstance(entities, list):
            members = entities
        else:
            members = []
        for member in members:
            if isinstance(member, str):
                self._touch(member, call.name, via)

    async def actions(self, actions: Any, via: str, depth: int) -> None:
        """Walk a script's or automation's actions (one action, or a list of them)."""
        if depth > MAX_DEPTH:
            self._unknown(f"{via}: nested more than {MAX_DEPTH} deep")
            return
        if isinstance(actions, dict):
            actions = [actions]
        if not isinstance(actions, list):
            return
        for action in actions:
            if isinstance(action, dict):
                await self._action(action, via, depth)

    async def _action(self, action: dict[str, Any], via: str, depth: int) -> None:
        name = action.get("action", action.get("service"))
        if name is not None:
            await self._service_action(name, action, via, depth)
        if isinstance(scene := action.get("scene"), str):
            self.scene(scene, via)
        if isinstance(action.get("device_id"), str) and "domain" in action and "type" in action:
            self._device_action(action, via)
        for key in ("sequence", "then", "else", "default"):
            await self.actions(action.get(key), via, depth + 1)
        if isinstance(repeat := action.get("repeat"), dict):
            await self.actions(repeat.get("sequence"), via, depth + 1)
        for branch in action.get("choose") or ():
            if isinstance(branch, dict):
                await self.actions(branch.get("sequence"), via, depth + 1)
        for branch in action.get("parallel") or ():
            if isinstance(branch, dict) and "sequence" in branch and len(branch) == 1:
                await self.actions(branch["sequence"], via, depth + 1)
            else:
                await self.actions(branch, via, depth + 1)

    async def _service_action(
        self, name: Any, action: dict[str, Any], via: str, depth: int
    ) -> None:
        if not isinstance(name, str) or _templated(name) or name.count(".") != 1:
            self._unknown(f"{via}: an action named by a template ({name!r})")
            return
        target, data = action.get("target"), action.get("data", action.get("data_template"))
        if _templated(target) or _templated(action.get("entity_id")):
            self._unknown(f"{via}: {name} with a templated target")
            return
        domain, service = name.split(".")
        try:
            call = service_call(domain, service, action.get("entity_id"), data, target)
        except InvalidServiceCall as err:
            self._unknown(f"{via}: {name}: {err}")
            return
        await self.call(call, via, depth + 1)

    def _device_action(self, action: dict[str, Any], via: str) -> None:
        domain, kind = str(action["domain"]), str(action["type"])
        entity_id = action.get("entity_id")
        if isinstance(entity_id, str) and "." in entity_id:
            entities = [entity_id]
        else:  # device actions name the entity by its registry id: take the device's of domain
            entities = [
                e
                for e in self._state.entities_of_device(action["device_id"])
                if e.split(".", 1)[0] == domain
            ]
        if not entities:
            self._unknown(f"{via}: a {domain} device action ({kind}) on unknown entities")
        for entity in entities:
            self._touch(entity, f"{domain}.{kind}", via)
        self.result.services.append(f"{domain}.{kind}")

    # ---- sentences for HA's own agent ----------------------------------------------------------

    async def sentence(self, text: str, language: str | None, via: str, depth: int) -> None:
        """What HA's default agent would do with `text`, without doing it."""
        request: dict[str, Any] = {
            "type": "conversation/agent/homeassistant/debug",
            "sentences": [text],
        }
        if language:
            request["language"] = language
        try:
            answer = await self._socket.command(request)
        except ServiceError as err:
            self._unknown(f"what Home Assistant would do with {text!r} ({err.message})")
            return
        results = answer.get("results") if isinstance(answer, dict) else None
        found = results[0] if isinstance(results, list) and results else None
        if not isinstance(found, dict):
            return  # HA's agent would not understand it: it would do nothing
        here = f"{via} → “{text}”"
        if found.get("source") == "trigger":
            await self._sentence_trigger(str(found.get("sentence_template") or text), here, depth)
            return
        intent = (found.get("intent") or {}).get("name")
        if not found.get("match") or intent in READ_ONLY_INTENTS:
            return
        self.result.services.append(f"intent:{intent}")
        targets = found.get("targets") if isinstance(found.get("targets"), dict) else {}
        for entity_id, details in targets.items():
            if isinstance(details, dict) and details.get("matched"):
                self._touch(entity_id, f"intent:{intent}", here)
                if intent != "HassTurnOff":
                    await self._run_entity(entity_id, here, depth + 1)

    async def _sentence_trigger(self, template: str, via: str, depth: int) -> None:
        """A sentence that starts automations: walk those whose conversation trigger has it."""
        automations = [e for e in self._state.entities if e.startswith("automation.")]
        started = []
        for automation in automations:
            try:
                result = await self._socket.command(
                    {"type": "automation/config", "entity_id": automation}
                )
            except ServiceError:
                continue
            config = result.get("config") if isinstance(result, dict) else None
            if isinstance(config, dict) and _has_sentence(config, template):
                started.append(automation)
        if not started:
            self._unknown(f"{via}: a sentence trigger whose automation cannot be found")
        for automation in started:
            self.result.services.append("automation.trigger")
            self._touch(automation, "automation.trigger", via)
            await self.automation(automation, via, depth + 1)


def _has_sentence(config: dict[str, Any], template: str) -> bool:
    triggers = config.get("triggers", config.get("trigger"))
    if isinstance(triggers, dict):
        triggers = [triggers]
    for trigger in triggers if isinstance(triggers, list) else ():
        if not isinstance(trigger, dict):
            continue
        if trigger.get("trigger", trigger.get("platform")) != "conversation":
            continue
        commands = trigger.get("command")
        commands = [commands] if isinstance(commands, str) else commands
        if isinstance(commands, list) and template in commands:
            return True
    return False
