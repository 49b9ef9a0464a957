"""Every string the integration refers to exists in translations/en.json (and has an icon)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from custom_components.kiwi import (
    binary_sensor,
    button,
    event,
    reply_select,
    select,
    sensor,
    switch,
)
from tests.support.cache import REPO_ROOT

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

INTEGRATION = REPO_ROOT / "custom_components" / "kiwi"
STRINGS = json.loads((INTEGRATION / "translations" / "en.json").read_text())
ICONS = json.loads((INTEGRATION / "icons.json").read_text())
SOURCES = {path.name: path.read_text() for path in INTEGRATION.rglob("*.py")}


def used_keys(pattern: str) -> set[str]:
    """Every string literal after `pattern` in the integration's code."""
    return {key for text in SOURCES.values() for key in re.findall(pattern, text)}


def test_raised_errors_are_translated() -> None:
    """Each translation_key of an exception has a message."""
    raised = used_keys(r'translation_domain=DOMAIN,\s+translation_key="(\w+)"')
    # The keys handed to errors.py's hub_error / translated_hub_errors.
    raised |= used_keys(r'\b(?:failed|not_found|unreachable)_key="(\w+)"')
    assert {"command_failed", "not_found", "action_failed", "conversation_unreachable"} <= raised
    assert len(raised) > 10
    assert raised <= set(STRINGS["exceptions"]), raised - set(STRINGS["exceptions"])


def test_issues_are_translated() -> None:
    """Each repair issue has a title and a description."""
    for key in ("hub_unreachable", "models_missing"):
        assert {"title", "description"} <= set(STRINGS["issues"][key])


@pytest.mark.parametrize(
    ("platform", "descriptions"),
    [
        ("binary_sensor", binary_sensor.BINARY_SENSORS),
        ("button", button.BUTTONS),
        ("event", (event.VOICE_EVENTS,)),
        ("select", (*select.SELECTS, reply_select.REPLIES_ON)),
        ("sensor", sensor.HUB_SENSORS + sensor.SPEAKER_SENSORS),
        ("switch", switch.SPEAKER_SWITCHES),
    ],
)
def test_entities_have_names_and_icons(platform: str, descriptions: tuple[object, ...]) -> None:
    """Each translation key names its entity and has an icon."""
    for description in descriptions:
        key = getattr(description, "translation_key", None)
        if key is None:  # named by its device class (restart)
            continue
        assert STRINGS["entity"][platform][key]["name"]
        assert ICONS["entity"][platform][key]["default"].startswith("mdi:")


def test_enum_states_are_translated() -> None:
    """Each assistant state and each event type has a translation."""
    states = STRINGS["entity"]["sensor"]["assistant_state"]["state"]
    assert set(states) == set(sensor.ASSISTANT_STATES)
    event_types = STRINGS["entity"]["event"]["voice_events"]["state_attributes"]["event_type"]
    assert set(event_types["state"]) == set(event.VOICE_EVENT_TYPES)


def test_actions_are_described() -> None:
    """Each action in services.yaml has a name, a description, fields and an icon."""
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text())
    for action, schema in services.items():
        strings = STRINGS["services"][action]
        assert strings["name"]
        assert strings["description"]
        assert set(strings["fields"]) == set(schema["fields"])
        assert ICONS["services"][action]["service"].startswith("mdi:")


def test_flow_errors_and_aborts_are_translated() -> None:
    """The errors and abort reasons the flows use have texts."""
    flow = SOURCES["config_flow.py"]
    errors = set(re.findall(r'return "(\w+)"', flow))
    aborts = set(re.findall(r'reason="(\w+)"', flow))
    assert errors <= set(STRINGS["config"]["error"])
    assert aborts - {"not_loaded", "no_speakers"} <= set(STRINGS["config"]["abort"])
    assert {"not_loaded", "no_speakers"} <= set(STRINGS["options"]["abort"])
