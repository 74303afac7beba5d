"""The clinician workspace in a real browser: Playwright drives the system Chromium (`executable_path`,
no browser is downloaded) against the real app, service and recording stream over a moto world with
one documented audio encounter (tests/browser/workspace_fixtures.py).

The flow a clinician follows: list -> open -> click a citation (its transcript line is highlighted)
-> play from a line (the <audio> element jumps to the line's start; the recording arrives by HTTP
Range, 206) -> edit a claim -> save (version 1) -> sign (SIGNED) -> the audit trail on the page
(view, edit, play, sign) -> erase (admin): the encounter is gone, the erasure is in the trail; its
page and API then answer 404.
Uploading: the upload page asks the app for a presigned POST and posts a sample note straight to an S3
endpoint over HTTP (moto's server, as the local runtime's emulator), which the page's CSP lets it reach;
the note lands in the bucket and, once ingested, is in the list; a kind that does not fit the file is refused.
And what an attacker tries: markup planted in a transcript line stays text; a form on another origin
posting to the app (the session cookie goes along: same site) is refused and changes nothing; a used
or forged login link and an expired session are refused.

MEDSCRIBE_SCREENSHOT=<path> writes a screenshot of the signed encounter page there (docs/ holds one).
Needs Chromium and the playwright package (requirements-dev.txt). Without them the tests are skipped,
unless MEDSCRIBE_REQUIRE_BROWSER=1 (set in CI), where they fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.services.ingest import IngestService
from medscribe.services.workspace import NotFound
from medscribe.settings import FunctionSettings
from medscribe.workspace.uploads import S3Uploads
from tests.adapters.conftest import aws, bucket, table  # noqa: F401  (fixtures)
from tests.browser.test_review_page import chromium
from tests.browser.workspace_fixtures import (
    ACTOR,
    PLANTED,
    Workspace,
    free_socket,
    running_workspace,
    serve,
    timed_lines,
)

ROOT = Path(__file__).resolve().parents[2]
NOTE = ROOT / "sample-data" / "text" / "en-ankle-sprain.txt"


def playwright_api() -> Any:
    try:
        from playwright import sync_api
    except ImportError:
        reason = "playwright is not installed: pip install -r requirements-dev.txt"
        if os.environ.get("MEDSCRIBE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_api


@pytest.fixture
def workspace(table: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:  # noqa: F811
    yield from running_workspace(table, bucket, monkeypatch)


@pytest.fixture
def s3_endpoint(aws: None) -> Iterator[str]:  # noqa: F811
    """moto's server on a free loopback port, sharing this process's moto state (the bucket, the table):
    S3 over HTTP with CORS for any origin, as the local runtime's emulator serves it, for the browser's post."""
    from moto.server import ThreadedMotoServer

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def uploading(table: str, bucket: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
              s3_endpoint: str) -> Iterator[Workspace]:
    """The workspace with its upload page, whose forms post to `s3_endpoint` (locally: the emulator)."""

    def uploads(settings: FunctionSettings) -> S3Uploads:
        client = boto3.client("s3", endpoint_url=s3_endpoint,
                              config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
        return S3Uploads(ObjectStore(client), settings.input_bucket, kms_key_id=settings.kms_key_arn,
                         settings=settings.pipeline)

    yield from running_workspace(table, bucket, monkeypatch, uploads=uploads)


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium()
    api = playwright_api()
    with api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    opened = browser.new_context(viewport={"width": 1280, "height": 900})
    opened.set_default_timeout(10_000)
    try:
        yield opened
    finally:
        opened.close()


def signed_in(context: Any, workspace: Workspace) -> Any:
    page = context.new_page()
    response = page.goto(workspace.login_url)
    assert response is not None
    assert response.status == 200
    assert page.url == workspace.url + "/"
    return page


def actions(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("table.audit tbody tr td:nth-child(4)").all_inner_texts()]


def test_list_open_cite_play_edit_save_sign_audit_erase(context: Any, workspace: Workspace) -> None:
    expect = playwright_api().expect
    encounter = workspace.encounter_id
    dialogs: list[tuple[str, str]] = []
    problems: list[str] = []
    recordings: list[tuple[int, str | None, str | None]] = []
    page = signed_in(context, workspace)
    page.on("dialog", lambda dialog: (dialogs.append((dialog.type, dialog.message)), dialog.accept()))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.on("response", lambda r: recordings.append((r.status, r.request.headers.get("range"),
                                                     r.headers.get("content-range")))
            if "/recordings/" in r.url else None)

    # the list, then the encounter
    page.locator("table.encounters a", has_text=encounter).click()
    page.wait_for_url(f"{workspace.url}/encounters/{encounter}")
    expect(page.locator(".meta")).to_contain_text("version 0")
    expect(page.locator(".meta")).to_contain_text("DRAFT")

    # a citation highlights exactly its transcript line
    citations = page.locator("a.cite")
    assert citations.count() > 0
    cited = citations.last
    n = cited.get_attribute("data-line")
    cited.click()
    expect(page.locator(f"#L{n}")).to_have_class(re.compile(r"\bhl\b"))
    assert page.locator("li.line.hl").count() == 1

    # play from a line well into the recording: the player jumps there, streamed by range requests
    line = timed_lines()[11]
    assert line["start"] > 30
    page.locator(f"#L{line['n']} button.play").click()
    expect(page.locator(f"#L{line['n']}")).to_have_class(re.compile(r"\bhl\b"))
    page.wait_for_function("document.getElementById('recording').readyState >= 1")
    at = page.evaluate("document.getElementById('recording').currentTime")
    assert line["start"] <= at < line["start"] + 5, at
    # and it plays from there: the MP3 decodes and time runs on past the line's start
    page.wait_for_function("start => { const p = document.getElementById('recording');"
                           " return !p.paused && p.currentTime > start + 0.5; }", arg=line["start"])
    partial = [r for r in recordings if r[0] == 206]
    assert partial, recordings
    assert all(r[1] and r[2] and r[2].startswith("bytes ") for r in partial), recordings
    assert not [r for r in recordings if r[0] not in (200, 206)], recordings

    # edit a claim and save: version 1, a draft, the new text in the note
    page.get_by_role("link", name="Edit").click()
    page.wait_for_url(f"{workspace.url}/encounters/{encounter}/edit")
    claim = page.locator("textarea[name='s0.c0.text']")
    claim.fill("Breathless on exertion for two months (edited in the browser)")
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_url(f"{workspace.url}/encounters/{encounter}")
    expect(page.locator(".meta")).to_contain_text("version 1")
    expect(page.locator(".note")).to_contain_text("(edited in the browser)")
    expect(page.locator(".versions tbody tr")).to_have_count(2)
    # its citation was checked again: line 2 says nothing of two months, and the page says so by the claim
    expect(page.locator(".note .claim").first).to_have_class(re.compile(r"\bclaim-flagged\b"))
    expect(page.locator(".note .claim").first.locator(".claim-problems")).to_contain_text("Chief complaint item 1")

    # sign it
    page.get_by_role("button", name="Sign version 1").click()
    page.wait_for_url(f"{workspace.url}/encounters/{encounter}")
    expect(page.locator(".meta")).to_contain_text("SIGNED")
    signed = page.locator(".meta div").filter(has=page.locator("dt", has_text=re.compile("^Signed$")))
    expect(signed.locator("dd")).to_have_text("version 1")
    assert page.get_by_role("button", name=re.compile("^Sign version")).count() == 0

    # the audit trail on the page: who did what, no note text
    seen = actions(page)
    for action in ("view", "edit", "play", "sign"):
        assert action in seen, seen
    trail = page.locator("table.audit").inner_text()
    assert ACTOR.actor_id in trail
    assert "edited in the browser" not in trail
    shot = os.environ.get("MEDSCRIBE_SCREENSHOT")
    if shot:
        page.goto(f"{workspace.url}/encounters/{encounter}#L{line['n']}")
        page.locator(f"#L{line['n']}").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ROOT / shot), full_page=True)

    # erase (the page asks first): gone from the list and the service, the trail keeps the erasure
    page.get_by_role("button", name="Erase encounter").click()
    page.wait_for_url(workspace.url + "/")
    assert [kind for kind, _ in dialogs] == ["confirm"]
    assert page.locator("table.encounters a", has_text=encounter).count() == 0
    with pytest.raises(NotFound):
        workspace.service().encounter(ACTOR, encounter)
    page.goto(f"{workspace.url}/audit")
    assert "erase" in actions(page)
    assert problems == []


def test_the_after_visit_summary_is_shown_and_its_citations_highlight_transcript_lines(
        context: Any, workspace: Workspace) -> None:
    expect = playwright_api().expect
    page = signed_in(context, workspace)
    page.goto(f"{workspace.url}/encounters/{workspace.encounter_id}")
    panel = page.locator("section.panel.summary")
    expect(panel.locator("h2")).to_contain_text("After-visit summary: Your visit summary")
    expect(panel.locator("h3").first).to_have_text("Why you came")
    stored = workspace.service().encounter(ACTOR, workspace.encounter_id)["summary"]
    sentences = [s for section in stored["sections"] for s in section["sentences"]]
    assert panel.locator(".claim-text").all_inner_texts() == [s["text"] for s in sentences]
    cite = panel.locator("a.cite").first
    n = cite.get_attribute("data-line")
    assert n == str(sentences[0]["lines"][0])
    cite.click()
    expect(page.locator(f".transcript #L{n}")).to_have_class(re.compile(r"\bhl\b"))
    assert page.locator("li.line.hl").count() == 1


def test_markup_in_a_transcript_line_stays_text(context: Any, workspace: Workspace) -> None:
    page = signed_in(context, workspace)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{workspace.url}/encounters/{workspace.encounter_id}")
    page.wait_for_load_state("load")
    planted = next(line for line in timed_lines() if line["text"] == PLANTED)
    shown = page.locator(f"#L{planted['n']} .text")
    assert shown.inner_text() == PLANTED
    assert page.locator(f"#L{planted['n']} img").count() == 0
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    page.wait_for_timeout(300)  # an onerror handler would have run by now
    assert dialogs == []
    # the header shows the real service's record (it once read a key only the test fake had)
    assert page.locator(".encounter-head .status").inner_text().strip() in {"DOCUMENTED", "NEEDS_REVIEW"}
    assert page.locator(".encounter-head .meta dd").first.inner_text().strip() == "audio"


def test_an_erased_encounter_is_a_404_on_the_page_and_in_the_api(context: Any, workspace: Workspace) -> None:
    page = signed_in(context, workspace)
    page.goto(f"{workspace.url}/encounters/{workspace.encounter_id}")
    page.on("dialog", lambda dialog: dialog.accept())  # "Erase this encounter everywhere?"
    page.get_by_role("button", name="Erase encounter").click()
    page.wait_for_url(workspace.url + "/")
    response = page.goto(f"{workspace.url}/encounters/{workspace.encounter_id}")
    assert response is not None
    assert response.status == 404
    api = page.request.get(f"{workspace.url}/api/encounters/{workspace.encounter_id}")
    assert api.status == 404
    assert api.json()["kind"] == "NotFound"


ATTACKER_PAGE = """<!DOCTYPE html><html><body>
<form id="erase" method="post" action="{app}/encounters/{id}/erase">
  <input type="hidden" name="csrf" value="guessed"><button type="submit">Win a prize</button>
</form>
<form id="sign" method="post" action="{app}/encounters/{id}/sign">
  <input type="hidden" name="csrf" value="guessed"><input type="hidden" name="version" value="0">
  <button type="submit">Claim it</button>
</form>
</body></html>"""


def test_a_forged_cross_site_post_is_refused_and_changes_nothing(context: Any, workspace: Workspace) -> None:
    page = signed_in(context, workspace)

    async def attacker(request: Request) -> HTMLResponse:
        return HTMLResponse(ATTACKER_PAGE.format(app=workspace.url, id=workspace.encounter_id))

    with serve(Starlette(routes=[Route("/", attacker)])) as elsewhere:
        assert elsewhere != workspace.url  # another origin (another port) on the same site: the cookie goes along
        for form in ("erase", "sign"):
            page.goto(elsewhere + "/")
            with page.expect_navigation() as navigation:
                page.locator(f"#{form} button").click()
            response = navigation.value
            assert response is not None
            assert response.url.startswith(workspace.url)
            assert response.status == 403, (form, response.status)  # not 401: the session cookie was sent
            assert "cross-origin request refused" in page.inner_text("body")
    view = workspace.service().encounter(ACTOR, workspace.encounter_id)
    assert view["version"]["version"] == 0
    assert view["version"]["state"] == "DRAFT"
    assert view["signed_version"] is None
    trail = workspace.service().audit_for_encounter(ACTOR, workspace.encounter_id).items
    assert {event["action"] for event in trail} <= {"view"}


def test_a_used_or_forged_login_link_and_an_expired_session_are_refused(browser: Any, workspace: Workspace) -> None:
    first = browser.new_context()
    second = browser.new_context()
    try:
        page = signed_in(first, workspace)
        assert page.locator("table.encounters a", has_text=workspace.encounter_id).count() == 1

        other = second.new_page()
        response = other.goto(workspace.login_url)  # the link again, in another browser profile
        assert response is not None
        assert response.status == 401
        assert "already used" in other.inner_text("body")
        response = other.goto(f"{workspace.url}/login?token=forged-{workspace.login_token[:8]}")
        assert response is not None
        assert response.status == 401
        response = other.goto(f"{workspace.url}/encounters/{workspace.encounter_id}")
        assert response is not None
        assert response.status == 401
        assert second.cookies() == []

        workspace.clock.now += 3601  # the session (one hour here) has run out
        response = page.goto(f"{workspace.url}/encounters/{workspace.encounter_id}")
        assert response is not None
        assert response.status == 401
        assert "expired" in page.inner_text("body")
        api = page.request.get(f"{workspace.url}/api/encounters")
        assert api.status == 401
    finally:
        first.close()
        second.close()


def _edit_the_first_claim(page: Any, workspace: Workspace, text: str) -> None:
    page.goto(f"{workspace.url}/encounters/{workspace.encounter_id}/edit")
    page.locator("textarea[name='s0.c0.text']").fill(text)
    page.get_by_role("button", name="Save as a new version").click()


def test_an_expired_session_is_renewed_once_before_a_form_is_sent(context: Any, workspace: Workspace) -> None:
    """In AWS an expired access token is a 403 from API Gateway's authorizer. Here the first GET
    /api/session is answered that way and GET /auth/refresh (Cognito's token exchange, tested with the
    sign-in routes) is stood in for: the script trades the token once, then sends the form."""
    expect = playwright_api().expect
    calls: list[str] = []
    page = signed_in(context, workspace)

    def gateway(route: Any) -> None:
        calls.append("session")
        if calls.count("session") == 1:
            route.fulfill(status=403, content_type="application/json", body='{"message":"Forbidden"}')
        else:
            route.continue_()

    def refresh(route: Any) -> None:
        calls.append("refresh " + route.request.url.split("?", 1)[1])
        route.fulfill(status=200, content_type="application/json", body="{}")

    page.route(re.compile(r"/api/session$"), gateway)
    page.route(re.compile(r"/auth/refresh\?"), refresh)
    _edit_the_first_claim(page, workspace, "Saved after the session was renewed")
    page.wait_for_url(f"{workspace.url}/encounters/{workspace.encounter_id}")
    expect(page.locator(".meta")).to_contain_text("version 1")
    expect(page.locator(".note")).to_contain_text("Saved after the session was renewed")
    assert calls == ["session", "refresh next=%2Fapi%2Fsession"]


def test_a_form_is_kept_when_the_session_cannot_be_renewed(context: Any, workspace: Workspace) -> None:
    expect = playwright_api().expect
    page = signed_in(context, workspace)
    refused = {"status": 403, "content_type": "application/json", "body": '{"message":"Forbidden"}'}
    page.route(re.compile(r"/api/session$"), lambda route: route.fulfill(**refused))
    page.route(re.compile(r"/auth/refresh\?"), lambda route: route.fulfill(**refused))
    _edit_the_first_claim(page, workspace, "Typed while the session had run out")
    expect(page.locator(".session-expired")).to_contain_text("Your session has expired")
    assert page.url == f"{workspace.url}/encounters/{workspace.encounter_id}/edit"
    assert page.locator("textarea[name='s0.c0.text']").input_value() == "Typed while the session had run out"
    versions = workspace.service().encounter(ACTOR, workspace.encounter_id)["versions"]
    assert [v["version"] for v in versions] == [0]


def test_a_note_uploaded_on_the_page_lands_in_the_bucket_and_reaches_the_list(context: Any, uploading: Workspace,
                                                                              bucket: str, table: str) -> None:  # noqa: F811
    expect = playwright_api().expect
    problems: list[str] = []
    page = signed_in(context, uploading)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.get_by_role("link", name="Upload").click()
    page.wait_for_url(f"{uploading.url}/upload")
    s3 = boto3.client("s3")

    # a note offered as a recording: the app refuses the form, nothing reaches the bucket
    page.locator("input[name=folder]").fill("clinic-b")
    page.locator("input[name=file]").set_input_files(str(NOTE))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("Upload failed: a file of kind audio must end in one of")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="audio/clinic-b/")

    # as a text note: the form comes from the app, the file goes to the bucket, the page says where
    page.locator("select[name=kind]").select_option("text")
    page.get_by_role("button", name="Upload", exact=True).click()
    key = f"text/clinic-b/{NOTE.name}"
    expect(page.locator("#upload-status")).to_contain_text(f"Uploaded as {key}.")
    assert page.evaluate("document.getElementById('upload-progress').value") == 100
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == NOTE.read_bytes()
    assert stored["ContentType"] == "text/plain; charset=utf-8"

    # the pipeline's ingest registers it (S3's notification, here by hand): it is in the list, in its folder
    ref = ObjectStore().latest(bucket, key)
    assert ref is not None
    IngestService(EncounterRepository(table), ObjectStore(), uploading.settings.pipeline).ingest(ref)
    page.locator("#upload-list").click()
    page.wait_for_url(f"{uploading.url}/?folder=text%2Fclinic-b")
    expect(page.locator("table.encounters a", has_text=ref.encounter_id)).to_have_count(1)

    # the form was audited as an upload, without the file name
    page.goto(f"{uploading.url}/audit")
    assert actions(page).count("upload") == 1
    assert "ankle" not in page.locator("table.audit").inner_text()
    assert problems == []
