"""The hub's house rules, read from its own imports with `ast`: no import circles, and no layer
imports one above it (docs/hub.md, "Layers").

Every import counts, wherever it stands: at the top, inside a function (lazy imports), or under
`if TYPE_CHECKING:` — each is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import kiwi_voice.hub
from kiwi_voice.speaker import protocol as speaker_protocol

HUB_PACKAGE = "kiwi_voice.hub"
HUB_DIR = Path(kiwi_voice.hub.__file__).parent

# Top to bottom. A module may import modules of its own part and of any layer below its own;
# two parts of one layer never import each other. Every module of the hub that no layer names
# (its top-level modules and the packages api/, souls/, dashboard/) is the core: the ground floor.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),  # the kiwi-hub process
    ("wiring",),  # every part wired into one application
    ("voice",),  # the voice pipeline put together: runtime, setup, /api/audio, /api/conversation
    ("audio", "approvals"),  # audio sources and sinks; owner approvals of guests' commands
    ("pipeline",),  # one turn, the listener, wake word, VAD, STT, speech output
    ("routing",),  # Home Assistant's agent or Claude
)
CORE = "core"


def part_of(module: str) -> str:
    """The part a hub module belongs to: `kiwi_voice.hub.voice.setup` -> `voice`."""
    inside = module.removeprefix(HUB_PACKAGE).lstrip(".")
    head = inside.split(".", 1)[0]
    return head if any(head in layer for layer in LAYERS) else CORE


def floor_of(part: str) -> int:
    """The part's floor: the core is 0, the top layer the highest."""
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return len(LAYERS) - index
    return 0


def module_files(package_dir: Path, package: str) -> dict[str, Path]:
    """Every Python module below `package_dir`, by dotted name (a package by its __init__)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _sources(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterable[str]:
    """The dotted names one import statement reaches: `import X` reaches X; `from X import n`
    reaches the module X.n when there is one (X is a package), else X itself."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    yield from (f"{source}.{alias.name}" for alias in node.names)


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of `modules` it imports (itself excluded)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for source in _sources(node, module, is_package):
                # The longest prefix that is a module: `pkg.mod.Name` is pkg.mod.
                target = source
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layering_breaches(graph: Mapping[str, set[str]]) -> list[str]:
    """Every import that runs up a floor, or across to another part of the same floor."""
    breaches = []
    for module, targets in sorted(graph.items()):
        part = part_of(module)
        for target in sorted(targets):
            target_part = part_of(target)
            if target_part == part:
                continue
            if floor_of(target_part) > floor_of(part):
                breaches.append(f"{module} imports {target}: {target_part} is above {part}")
            elif floor_of(target_part) == floor_of(part):
                breaches.append(f"{module} imports {target}: {target_part} and {part} are peers")
    return breaches


@pytest.fixture(scope="module")
def hub_graph() -> dict[str, set[str]]:
    return import_graph(module_files(HUB_DIR, HUB_PACKAGE))


def test_the_graph_is_read_from_the_real_imports(hub_graph: dict[str, set[str]]) -> None:
    # A reader that found nothing would pass every rule below: check it sees known imports.
    assert len(hub_graph) > 80
    assert f"{HUB_PACKAGE}.pipeline.turn" in hub_graph[f"{HUB_PACKAGE}.voice.setup"]
    assert f"{HUB_PACKAGE}.pipeline.frames" in hub_graph[f"{HUB_PACKAGE}.audio.session"]
    # A lazy import inside a function is read too.
    assert f"{HUB_PACKAGE}.audio.feed_cli" in hub_graph[f"{HUB_PACKAGE}.__main__"]


def test_the_hub_has_no_import_circle(hub_graph: dict[str, set[str]]) -> None:
    assert circles(hub_graph) == []


def test_no_layer_of_the_hub_imports_a_higher_one(hub_graph: dict[str, set[str]]) -> None:
    assert layering_breaches(hub_graph) == []


def test_every_layer_names_a_real_part_of_the_hub() -> None:
    # A renamed package would otherwise fall silently into the core and lose its rules.
    for layer in LAYERS:
        for part in layer:
            assert (HUB_DIR / part).is_dir() or (HUB_DIR / f"{part}.py").is_file(), part


def test_the_hub_names_speaker_events_only_through_the_speaker_protocol() -> None:
    # One definition of each protocol: kiwi_voice/speaker/protocol.py names Kiwi's speaker events.
    names = {
        value
        for key, value in vars(speaker_protocol).items()
        if key.isupper() and isinstance(value, str) and value.startswith("speaker-")
    }
    assert speaker_protocol.IDENTIFY in names  # the names were found
    literals = [
        f"{path.relative_to(HUB_DIR)}:{node.lineno} {node.value!r}"
        for path in module_files(HUB_DIR, HUB_PACKAGE).values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert literals == []


def _write(root: Path, files: Mapping[str, str]) -> dict[str, set[str]]:
    for name, text in files.items():
        path = root / "kiwi_voice" / "hub" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return import_graph(module_files(root / "kiwi_voice" / "hub", HUB_PACKAGE))


def test_the_rules_catch_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    graph = _write(
        tmp_path,
        {
            "__init__.py": "",
            "events.py": "def later():\n    from .voice import setup\n",
            "voice/__init__.py": "",
            "voice/setup.py": "from kiwi_voice.hub import events\n",
            "pipeline/__init__.py": "",
            "pipeline/turn.py": "from ..routing.router import Router\n",
            "routing/__init__.py": "",
            "routing/router.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from kiwi_voice.hub.pipeline import turn\n"
            ),
            "audio/__init__.py": "",
            "audio/host.py": "from kiwi_voice.hub.approvals.gate import Gate\n",
            "approvals/__init__.py": "",
            "approvals/gate.py": "Gate = object\n",
        },
    )
    assert circles(graph) == [
        [f"{HUB_PACKAGE}.events", f"{HUB_PACKAGE}.voice.setup"],
        [f"{HUB_PACKAGE}.pipeline.turn", f"{HUB_PACKAGE}.routing.router"],
    ]
    assert layering_breaches(graph) == [
        f"{HUB_PACKAGE}.audio.host imports {HUB_PACKAGE}.approvals.gate: approvals and audio "
        "are peers",
        f"{HUB_PACKAGE}.events imports {HUB_PACKAGE}.voice.setup: voice is above core",
        f"{HUB_PACKAGE}.routing.router imports {HUB_PACKAGE}.pipeline.turn: pipeline is above "
        "routing",
    ]
