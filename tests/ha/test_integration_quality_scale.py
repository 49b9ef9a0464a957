"""quality_scale.yaml says what is true: every rule is stated, an exemption says why, the rules
marked done that code can show are there, and the manifest claims no tier a rule does not meet."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from homeassistant import components

from custom_components.kiwi import PLATFORMS
from custom_components.kiwi.sensor import HUB_SENSORS, SPEAKER_SENSORS
from tests.support.cache import REPO_ROOT

INTEGRATION = REPO_ROOT / "custom_components" / "kiwi"
RULES: dict[str, str | dict[str, str]] = yaml.safe_load(
    (INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8")
)["rules"]
MANIFEST = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
TIERS: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup", "appropriate-polling", "brands", "common-modules",
        "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
        "docs-high-level-description", "docs-installation-instructions",
        "docs-removal-instructions", "entity-event-setup", "entity-unique-id", "has-entity-name",
        "runtime-data", "test-before-configure", "test-before-setup", "unique-config-entry",
    ),
    "silver": (
        "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
        "docs-installation-parameters", "entity-unavailable", "integration-owner",
        "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    ),
    "gold": (
        "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
        "docs-examples", "docs-known-limitations", "docs-supported-devices",
        "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
        "entity-category", "entity-device-class", "entity-disabled-by-default",
        "entity-translations", "exception-translations", "icon-translations",
        "reconfiguration-flow", "repair-issues", "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}  # fmt: skip


def status(rule: str) -> str:
    entry = RULES[rule]
    return entry if isinstance(entry, str) else entry["status"]


def source(name: str) -> str:
    return (INTEGRATION / name).read_text(encoding="utf-8")


def test_every_rule_of_home_assistants_scale_is_stated() -> None:
    # The rules Home Assistant Core's own integrations state, from the installed version.
    core = Path(components.__file__).parent
    known: set[str] = set()
    for path in core.glob("*/quality_scale.yaml"):
        known |= set((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules") or {})
    assert {rule for tier in TIERS.values() for rule in tier} == known
    assert set(RULES) == known


def test_an_exemption_says_why() -> None:
    for rule, entry in RULES.items():
        assert status(rule) in ("done", "exempt", "todo"), rule
        if status(rule) == "exempt":
            assert isinstance(entry, dict), rule
            assert len(entry.get("comment", "").strip()) > 20, rule


def test_the_manifest_claims_no_tier_a_rule_misses() -> None:
    claimed = MANIFEST["quality_scale"]
    for tier, rules in TIERS.items():
        assert [r for r in rules if status(r) not in ("done", "exempt")] == [], tier
        if tier == claimed:
            break


def _platform_modules_set_parallel_updates() -> bool:
    return all(
        re.search(r"^PARALLEL_UPDATES = \d+$", source(f"{platform.value}.py"), re.M)
        for platform in PLATFORMS
    )


# What the code must show for a rule marked done (the docs rules are read by people).
EVIDENCE: dict[str, Callable[[], bool]] = {
    "action-setup": lambda: (
        "async_setup_services(hass)"
        in source("__init__.py").split("async def async_setup_entry")[0]
    ),
    "common-modules": lambda: (
        "class KiwiCoordinator" in source("coordinator.py")
        and "class KiwiEntity" in source("entity.py")
    ),
    "config-entry-unloading": lambda: "async def async_unload_entry" in source("__init__.py"),
    "discovery": lambda: "async def async_step_hassio" in source("config_flow.py"),
    "discovery-update-info": lambda: (
        "_abort_if_unique_id_configured(updates=" in source("config_flow.py")
    ),
    "diagnostics": lambda: (
        "def async_get_config_entry_diagnostics" in source("diagnostics.py")
        and "async_redact_data" in source("diagnostics.py")
    ),
    "entity-disabled-by-default": lambda: any(
        d.entity_registry_enabled_default is False for d in (*HUB_SENSORS, *SPEAKER_SENSORS)
    ),
    "has-entity-name": lambda: "    _attr_has_entity_name = True" in source("entity.py"),
    "icon-translations": (INTEGRATION / "icons.json").is_file,
    "inject-websession": lambda: "async_get_clientsession(hass)" in source("__init__.py"),
    "integration-owner": lambda: bool(MANIFEST["codeowners"]),
    "parallel-updates": _platform_modules_set_parallel_updates,
    "reauthentication-flow": lambda: "async def async_step_reauth" in source("config_flow.py"),
    "reconfiguration-flow": lambda: "async def async_step_reconfigure" in source("config_flow.py"),
    "repair-issues": lambda: "async_create_issue" in source("issues.py"),
    "runtime-data": lambda: "entry.runtime_data = " in source("__init__.py"),
    "stale-devices": lambda: "async def async_remove_config_entry_device" in source("__init__.py"),
    "strict-typing": lambda: (
        "mypy --strict custom_components/kiwi"
        in (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    ),
    "test-coverage": lambda: (
        "--cov=custom_components.kiwi" in (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
        and "--cov-fail-under=95" in (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    ),
    "unique-config-entry": lambda: "_abort_if_unique_id_configured()" in source("config_flow.py"),
}


@pytest.mark.parametrize("rule", sorted(EVIDENCE))
def test_a_rule_marked_done_is_in_the_code(rule: str) -> None:
    if status(rule) == "done":
        assert EVIDENCE[rule](), f"{rule} is marked done, but the code does not show it"
