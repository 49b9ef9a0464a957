"""The add-on and store files: valid against their schemas, no key at its default, and consistent
with each other and with the launcher (versions, options, translations, ports, s6 services)."""

from __future__ import annotations

import json
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from PIL import Image

from kiwi_voice.launcher.options import SUPERVISOR_SCHEMA, KiwiOptions, option_names, parse_options
from kiwi_voice.launcher.settings import PORT_VARIABLES, LauncherSettings
from kiwi_voice.launcher.specs import PROCESS_NAMES, build_process_specs

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "addon"
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
S6 = ADDON / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d"
MINIMUM_HA = "2026.2.0"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def _validate(document: Any, schema_name: str) -> None:
    schema = _schema(schema_name)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    document: dict[str, Any] = _yaml(ADDON / "config.yaml")
    return document


@pytest.fixture(scope="module")
def translations() -> dict[str, Any]:
    document: dict[str, Any] = _yaml(ADDON / "translations" / "en.yaml")
    return document


# -- schemas -----------------------------------------------------------------------------------


def test_config_is_valid(config: dict[str, Any]) -> None:
    _validate(config, "addon-config.schema.json")


def test_translations_are_valid(translations: dict[str, Any]) -> None:
    _validate(translations, "addon-translations.schema.json")


def test_repository_yaml_is_valid() -> None:
    repository = _yaml(REPO / "repository.yaml")
    _validate(repository, "repository.schema.json")
    assert repository["name"]


def test_hacs_json_is_valid() -> None:
    hacs = json.loads((REPO / "hacs.json").read_text(encoding="utf-8"))
    _validate(hacs, "hacs.schema.json")
    assert hacs["name"] == "Kiwi"
    assert hacs["homeassistant"] == MINIMUM_HA
    assert hacs["render_readme"] is True


def test_no_build_yaml_the_dockerfile_names_its_base() -> None:
    assert not (ADDON / "build.yaml").exists()
    dockerfile = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG BUILD_FROM=(\S+)$", dockerfile, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"ghcr\.io/home-assistant/\$\{BUILD_ARCH\}-base-debian:bookworm", base[1])
    assert re.search(r"^ARG BUILD_ARCH=amd64$", dockerfile, re.MULTILINE)


# -- the linter's rule: no key at its default --------------------------------------------------


def test_no_key_is_written_at_its_default(config: dict[str, Any]) -> None:
    properties = _schema("addon-config.schema.json")["properties"]
    # Supervisor defaults the linter knows that its schema file does not carry.
    implicit_defaults = {"panel_title": config["name"], "ingress_entry": "/", "ports": {}}
    at_default = [
        key
        for key, value in config.items()
        if ("default" in properties.get(key, {}) and properties[key]["default"] == value)
        or (key in implicit_defaults and implicit_defaults[key] == value)
    ]
    assert at_default == []
    # The README's named examples, spelled out so a regression names itself.
    assert config.get("init") is False
    assert "boot" not in config
    assert "startup" not in config
    assert config.get("ingress_port") != 8099
    assert config.get("panel_icon") != "mdi:puzzle"
    assert "hassio_api" not in config


def test_map_entries_do_not_spell_out_read_only(config: dict[str, Any]) -> None:
    assert all(not entry.endswith(":ro") for entry in config["map"])


# -- what the issue asks for -------------------------------------------------------------------


def test_addon_capabilities(config: dict[str, Any]) -> None:
    assert config["slug"] == "kiwi"
    assert sorted(config["arch"]) == ["aarch64", "amd64"]
    assert config["init"] is False
    assert config["ingress"] is True
    assert config["ingress_port"] == PORT_VARIABLES["hub"][1]
    assert config["homeassistant_api"] is True
    assert config["audio"] is True
    assert config["homeassistant"] == MINIMUM_HA
    assert config["discovery"] == ["kiwi", "wyoming"]
    assert {entry.split(":")[0] for entry in config["map"]} >= {"addon_config", "share"}
    assert any(pattern.startswith("models") for pattern in config["backup_exclude"])


def test_every_port_is_declared_closed_to_the_lan_and_described(
    config: dict[str, Any], translations: dict[str, Any]
) -> None:
    bound = {f"{spec.port}/tcp" for spec in build_process_specs(KiwiOptions(), LauncherSettings())}
    assert set(config["ports"]) == bound
    assert all(host_port is None for host_port in config["ports"].values())
    assert set(config["ports_description"]) == bound
    assert set(translations["network"]) == bound


def test_options_schema_and_translations_agree(
    config: dict[str, Any], translations: dict[str, Any]
) -> None:
    options, schema = config["options"], config["schema"]
    assert set(options) <= set(schema)
    required = {key for key, kind in schema.items() if not kind.endswith("?")}
    assert required <= set(options), "the Supervisor needs a value for every required option"
    assert schema == SUPERVISOR_SCHEMA, "config.yaml and kiwi_voice.launcher.options disagree"
    assert set(schema) == set(option_names())
    assert set(translations["configuration"]) == set(schema)
    for key, text in translations["configuration"].items():
        assert text["name"].strip(), key
        assert (text.get("description") or "").strip(), key


def test_shipped_options_are_the_launchers_defaults(config: dict[str, Any]) -> None:
    assert parse_options(config["options"]) == KiwiOptions()


def test_versions_agree(config: dict[str, Any]) -> None:
    pyproject = tomllib.loads((REPO / "wyoming_services" / "pyproject.toml").read_text("utf-8"))
    manifest = json.loads(
        (REPO / "custom_components" / "kiwi" / "manifest.json").read_text(encoding="utf-8")
    )
    dockerfile = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    docker_version = re.search(r"^ARG KIWI_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert docker_version is not None
    versions = {
        "addon/config.yaml": config["version"],
        "wyoming_services/pyproject.toml": pyproject["project"]["version"],
        "custom_components/kiwi/manifest.json": manifest["version"],
        "addon/Dockerfile": docker_version[1],
    }
    assert set(versions.values()) == {"0.1.0"}, versions
    changelog = (ADDON / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(config['version'])}\b", changelog, re.MULTILINE)


# -- the image ---------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined and comment lines dropped."""
    lines = (ADDON / "Dockerfile").read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    return [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def test_dockerfile_builds_this_checkout_from_the_lock_without_compilers() -> None:
    instructions = _dockerfile_instructions()
    stages = [line for line in instructions if line.startswith("FROM ")]
    assert stages == ["FROM ${BUILD_FROM} AS build", "FROM ${BUILD_FROM}"]
    final = instructions[instructions.index("FROM ${BUILD_FROM}") :]
    build = instructions[: instructions.index("FROM ${BUILD_FROM}")]
    runs = [line for line in instructions if line.startswith("RUN ")]
    assert not any(
        tool in run for run in runs for tool in ("build-essential", "gcc", "python3-dev")
    ), "wheels only: nothing is compiled"
    assert not any("torch" in run or "librosa" in run for run in runs), "kiwi-speaker needs neither"
    # The wheel of this checkout and every dependency from the lock, hashes required.
    assert any("--require-hashes" in run and "-r /tmp/image.lock" in run for run in build)
    assert "COPY build/image.lock /tmp/image.lock" in build
    assert any(line.startswith("COPY build/kiwi_voice-") for line in build)
    assert not any("curl" in run or "http" in run for run in runs), "no source downloaded"
    # The default models from their pinned packages; the host's CAs in the build stage only.
    assert any("kiwi_voice.model_pack install /opt/kiwi/models" in run for run in build)
    assert "COPY build/ca/ /usr/local/share/ca-certificates/" in build
    assert not any("ca-certificates/" in line for line in final if line.startswith("COPY"))
    assert "COPY --from=build /opt/kiwi /opt/kiwi" in final
    (env,) = [line for line in final if line.startswith("ENV PATH=")]
    assert "KIWI_BUNDLED_MODELS=/opt/kiwi/models" in env
    (apt,) = [run for run in final if "apt-get install" in run]
    for package in ("python3", "libgomp1", "libportaudio2", "libpulse0", "libasound2"):
        assert re.search(rf"\s{package}(\s|$)", apt), package
    # ALSA's pulse plugin alone, not libasound2-plugins' libavcodec-bound rest.
    assert "libasound_module_*_pulse.so" in apt
    assert "rm -rf /var/lib/apt/lists/*" in apt
    (health,) = [line for line in instructions if line.startswith("HEALTHCHECK ")]
    assert f"127.0.0.1:{PORT_VARIABLES['hub'][1]}/api/health" in health


def test_the_image_lock_pins_every_runtime_dependency_with_hashes() -> None:
    lock = (REPO / "requirements" / "image.lock").read_text(encoding="utf-8")
    pinned = {
        m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.MULTILINE)
    }
    pyproject = tomllib.loads((REPO / "wyoming_services" / "pyproject.toml").read_text("utf-8"))
    for requirement in pyproject["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
        assert name in pinned, f"{name} is not in requirements/image.lock: run `make lock-image`"
    assert "torch" not in pinned
    assert "librosa" not in pinned
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)
    # The same versions the tests run with.
    addon = dict(
        re.findall(
            r"^([A-Za-z0-9_.-]+)==(\S+)",
            (REPO / "requirements" / "addon.lock").read_text("utf-8"),
            re.MULTILINE,
        )
    )
    addon = {name.lower(): version for name, version in addon.items()}
    differ = {n: (v, addon[n]) for n, v in pinned.items() if n in addon and addon[n] != v}
    assert not differ, differ


def test_s6_runs_one_longrun_per_process_through_the_launcher() -> None:
    contents = {p.name for p in (S6 / "user" / "contents.d").iterdir()}
    assert contents == {f"kiwi-{name}" for name in PROCESS_NAMES} | {"kiwi-discovery"}
    for name in PROCESS_NAMES:
        service = S6 / f"kiwi-{name}"
        assert (service / "type").read_text().strip() == "longrun"
        for script, command in (
            ("run", f"exec kiwi run-service {name} --options /data/options.json"),
            ("finish", f'exec kiwi service-finished {name} "$1" "$2"'),
        ):
            path = service / script
            assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"
            assert _commands(path) == [command], "s6 scripts only call the launcher"


def test_s6_discovery_is_a_oneshot_after_every_longrun() -> None:
    service = S6 / "kiwi-discovery"
    assert (service / "type").read_text().strip() == "oneshot"
    depends = {p.name for p in (service / "dependencies.d").iterdir()}
    assert depends == {f"kiwi-{name}" for name in PROCESS_NAMES}
    script = ADDON / "rootfs" / (service / "up").read_text().strip().lstrip("/")
    assert script.stat().st_mode & stat.S_IXUSR
    assert _commands(script) == ["kiwi discovery --options /data/options.json || true"]


def _commands(script: Path) -> list[str]:
    lines = script.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/command/with-contenv sh"
    return [line for line in lines[1:] if line.strip() and not line.startswith("#")]


def test_apparmor_profile_is_named_after_the_slug(config: dict[str, Any]) -> None:
    profile = (ADDON / "apparmor.txt").read_text(encoding="utf-8")
    names = re.findall(r"^profile (\S+)", profile, re.MULTILINE)
    assert names == [config["slug"]]
    assert profile.count("{") == profile.count("}")


@pytest.mark.parametrize(("name", "square"), [("icon.png", True), ("logo.png", False)])
def test_images_are_real_pngs(name: str, square: bool) -> None:
    with Image.open(ADDON / name) as image:
        image.load()  # decodes every pixel: a broken file raises here
        assert image.format == "PNG"
        width, height = image.size
        alpha = image.getchannel("A").getextrema()
        assert alpha == (0, 255), "drawn on a transparent background"
    assert 64 <= width <= 512
    assert (width == height) == square


def test_docs_name_licences_ports_and_options(config: dict[str, Any]) -> None:
    docs = (ADDON / "DOCS.md").read_text(encoding="utf-8")
    for licence in ("CC BY-NC-SA 4.0", "MIT"):
        assert licence in docs
    for port in config["ports"]:
        assert port.split("/")[0] in docs, port
    for option in config["schema"]:
        assert f"`{option}`" in docs, option


def test_licence_is_mit() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 Kiwi developers" in text
