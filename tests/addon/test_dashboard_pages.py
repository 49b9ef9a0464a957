"""The dashboard in a real browser, behind a fake HA Ingress, against a real hub.

One chromium for the module (Debian's, driven by playwright); the hub runs with a real
kiwi-speaker and a real kiwi-tts (tiny offline piper voice). The fake microphone is an espeak
sentence on a loop, which is what the enrollment test records. The voice pipeline is not needed
here (see test_dashboard_voice.py).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.support.dashboard_browser import (
    CHROMIUM,
    IngressProxy,
    chromium_args,
    ingress_proxy,
    screenshot_path,
)
from tests.support.hub_process import HubProcess, restart_hub, start_hub
from tests.support.pipeline_client import background_browser
from tests.support.ports import free_port
from tests.support.speech import espeak_wav
from tests.support.waiting import until_sync
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

VOICE = "en_US-kiwi_test-x_low"
UI_TIMEOUT_MS = 15_000
ENROLL_SENTENCE = (
    "My voice is my passport. The quick brown fox jumps over the lazy dog, "
    "and the five boxing wizards jump quickly."
)


# ---- the services, the proxy and the browser (one of each for the module) --------------------


@pytest.fixture(scope="module")
def tts(
    offline_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("dashboard-tts") / "kiwi-tts.log"
    service = start_service(
        "kiwi-tts",
        [
            "--data-dir", str(offline_models_dir / "piper"),
            "--voice", VOICE,
            "--download-url", f"http://127.0.0.1:{free_port()}",  # nothing listens: offline
        ],
        log,
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def hub(tts: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("dashboard-hub") / "data", tts_uri=tts.uri)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def proxy(hub: HubProcess) -> Iterator[IngressProxy]:
    with ingress_proxy(hub.base_url) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    microphone = espeak_wav(ENROLL_SENTENCE, voice="en-us+f4")
    expect.set_options(timeout=UI_TIMEOUT_MS)  # set_default_timeout covers actions, not expect
    with sync_playwright() as playwright:
        yield playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(microphone)
        )


class PageErrors:
    """JavaScript errors a page raised: every test ends by checking there were none."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture(scope="module")
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def signed_in(context: BrowserContext, proxy: IngressProxy, hub: HubProcess) -> Iterator[Page]:
    """The dashboard opened once under the Ingress prefix with `?token=` (as a link would)."""
    page = context.new_page()
    errors = PageErrors(page)
    page.requested = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.requested.append(request.url))  # type: ignore[attr-defined]
    page.goto(f"{proxy.url}?token={hub.token}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    yield page
    assert errors.errors == []


# ---- helpers -----------------------------------------------------------------------------------


def api(hub: HubProcess, method: str, path: str, body: Any = None, content_type: str = "") -> Any:
    data = None
    headers = dict(hub.auth_headers)
    if isinstance(body, bytes):
        data = body
        headers["Content-Type"] = content_type
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(hub.base_url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def show_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")


def log_row(page: Page, event: str, text: str = "") -> Any:
    rows = page.locator(f"#log-body tr[data-event={event}]")
    return rows.filter(has_text=text) if text else rows


# ---- serving -----------------------------------------------------------------------------------


def test_only_the_static_files_are_open_without_the_token(
    hub: HubProcess, proxy: IngressProxy
) -> None:
    status, headers, body = fetch(hub.base_url + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'src="dashboard/js/main.js"' in body  # relative: works under any prefix
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, _ = fetch(hub.base_url + "/dashboard/js/main.js")
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/javascript")
    status, headers, _ = fetch(proxy.url + "dashboard/kiwi.css")
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/css")
    # Nothing outside the static folder, nothing of another type.
    assert fetch(hub.base_url + "/dashboard/%2e%2e/routes.py")[0] == 404
    assert fetch(hub.base_url + "/dashboard/../__init__.py")[0] in (401, 404)
    assert fetch(hub.base_url + "/dashboard/js/missing.js")[0] == 404
    # The API itself still wants the token, directly and through the proxy.
    assert fetch(hub.base_url + "/api/status")[0] == 401
    assert fetch(proxy.url + "api/souls")[0] == 401


# ---- the page ----------------------------------------------------------------------------------


def test_page_loads_under_the_ingress_prefix(
    signed_in: Page, proxy: IngressProxy, hub: HubProcess
) -> None:
    page = signed_in
    # The token was taken from the address bar once, kept, and removed from the URL.
    assert page.url == proxy.url
    assert page.evaluate("localStorage.getItem('kiwi.token')") == hub.token
    expect(page.locator("#connection")).to_have_attribute("data-status", "online")
    expect(page.locator("#assistant-state")).to_have_attribute("data-state", "IDLE")
    # Every request stayed under the prefix; the event stream carried the token.
    requested = page.requested  # type: ignore[attr-defined]
    assert requested
    assert all(url.startswith(proxy.url) for url in requested)
    assert any(
        path == "api/events" and query.get("token") == hub.token
        for path, query in proxy.websocket_queries
    )
    expect(page.locator("#souls li")).not_to_have_count(0)


def test_opened_without_a_token_it_asks_for_one(
    browser: Browser, proxy: IngressProxy, hub: HubProcess
) -> None:
    fresh = browser.new_context()  # no stored token
    fresh.set_default_timeout(UI_TIMEOUT_MS)
    page = fresh.new_page()
    errors = PageErrors(page)
    try:
        page.goto(proxy.url)
        dialog = page.get_by_role("dialog", name="Kiwi token")
        expect(dialog).to_be_visible()
        page.get_by_label("Token", exact=True).fill("not-the-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#login-error")).to_contain_text("not the hub's")
        page.get_by_label("Token", exact=True).fill(hub.token)
        page.get_by_role("button", name="Sign in").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#connection")).to_have_attribute("data-status", "online")
        assert page.evaluate("localStorage.getItem('kiwi.token')") == hub.token
    finally:
        fresh.close()
    assert errors.errors == []


def test_state_changes_and_speech_show_live(signed_in: Page, hub: HubProcess) -> None:
    page = signed_in
    # Record every state the badge shows: SPEAKING may last only a moment with the tiny voice.
    page.evaluate(
        """() => {
          window.seenStates = [];
          const badge = document.querySelector('#assistant-state');
          new MutationObserver(() => window.seenStates.push(badge.dataset.state))
            .observe(badge, {attributes: true, attributeFilter: ['data-state']});
        }"""
    )
    show_tab(page, "Souls & settings")
    page.get_by_label("Test speech").fill("Testing the dashboard.")
    page.get_by_role("button", name="Speak", exact=True).click()
    # Nothing plays Kiwi's voice yet: the page says so instead of "Speaking".
    expect(page.locator("#controls-status")).to_contain_text("Nothing can play audio")
    with background_browser(hub.ws_url("/api/audio")):  # a browser microphone elsewhere
        page.get_by_role("button", name="Speak", exact=True).click()
        expect(page.locator("#controls-status")).to_contain_text(
            "Speaking “Testing the dashboard.” on browser:"
        )
    show_tab(page, "Live")
    expect(page.locator("#turn-tts")).to_contain_text("Finished")
    expect(page.locator("#turn-tts")).to_contain_text("Testing the dashboard.")
    expect(log_row(page, "STATE_CHANGED", '"new":"SPEAKING"')).to_have_count(1)
    expect(log_row(page, "TTS_FINISHED")).to_have_count(1)
    expect(page.locator("#assistant-state")).to_have_attribute("data-state", "IDLE")
    assert page.evaluate("window.seenStates") == ["SPEAKING", "IDLE"]
    # Log filters: hiding the "Speech" group hides TTS rows and keeps the others.
    page.get_by_role("checkbox", name="Speech").uncheck()
    expect(log_row(page, "TTS_FINISHED")).to_be_hidden()
    expect(log_row(page, "STATE_CHANGED").first).to_be_visible()
    page.get_by_role("checkbox", name="Speech").check()
    page.get_by_label("Search", exact=True).fill("Testing the dashboard")
    expect(log_row(page, "STATE_CHANGED").first).to_be_hidden()
    expect(log_row(page, "TTS_STARTED")).to_be_visible()
    page.get_by_label("Search", exact=True).fill("")
    page.screenshot(path=screenshot_path("live"), full_page=True)


def test_a_named_microphone_becomes_a_satellite(signed_in: Page, hub: HubProcess) -> None:
    """The room typed beside the microphone names it: the hub lists the satellite while it runs,
    and the browser remembers the room for next time."""
    page = signed_in
    show_tab(page, "Live")
    page.locator("#mic-room").fill("Kitchen")
    page.locator("#mic-room").dispatch_event("change")
    page.get_by_role("button", name="Start microphone").click()
    expect(page.get_by_role("button", name="Stop microphone")).to_be_enabled()
    satellites = until_sync(
        lambda: api(hub, "GET", "/api/satellites")["satellites"],
        "the room in the hub's satellites",
    )
    page.get_by_role("button", name="Stop microphone").click()
    expect(page.get_by_role("button", name="Start microphone")).to_be_enabled()
    assert [s["id"] for s in satellites] == ["room:Kitchen"]
    assert page.evaluate("localStorage.getItem('kiwi.room')") == "Kitchen"
    until_sync(
        lambda: api(hub, "GET", "/api/satellites")["satellites"] == [],
        "the satellite gone with the microphone",
    )
    page.locator("#mic-room").fill("")
    page.locator("#mic-room").dispatch_event("change")


def test_soul_switch_changes_the_hubs_soul(signed_in: Page, hub: HubProcess) -> None:
    page = signed_in
    show_tab(page, "Souls & settings")
    page.get_by_role("button", name="Switch to Comedian").click()
    expect(page.locator("#souls li[aria-current=true]")).to_have_attribute("data-soul", "comedian")
    assert api(hub, "GET", "/api/soul/current")["id"] == "comedian"
    # A switch made elsewhere shows up live.
    api(hub, "POST", "/api/soul", {"soul": "butler"})
    expect(page.locator("#soul-current")).to_have_text("Butler")
    expect(page.get_by_role("button", name="Butler is active")).to_be_disabled()


def test_language_and_controls(signed_in: Page, hub: HubProcess) -> None:
    page = signed_in
    show_tab(page, "Souls & settings")
    page.get_by_label("Quick language switch").select_option("de")
    page.get_by_role("button", name="Switch", exact=True).click()
    expect(page.locator("#controls-status")).to_contain_text("Language: de.")
    assert api(hub, "GET", "/api/languages")["current"] == "de"
    api(hub, "POST", "/api/language", {"language": "en"})  # changed elsewhere: the page follows
    expect(page.get_by_label("Quick language switch")).to_have_value("en")
    page.get_by_role("button", name="Reset context").click()
    expect(page.locator("#controls-status")).to_contain_text("Conversation forgotten.")
    expect(log_row(page, "CONTEXT_RESET")).to_have_count(1)
    page.get_by_role("button", name="Stop speaking").click()
    expect(page.locator("#controls-status")).to_contain_text("Stopped.")


def test_config_errors_show_next_to_the_field(signed_in: Page, hub: HubProcess) -> None:
    page = signed_in
    show_tab(page, "Souls & settings")
    silence = page.get_by_label("VAD silence seconds")
    before = api(hub, "GET", "/api/config")["vad_silence_seconds"]
    silence.fill("9")
    page.get_by_role("button", name="Save changes").click()
    error = page.locator("#config-vad_silence_seconds-error")
    expect(error).to_contain_text("vad_silence_seconds")
    expect(silence).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#config-status")).to_contain_text("marked field")
    assert api(hub, "GET", "/api/config")["vad_silence_seconds"] == before
    page.screenshot(path=screenshot_path("settings-error"), full_page=True)

    silence.fill("1.2")
    page.get_by_label("LLM model").fill("claude-haiku-4-5")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#config-status")).to_contain_text("Saved: ")
    expect(error).to_be_empty()
    expect(silence).not_to_have_attribute("aria-invalid", "true")
    config = api(hub, "GET", "/api/config")
    assert (config["vad_silence_seconds"], config["llm_model"]) == (1.2, "claude-haiku-4-5")
    # Changed elsewhere: the form follows.
    api(hub, "PATCH", "/api/config", {"llm_model": "claude-opus-4-1"})
    expect(page.get_by_label("LLM model")).to_have_value("claude-opus-4-1")
    page.screenshot(path=screenshot_path("settings"), full_page=True)


def test_speakers_list_block_and_enroll_from_the_microphone(
    signed_in: Page, hub: HubProcess
) -> None:
    page = signed_in
    show_tab(page, "Speakers")
    clip = espeak_wav("Hello, this is Alice speaking to Kiwi for the first time.", voice="en-us+f2")
    alice = api(
        hub, "POST", "/api/speakers/enroll?name=Alice&priority=1", clip.read_bytes(), "audio/wav"
    )
    row = page.locator(f"#speakers-body tr[data-speaker={alice['id']}]")
    expect(row).to_contain_text("Alice")  # arrived through SPEAKER_ENROLLED, no reload
    expect(row).to_contain_text("Friend")

    page.get_by_role("button", name="Block Alice").click()
    expect(row).to_have_attribute("data-blocked", "true")
    profiles = {p["id"]: p for p in api(hub, "GET", "/api/speakers")["speakers"]}
    assert profiles[alice["id"]]["is_blocked"] is True
    page.get_by_role("button", name="Unblock Alice").click()
    expect(row).to_have_attribute("data-blocked", "false")

    # Enroll from the (fake) microphone: two samples of three seconds (a sample needs 1.5 s of
    # speech; three make a voice Kiwi names, which the page says).
    page.get_by_label("Name", exact=True).fill("Bob")
    page.get_by_label("Role", exact=True).select_option("0")
    page.get_by_label("Samples", exact=True).fill("2")
    page.get_by_label("Seconds per sample").fill("3")
    page.get_by_role("button", name="Record and enroll").click()
    expect(page.locator("#enroll-status")).to_contain_text("Recording sample 1 of 2")
    expect(page.locator("#enroll-status")).to_contain_text(
        "Enrolled Bob with 2 samples; 1 more sample before Kiwi recognises this voice."
    )
    expect(page.locator("#enroll-progress")).to_have_attribute("value", "1")
    bob = [p for p in api(hub, "GET", "/api/speakers")["speakers"] if p["name"] == "Bob"]
    assert len(bob) == 1
    assert (bob[0]["priority"], bob[0]["sample_count"]) == (0, 2)
    expect(page.locator(f"#speakers-body tr[data-speaker={bob[0]['id']}]")).to_contain_text("Owner")
    page.screenshot(path=screenshot_path("speakers"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete Alice").click()
    expect(row).to_have_count(0)
    assert alice["id"] not in {p["id"] for p in api(hub, "GET", "/api/speakers")["speakers"]}


def test_restart_reconnects_and_replays_what_was_missed(
    signed_in: Page, hub: HubProcess, proxy: IngressProxy
) -> None:
    page = signed_in
    show_tab(page, "Souls & settings")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restart hub").click()
    assert hub.wait() == 75  # the hub asks to be started again
    expect(page.locator("#connection")).to_have_attribute("data-status", "offline")
    last_seen = page.evaluate("window.kiwiDashboard.stream.lastSeq")
    connects_before = len(proxy.websocket_queries)

    restart_hub(hub)
    # Published right after the restart, likely before the page is back: it must arrive anyway.
    api(hub, "POST", "/api/reset-context")
    expect(page.locator("#connection")).to_have_attribute("data-status", "online", timeout=30_000)
    expect(log_row(page, "CONTEXT_RESET")).to_have_count(2)  # one before the restart, this one
    expect(log_row(page, "HUB_STOPPING", "restart")).to_have_count(1)
    reconnects = [q for p, q in proxy.websocket_queries[connects_before:] if p == "api/events"]
    assert reconnects
    assert reconnects[-1]["since"] == str(last_seen)
    # No event shown twice: the seq column is unique.
    seqs = page.locator("#log-body tr").evaluate_all("rows => rows.map(r => r.dataset.seq)")
    assert len(seqs) == len(set(seqs))
    page.screenshot(path=screenshot_path("live-after-restart"), full_page=True)


def _luminance(css_color: str) -> float:
    inside = css_color[css_color.index("(") + 1 : css_color.index(")")]
    red, green, blue = (float(part) for part in inside.split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def test_dark_theme_narrow_screen_and_keyboard(
    browser: Browser, proxy: IngressProxy, hub: HubProcess
) -> None:
    phone = browser.new_context(color_scheme="dark", viewport={"width": 390, "height": 844})
    phone.set_default_timeout(UI_TIMEOUT_MS)
    page = phone.new_page()
    errors = PageErrors(page)
    try:
        page.goto(f"{proxy.url}?token={hub.token}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        colors = page.evaluate(
            "() => [getComputedStyle(document.body).backgroundColor,"
            " getComputedStyle(document.body).color]"
        )
        background, text = (_luminance(color) for color in colors)
        assert background < 0.15
        assert text > 0.7
        # Nothing wider than the phone: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # Tabs work from the keyboard (arrow keys move between them, as WAI-ARIA tabs do).
        page.get_by_role("tab", name="Live").focus()
        page.keyboard.press("ArrowRight")
        expect(page.get_by_role("tab", name="Souls & settings")).to_be_focused()
        expect(page.locator("#view-settings")).to_be_visible()
        expect(page.locator("#view-live")).to_be_hidden()
        page.keyboard.press("End")
        expect(page.get_by_role("tab", name="Approvals")).to_have_attribute("aria-selected", "true")
        page.keyboard.press("Home")
        page.screenshot(path=screenshot_path("live-dark-phone"), full_page=True)
    finally:
        phone.close()
    assert errors.errors == []
