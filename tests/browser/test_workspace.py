"""The clinician workspace in a real browser (Playwright driving the system Chromium through
`executable_path`; nothing is downloaded): list -> open -> click a citation -> play from a line ->
edit -> save -> sign -> the audit entries -> erase, with no script error or CSP violation on the way;
markup in a transcript stays text; a forged cross-site POST from another origin is refused; an
expired session is refused.

The app runs in this process under uvicorn with the in-memory service of tests/workspace_fakes.py
(the service's own rules; the real service is tested in tests/handlers) and a short WAV recording.
Skipped without Chromium or Playwright, unless MEDSCRIBE_REQUIRE_BROWSER=1 (CI), where either missing
fails the test.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import socket
import struct
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from medscribe.workspace.app import create_app
from medscribe.workspace.auth import LocalAuth
from medscribe.workspace.ports import Actor
from tests.workspace_fakes import ATTACK, ENC, FakeRecordings, FakeSearch, FakeWorkspace

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WATCH = """
window.__problems = [];
window.addEventListener("error", function (e) { window.__problems.push("error: " + e.message); });
document.addEventListener("securitypolicyviolation", function (e) {
  window.__problems.push("csp: " + e.violatedDirective + " " + e.blockedURI);
});
"""


def _missing(reason: str) -> Any:
    if os.environ.get("MEDSCRIBE_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def chromium() -> str:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return str(_missing("Chromium not found; install it with: apt-get install -y chromium"))


def wav(seconds: float = 6.0, rate: int = 8000) -> bytes:
    """A quiet tone: a recording long enough for every line's start time."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"".join(struct.pack("<h", int(800 * math.sin(2 * math.pi * 440 * n / rate)))
                                    for n in range(int(seconds * rate))))
    return out.getvalue()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Served:
    def __init__(self, service: FakeWorkspace, auth: LocalAuth, clock: Clock, base: str) -> None:
        self.service, self.auth, self.clock, self.base = service, auth, clock, base

    @property
    def login(self) -> str:
        return f"{self.base}/login?token={self.auth.login_token}"


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def served() -> Iterator[Served]:
    import uvicorn

    service, clock = FakeWorkspace(), Clock()
    auth = LocalAuth(Actor("local-tester", "admin"), session_seconds=3600, clock=clock)
    app = create_app(lambda: service, auth, search_factory=FakeSearch,
                     recordings_factory=lambda: FakeRecordings(audio=wav(), content_type="audio/wav"))
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield Served(service, auth, clock, f"http://127.0.0.1:{sock.getsockname()[1]}")
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable,
                                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.add_init_script(WATCH)
    opened = context.new_page()
    yield opened
    context.close()


def problems(page: Any) -> list[str]:
    return list(page.evaluate("window.__problems || []"))


def test_review_edit_sign_audit_erase(served: Served, page: Any) -> None:
    page.goto(served.login)
    assert page.url == f"{served.base}/"
    page.click(f"a[href='/encounters/{ENC}']")
    assert page.url == f"{served.base}/encounters/{ENC}"

    page.click("a.cite[data-line='2']")
    assert page.eval_on_selector("#L2", "line => line.classList.contains('hl')")
    assert page.eval_on_selector("#recording", "audio => audio.currentTime") == pytest.approx(1.6, abs=0.05)

    page.click("#L3 button.play")
    page.wait_for_function("document.getElementById('recording').currentTime >= 3.1")
    assert page.eval_on_selector("#L3", "line => line.classList.contains('hl')")
    for _ in range(100):  # the first play sends its audit beacon (fetch) in the background
        if ("play", ENC) in [(e["action"], e["encounter_id"]) for e in served.service.audit_log]:
            break
        page.wait_for_timeout(50)
    assert ("play", ENC) in [(e["action"], e["encounter_id"]) for e in served.service.audit_log]

    page.click("text=Edit")
    page.fill("textarea[name='s0.c0.text']", "Chest pain climbing stairs")
    page.fill("textarea[name='s1.new.text']", "Review in two weeks")
    page.fill("input[name='s1.new.lines']", "3")
    page.check("input[name='s1.c0.remove']")
    page.click("text=Save as a new version")
    assert page.url == f"{served.base}/encounters/{ENC}"
    assert "Chest pain climbing stairs" in page.inner_text(".note")
    assert "Review in two weeks" in page.inner_text(".note")
    assert "Sign version 1" in page.inner_text(".actions")

    page.click("text=Sign version 1")
    assert page.inner_text(".state") == "SIGNED"
    trail = page.inner_text("section[aria-label='Audit trail']")
    assert "sign" in trail
    assert "edit" in trail
    assert served.service.signed == {ENC: 1}

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("text=Erase encounter")
    assert page.url == f"{served.base}/"
    assert served.service.erased == [ENC]
    assert problems(page) == []


def test_transcript_markup_stays_text(served: Served, page: Any) -> None:
    page.goto(served.login)
    page.goto(f"{served.base}/encounters/{ENC}")
    assert page.inner_text("#L2 .text") == ATTACK
    assert page.query_selector("#L2 script") is None
    assert page.query_selector("#L2 img") is None
    page.goto(f"{served.base}/search?q=pain")
    assert ATTACK in page.inner_text(".snippet")
    assert page.query_selector(".snippet img") is None
    assert problems(page) == []


class Attacker(BaseHTTPRequestHandler):
    """Another site: its page posts a form to the workspace as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        body = (f'<form id="f" method="post" action="{self.target}"><input name="version" value="0">'
                '<input name="csrf" value="guessed"></form>'
                '<script>document.getElementById("f").submit();</script>').encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_forged_cross_site_post_is_refused(served: Served, page: Any) -> None:
    page.goto(served.login)  # the victim is signed in
    Attacker.target = f"{served.base}/encounters/{ENC}/sign"
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        with page.expect_response(Attacker.target) as answered:
            page.goto(f"http://localhost:{attacker.server_address[1]}/")  # another origin (and site)
        assert answered.value.status in (401, 403)
    finally:
        attacker.shutdown()
    assert served.service.signed == {}
    assert [e["action"] for e in served.service.audit_log] == []


def test_an_expired_session_is_refused(served: Served, page: Any) -> None:
    page.goto(served.login)
    assert page.url == f"{served.base}/"
    served.clock.now += 3601
    response = page.goto(f"{served.base}/encounters/{ENC}")
    assert response is not None
    assert response.status == 401
    assert "expired" in page.inner_text("body")
    again = page.goto(served.login)  # the token was used: no new session from it
    assert again is not None
    assert again.status == 401
