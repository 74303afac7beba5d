"""The workspace web application (medscribe.workspace): every API route's success and refusals
(401 without a session, 403 for a clinician on admin routes, 404, 409 on a stale or signed version),
CSRF and origin refusals, the one-time login token, session expiry, the AWS identity from the JWT
authorizer's claims (through Mangum, with a real HTTP API event shape), the security headers and
escaping of transcript markup, against an in-memory service that keeps the service's rules
(versions, stale edits, immutable signed versions, admin-only audit and erasure)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from mangum import Mangum
from starlette.testclient import TestClient

from medscribe.adapters.cognito_signin import (
    ACCESS_COOKIE,
    CALLBACK_PATH,
    LOGIN_PATH,
    REFRESH_PATH,
    SIGNIN_COOKIE,
    SignInFailed,
    Tokens,
    challenge,
)
from medscribe.workspace.app import create_app
from medscribe.workspace.auth import (
    AWS_CSRF_COOKIE,
    LOCAL_SESSION_COOKIE,
    GatewayAuth,
    LocalAuth,
    groups_claim,
    local_actor,
)
from medscribe.workspace.pages import byte_range, note_from_form
from medscribe.workspace.ports import Actor, BadRequest
from tests import FIXTURES
from tests.workspace_fakes import ATTACK, AUDIO, ENC, OTHER, FakeRecordings, FakeSearch, FakeWorkspace

BASE = "http://testserver"

class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service() -> FakeWorkspace:
    return FakeWorkspace()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local(service: FakeWorkspace, clock: Clock) -> tuple[TestClient, LocalAuth]:
    auth = LocalAuth(Actor("local-tester", "admin"), session_seconds=3600, clock=clock)
    app = create_app(lambda: service, auth, search_factory=FakeSearch, recordings_factory=FakeRecordings)
    return TestClient(app, base_url=BASE, follow_redirects=False), auth


def login(client: TestClient, auth: LocalAuth) -> str:
    """Sign in with the one-time token; the session's CSRF token."""
    response = client.get(f"/login?token={auth.login_token}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    session = client.get("/api/session")
    assert session.status_code == 200
    return str(session.json()["csrf"])


@pytest.fixture
def admin(local: tuple[TestClient, LocalAuth]) -> tuple[TestClient, str]:
    client, auth = local
    return client, login(client, auth)


def write(client: TestClient, method: str, path: str, csrf: str | None, body: Any = None,
          origin: str | None = BASE) -> Any:
    headers = {"content-type": "application/json"}
    if csrf is not None:
        headers["x-csrf-token"] = csrf
    if origin is not None:
        headers["origin"] = origin
    return client.request(method, path, content=json.dumps(body) if body is not None else None, headers=headers)


# --- local login --------------------------------------------------------------------------------

def test_the_login_token_is_exchanged_once_for_an_httponly_strict_cookie(local: tuple[TestClient, LocalAuth]) -> None:
    client, auth = local
    response = client.get(f"/login?token={auth.login_token}")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{LOCAL_SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    assert client.get("/api/encounters").status_code == 200
    stranger = TestClient(client.app, base_url=BASE, follow_redirects=False)
    reused = stranger.get(f"/login?token={auth.login_token}")
    assert reused.status_code == 401
    assert stranger.get("/api/encounters").status_code == 401


def test_a_wrong_token_is_refused_and_leaves_the_right_one_usable(local: tuple[TestClient, LocalAuth]) -> None:
    client, auth = local
    assert client.get("/login?token=guess").status_code == 401
    assert client.get("/login").status_code == 401
    assert client.get(f"/login?token={auth.login_token}").status_code == 303


def test_an_expired_session_is_refused(local: tuple[TestClient, LocalAuth], clock: Clock) -> None:
    client, auth = local
    login(client, auth)
    clock.now += 3601
    response = client.get("/api/encounters")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]
    assert client.get("/").status_code == 401


def test_a_tampered_or_foreign_session_cookie_is_refused(local: tuple[TestClient, LocalAuth]) -> None:
    client, auth = local
    login(client, auth)
    value = client.cookies[LOCAL_SESSION_COOKIE]
    body, signature = value.rsplit(".", 1)
    client.cookies.clear()
    client.cookies.set(LOCAL_SESSION_COOKIE, body + "x." + signature)
    assert client.get("/api/encounters").status_code == 401
    client.cookies.clear()
    for junk in ("\u00e9.x".encode(), b"nodot", b".", b"a.b.c"):
        assert client.get("/api/encounters", headers={"cookie": LOCAL_SESSION_COOKIE.encode() + b"=" + junk}
                          ).status_code == 401
    other = LocalAuth(Actor("local-tester", "admin"))  # another server process: another secret
    client.cookies.clear()
    client.cookies.set(LOCAL_SESSION_COOKIE, other.exchange(other.login_token))
    assert client.get("/api/encounters").status_code == 401


@pytest.mark.parametrize(("target", "landing"), [
    (f"/encounters/{ENC}", f"/encounters/{ENC}"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("", "/")])
def test_login_lands_on_a_path_of_this_app_only(local: tuple[TestClient, LocalAuth], target: str,
                                                 landing: str) -> None:
    client, auth = local
    response = client.get("/login", params={"token": auth.login_token, "next": target})
    assert response.status_code == 303
    assert response.headers["location"] == landing


def test_logout_ends_the_session(admin: tuple[TestClient, str]) -> None:
    client, csrf = admin
    cookie = client.cookies[LOCAL_SESSION_COOKIE]
    assert client.post("/logout", data={"csrf": csrf}, headers={"origin": BASE}).status_code == 200
    client.cookies.clear()
    client.cookies.set(LOCAL_SESSION_COOKIE, cookie)  # even a copy of the cookie is refused afterwards
    assert client.get("/api/encounters").status_code == 401


# --- every route needs a session ----------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/encounters"), ("GET", f"/api/encounters/{ENC}"), ("PUT", f"/api/encounters/{ENC}/note"),
    ("POST", f"/api/encounters/{ENC}/sign"), ("GET", f"/api/encounters/{ENC}/audit"), ("GET", "/api/audit"),
    ("GET", "/api/audit.csv"), ("GET", "/api/search?q=pain"), ("DELETE", f"/api/encounters/{ENC}"),
    ("GET", "/"), ("GET", "/search"), ("GET", f"/encounters/{ENC}"), ("GET", f"/encounters/{ENC}/edit"),
    ("POST", f"/encounters/{ENC}/sign"), ("GET", "/audit"), ("GET", f"/recordings/{ENC}"),
    ("GET", "/static/workspace.js"), ("GET", "/api/session"),
])
def test_without_a_session_every_route_is_401(local: tuple[TestClient, LocalAuth], method: str, path: str,
                                              service: FakeWorkspace) -> None:
    client, _ = local
    response = client.request(method, path)
    assert response.status_code == 401
    assert service.audit_log == []
    assert service.erased == []


# --- the API ------------------------------------------------------------------------------------

def test_list_encounters_pages_with_a_cursor(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    first = client.get("/api/encounters?limit=1").json()
    assert [item["encounter_id"] for item in first["items"]] == [ENC]
    assert first["next"]
    second = client.get(f"/api/encounters?limit=1&cursor={first['next']}").json()
    assert [item["encounter_id"] for item in second["items"]] == [OTHER]
    assert second["next"] is None
    assert client.get("/api/encounters?status=FAILED").json() == {"items": [], "next": None}


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1000"])
def test_a_bad_limit_is_400(admin: tuple[TestClient, str], limit: str) -> None:
    client, _ = admin
    assert client.get(f"/api/encounters?limit={limit}").status_code == 400


def test_get_encounter_and_404(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    found = client.get(f"/api/encounters/{ENC}").json()
    assert found["note"]["version"] == 0
    assert found["lines"][1]["text"] == ATTACK
    assert client.get("/api/encounters/enc-missing").status_code == 404


def test_save_note_makes_a_version_and_a_stale_version_is_409(admin: tuple[TestClient, str],
                                                                service: FakeWorkspace) -> None:
    client, csrf = admin
    note = {"sections": [{"name": "Plan", "items": [{"text": "Exercise stress test", "lines": [3]}]}]}
    saved = write(client, "PUT", f"/api/encounters/{ENC}/note", csrf, {"version": 0, "note": note})
    assert saved.status_code == 200
    assert saved.json()["version"] == 1
    stale = write(client, "PUT", f"/api/encounters/{ENC}/note", csrf, {"version": 0, "note": note})
    assert stale.status_code == 409
    assert stale.json()["current"] == 1
    assert write(client, "PUT", "/api/encounters/enc-missing/note", csrf, {"version": 0, "note": note}
                 ).status_code == 404
    assert [e["action"] for e in service.audit_log] == ["edit"]


@pytest.mark.parametrize("body", [{"note": {"sections": []}}, {"version": "1", "note": {}}, {"version": 0},
                                  {"version": True, "note": {}}, [1, 2]])
def test_a_malformed_note_request_is_400(admin: tuple[TestClient, str], body: Any) -> None:
    client, csrf = admin
    assert write(client, "PUT", f"/api/encounters/{ENC}/note", csrf, body).status_code == 400


def test_an_invalid_edit_is_400(admin: tuple[TestClient, str]) -> None:
    client, csrf = admin
    response = write(client, "PUT", f"/api/encounters/{ENC}/note", csrf,
                     {"version": 0, "note": {"sections": [{"items": []}]}})
    assert response.status_code == 400


def test_sign_then_a_signed_version_is_immutable_until_amended(admin: tuple[TestClient, str]) -> None:
    client, csrf = admin
    signed = write(client, "POST", f"/api/encounters/{ENC}/sign", csrf, {"version": 0})
    assert signed.status_code == 200
    assert signed.json()["state"] == "SIGNED"
    assert write(client, "POST", f"/api/encounters/{ENC}/sign", csrf, {"version": 0}).status_code == 409
    note = {"sections": [{"name": "Plan", "items": []}]}
    assert write(client, "PUT", f"/api/encounters/{ENC}/note", csrf, {"version": 0, "note": note}).status_code == 409
    amended = write(client, "PUT", f"/api/encounters/{ENC}/note", csrf,
                    {"version": 0, "note": note, "amend_reason": "wrong test ordered"})
    assert amended.status_code == 200
    assert amended.json() == {**amended.json(), "version": 1, "state": "DRAFT"}
    assert write(client, "POST", f"/api/encounters/{ENC}/sign", csrf, {"version": 0}).status_code == 409
    assert write(client, "POST", "/api/encounters/enc-missing/sign", csrf, {"version": 0}).status_code == 404


def test_encounter_audit_lists_the_actions(admin: tuple[TestClient, str]) -> None:
    client, csrf = admin
    client.get(f"/api/encounters/{ENC}")
    write(client, "POST", f"/api/encounters/{ENC}/sign", csrf, {"version": 0})
    page = client.get(f"/api/encounters/{ENC}/audit").json()
    assert [(e["action"], e["actor_id"]) for e in page["items"]] == [("view", "local-tester"), ("sign", "local-tester")]
    assert client.get("/api/encounters/enc-missing/audit").status_code == 404


def test_admin_audit_csv_and_erase(admin: tuple[TestClient, str], service: FakeWorkspace) -> None:
    client, csrf = admin
    client.get(f"/api/encounters/{ENC}")
    assert [e["action"] for e in client.get("/api/audit?actor=local-tester").json()["items"]] == ["view"]
    assert client.get("/api/audit?actor=someone-else").json()["items"] == []
    csv = client.get("/api/audit.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert ",view," in csv.text
    erased = write(client, "DELETE", f"/api/encounters/{ENC}", csrf)
    assert erased.status_code == 200
    assert erased.json() == {"erased": [ENC]}
    assert write(client, "DELETE", f"/api/encounters/{ENC}", csrf).status_code == 404


def test_search_returns_hits_and_needs_a_query(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    hits = client.get("/api/search?q=pain").json()["items"]
    assert hits[0]["encounter_id"] == ENC
    assert ATTACK in hits[0]["snippet"]
    assert client.get("/api/search?q=").status_code == 400


# --- CSRF and origin ----------------------------------------------------------------------------

def test_an_api_write_without_the_csrf_token_is_refused(admin: tuple[TestClient, str],
                                                         service: FakeWorkspace) -> None:
    client, csrf = admin
    for token in (None, "wrong", csrf[:-1]):
        response = write(client, "POST", f"/api/encounters/{ENC}/sign", token, {"version": 0})
        assert response.status_code == 403
        assert "CSRF" in response.json()["error"]
    assert write(client, "DELETE", f"/api/encounters/{ENC}", None).status_code == 403
    assert service.audit_log == []
    assert service.erased == []


def test_a_forged_cross_site_form_post_is_refused(admin: tuple[TestClient, str], service: FakeWorkspace) -> None:
    """What another site's auto-submitting form sends: the cookie rides along, but the Origin is the
    attacker's and there is no (or a guessed) token."""
    client, csrf = admin
    forged = client.post(f"/encounters/{ENC}/sign", data={"version": "0"}, headers={"origin": "https://evil.example"})
    assert forged.status_code == 403
    with_token = client.post(f"/encounters/{ENC}/erase", data={"csrf": csrf},
                             headers={"origin": "https://evil.example"})
    assert with_token.status_code == 403  # even with a stolen token: the origin is not ours
    by_referer = client.post(f"/encounters/{ENC}/sign", data={"version": "0", "csrf": csrf},
                             headers={"referer": "https://evil.example/page"})
    assert by_referer.status_code == 403
    no_token = client.post(f"/encounters/{ENC}/sign", data={"version": "0"}, headers={"origin": BASE})
    assert no_token.status_code == 403
    assert service.audit_log == []
    assert service.erased == []
    assert service.versions[ENC][0]["state"] == "DRAFT"


def test_a_same_origin_form_post_with_the_token_signs(admin: tuple[TestClient, str], service: FakeWorkspace) -> None:
    client, csrf = admin
    response = client.post(f"/encounters/{ENC}/sign", data={"version": "0", "csrf": csrf}, headers={"origin": BASE})
    assert response.status_code == 303
    assert response.headers["location"] == f"/encounters/{ENC}"
    assert service.versions[ENC][0]["state"] == "SIGNED"


# --- roles (AWS: the Lambda authorizer's context through Mangum) ----------------------------------

def _event(method: str, path: str, groups: Any, *, sub: str = "0f1e2d3c-clinician", body: Any = None,
           headers: dict[str, str] | None = None, cookies: list[str] | None = None) -> dict[str, Any]:
    event = json.loads((FIXTURES / "events" / "apiGatewayProxyV2LambdaAuthorizerEvent.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = ""
    event.pop("queryStringParameters", None)
    context: dict[str, Any] = {"sub": sub} if sub else {}
    if groups is not None:
        context["groups"] = groups
    event["requestContext"]["authorizer"]["lambda"] = context
    event["headers"] = {"host": event["requestContext"]["domainName"], "x-forwarded-proto": "https",
                        "content-type": "application/json", **(headers or {})}
    event["cookies"] = cookies or []
    event["body"] = json.dumps(body) if body is not None else None
    return event


@pytest.fixture
def lambda_handler(service: FakeWorkspace) -> Mangum:
    app = create_app(lambda: service, GatewayAuth(FakeSignIn()), search_factory=FakeSearch,
                     recordings_factory=lambda: FakeRecordings("https://in.s3.us-east-1.amazonaws.com/x?X-Amz-Signature=s"))
    return Mangum(app, lifespan="off")


def test_api_gateway_lists_claims_as_a_bracketed_string() -> None:
    assert groups_claim("admin clinician") == ["admin", "clinician"]
    assert groups_claim(["clinician"]) == ["clinician"]
    assert groups_claim("clinician") == ["clinician"]
    assert groups_claim(None) == []


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/audit"), ("GET", "/api/audit.csv"),
                                               ("DELETE", f"/api/encounters/{ENC}"), ("GET", "/audit")])
def test_a_clinician_gets_403_on_admin_routes(lambda_handler: Mangum, service: FakeWorkspace, method: str,
                                              path: str) -> None:
    csrf = "c" * 43
    response = lambda_handler(_event(method, path, "clinician", cookies=[f"{AWS_CSRF_COOKIE}={csrf}"],
                                     headers={"x-csrf-token": csrf, "origin": "https://id.execute-api.us-east-1.amazonaws.com"}),
                              None)
    assert response["statusCode"] == 403
    assert service.erased == []
    assert ENC in service.versions


def test_a_clinician_reads_and_an_admin_erases_through_mangum(lambda_handler: Mangum,
                                                                service: FakeWorkspace) -> None:
    read = lambda_handler(_event("GET", f"/api/encounters/{ENC}", "clinician"), None)
    assert read["statusCode"] == 200
    assert json.loads(read["body"])["note"]["version"] == 0
    assert service.audit_log[-1]["actor_id"] == "0f1e2d3c-clinician"
    assert service.audit_log[-1]["role"] == "clinician"
    minted = [c for c in read.get("cookies", []) if c.startswith(f"{AWS_CSRF_COOKIE}=")]
    assert minted
    assert "Secure" in minted[0]
    assert "SameSite=Strict" in minted[0]
    csrf = minted[0].split(";")[0].split("=", 1)[1]
    origin = "https://id.execute-api.us-east-1.amazonaws.com"
    erased = lambda_handler(_event("DELETE", f"/api/encounters/{ENC}", "admin clinician", sub="admin-sub",
                                   cookies=[f"{AWS_CSRF_COOKIE}={csrf}"],
                                   headers={"x-csrf-token": csrf, "origin": origin}), None)
    assert erased["statusCode"] == 200
    assert service.erased == [ENC]
    assert service.audit_log[-1] == {**service.audit_log[-1], "actor_id": "admin-sub", "role": "admin"}


def test_aws_without_claims_is_401_and_without_a_group_403(lambda_handler: Mangum) -> None:
    assert lambda_handler(_event("GET", "/api/encounters", None, sub=""), None)["statusCode"] == 401
    assert lambda_handler(_event("GET", "/api/encounters", None), None)["statusCode"] == 403
    assert lambda_handler(_event("GET", "/api/encounters", "visitors"), None)["statusCode"] == 403


def test_aws_writes_need_the_cookie_token_echoed(lambda_handler: Mangum, service: FakeWorkspace) -> None:
    origin = "https://id.execute-api.us-east-1.amazonaws.com"
    no_cookie = _event("POST", f"/api/encounters/{ENC}/sign", "clinician", body={"version": 0},
                       headers={"x-csrf-token": "d" * 43, "origin": origin})
    assert lambda_handler(no_cookie, None)["statusCode"] == 403  # a fresh cookie is minted, never the offered value
    signed = _event("POST", f"/api/encounters/{ENC}/sign", "clinician", body={"version": 0},
                    cookies=[f"{AWS_CSRF_COOKIE}={'d' * 43}"], headers={"x-csrf-token": "d" * 43, "origin": origin})
    assert lambda_handler(signed, None)["statusCode"] == 200
    assert service.versions[ENC][0]["state"] == "SIGNED"


def test_the_aws_encounter_page_lets_media_come_from_the_presigned_host(lambda_handler: Mangum) -> None:
    response = lambda_handler(_event("GET", f"/encounters/{ENC}", "clinician"), None)
    assert response["statusCode"] == 200
    policy = response["headers"]["content-security-policy"]
    assert "media-src 'self' https://in.s3.us-east-1.amazonaws.com;" in policy
    assert "script-src 'self';" in policy
    assert 'src="https://in.s3.us-east-1.amazonaws.com/x?X-Amz-Signature=s"' in response["body"]


# --- pages --------------------------------------------------------------------------------------

def test_every_response_carries_a_strict_csp_and_no_inline_script(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    for path in ("/", f"/encounters/{ENC}", f"/encounters/{ENC}/edit", "/search?q=pain", "/audit",
                 "/api/encounters"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert policy.startswith("default-src 'self'")
        assert "script-src 'self';" in policy
        assert "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        if response.headers["content-type"].startswith("text/html"):
            scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, flags=re.DOTALL)
            assert scripts
            assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
            assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", response.text), "an inline event handler"
    assert client.get("/static/workspace.js").status_code == 200


def test_transcript_markup_stays_text(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    for path in (f"/encounters/{ENC}", "/search?q=pain"):
        html = client.get(path).text
        assert ATTACK not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_encounter_page_links_citations_to_lines_and_offers_audio(admin: tuple[TestClient, str],
                                                                       service: FakeWorkspace) -> None:
    client, csrf = admin
    html = client.get(f"/encounters/{ENC}").text
    assert '<a class="cite" href="#L2" data-line="2">[2]</a>' in html
    assert 'id="L2" data-start="1.6"' in html
    assert '<span class="cite-missing" title="not a line of this transcript">[99]</span>' in html
    assert f'<audio id="recording" controls preload="metadata" src="/recordings/{ENC}" data-encounter="{ENC}">' in html
    assert f'name="csrf" value="{csrf}"' in html
    assert "Sign version 0" in html
    assert ">view<" in html  # the audit trail on the page shows this very view
    assert "Erase encounter" in html
    assert service.audit_log[-1]["action"] == "view"


def test_the_edit_form_round_trips_into_a_new_version(admin: tuple[TestClient, str], service: FakeWorkspace) -> None:
    client, csrf = admin
    html = client.get(f"/encounters/{ENC}/edit").text
    assert 'name="s0.name" value="Chief complaint"' in html
    assert 'name="s1.c0.lines" value="3, 99"' in html
    form = {"csrf": csrf, "version": "0", "s0.name": "Chief complaint", "s0.c0.text": "Chest pain on stairs",
            "s0.c0.lines": "2", "s0.new.text": "", "s0.new.lines": "", "s1.name": "Plan", "s1.c0.text": "Stress test",
            "s1.c0.lines": "3, 99", "s1.c0.remove": "1", "s1.new.text": "Follow up in 2 weeks", "s1.new.lines": "3"}
    response = client.post(f"/encounters/{ENC}/edit", data=form, headers={"origin": BASE})
    assert response.status_code == 303
    saved = service.versions[ENC][-1]
    assert saved["version"] == 1
    assert saved["sections"] == [
        {"name": "Chief complaint", "items": [{"text": "Chest pain on stairs", "lines": [2]}]},
        {"name": "Plan", "items": [{"text": "Follow up in 2 weeks", "lines": [3]}]}]
    stale = client.post(f"/encounters/{ENC}/edit", data=form, headers={"origin": BASE})
    assert stale.status_code == 409
    assert "the note is at version 1; reload and edit that version" in stale.text


def test_the_form_parser_refuses_line_numbers_that_are_not_numbers() -> None:
    with pytest.raises(BadRequest):
        note_from_form({"s0.name": ["Plan"], "s0.c0.text": ["x"], "s0.c0.lines": ["two"]})


def test_admin_pages_are_403_for_a_clinician(service: FakeWorkspace) -> None:
    auth = LocalAuth(Actor("local-clinician", "clinician"))
    client = TestClient(create_app(lambda: service, auth), base_url=BASE, follow_redirects=False)
    csrf = login(client, auth)
    assert client.get("/audit").status_code == 403
    assert client.get("/api/audit").status_code == 403
    assert client.post(f"/encounters/{ENC}/erase", data={"csrf": csrf}, headers={"origin": BASE}).status_code == 403
    assert "Erase encounter" not in client.get(f"/encounters/{ENC}").text
    assert ENC in service.versions


def test_an_unknown_encounter_page_is_404(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    assert client.get("/encounters/enc-missing").status_code == 404


# --- the recording stream -----------------------------------------------------------------------

def test_the_recording_is_served_in_ranges(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    part = client.get(f"/recordings/{ENC}", headers={"range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == AUDIO[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(AUDIO)}"
    assert part.headers["accept-ranges"] == "bytes"
    tail = client.get(f"/recordings/{ENC}", headers={"range": "bytes=-10"})
    assert tail.content == AUDIO[-10:]
    whole = client.get(f"/recordings/{ENC}")
    assert whole.status_code == 200
    assert whole.content == AUDIO
    beyond = client.get(f"/recordings/{ENC}", headers={"range": f"bytes={len(AUDIO)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(AUDIO)}"
    assert client.get(f"/recordings/{OTHER}").status_code == 404


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-", (0, 999)), ("bytes=5-9", (5, 9)), ("bytes=-3", (997, 999)), ("bytes=990-5000", (990, 999)),
    ("bytes=1000-", None), ("bytes=9-5", None), ("bytes=-", None), ("items=0-1", None), ("bytes=0-1,5-6", None),
])
def test_byte_ranges(header: str, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 1000) == expected


def test_the_local_actor_is_an_admin_named_after_the_os_user() -> None:
    assert local_actor("alice") == Actor("local-alice", "admin")
    assert local_actor("Jane Doe@corp").actor_id == "local-Jane-Doe-corp"  # fits the audit's actor id pattern


def test_searching_and_playing_are_audited_without_text(admin: tuple[TestClient, str], service: FakeWorkspace) -> None:
    client, csrf = admin
    client.get("/search?q=chest+pain")
    client.get("/api/search?q=chest")
    assert write(client, "POST", f"/api/encounters/{ENC}/play", csrf).status_code == 204
    assert write(client, "POST", f"/api/encounters/{ENC}/play", None).status_code == 403
    assert [(e["action"], e["encounter_id"]) for e in service.audit_log] == [
        ("search", None), ("search", None), ("play", ENC)]
    assert "chest" not in json.dumps(service.audit_log)


def test_the_list_page_filters_by_kind_and_pages(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    assert "No encounters match" in client.get("/?kind=text").text
    first = client.get("/").text
    assert ENC in first
    assert "Next page" not in first  # two encounters fit the page's 25
    assert '<option value="audio">' in first


def test_a_signed_note_is_amended_with_a_reason_in_the_form(admin: tuple[TestClient, str],
                                                              service: FakeWorkspace) -> None:
    client, csrf = admin
    write(client, "POST", f"/api/encounters/{ENC}/sign", csrf, {"version": 0})
    page = client.get(f"/encounters/{ENC}").text
    assert "Sign version" not in page
    assert ">Amend<" in page
    form_html = client.get(f"/encounters/{ENC}/edit").text
    assert 'name="amend_reason"' in form_html
    form = {"csrf": csrf, "version": "0", "s0.name": "Chief complaint", "s0.c0.text": "Chest pain", "s0.c0.lines": "2",
            "s1.name": "Plan", "amend_reason": ""}
    assert client.post(f"/encounters/{ENC}/edit", data=form, headers={"origin": BASE}).status_code == 409
    form["amend_reason"] = "plan recorded in the wrong note"
    assert client.post(f"/encounters/{ENC}/edit", data=form, headers={"origin": BASE}).status_code == 303
    assert service.audit_log[-1]["action"] == "amend"


# --- sign-in (AWS: the only two routes API Gateway lets through without the authorizer) ------------

class FakeSignIn:
    """Cognito's hosted UI and token endpoint as the app sees them; records the exchanges asked for."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.exchanged: list[dict[str, str]] = []

    def authorize_url(self, *, redirect_uri: str, state: str, verifier: str) -> str:
        query = urlencode({"redirect_uri": redirect_uri, "state": state, "code_challenge": challenge(verifier)})
        return f"https://pool.auth.us-east-1.amazoncognito.com/oauth2/authorize?{query}"

    def exchange(self, *, code: str, redirect_uri: str, verifier: str) -> Tokens:
        self.exchanged.append({"code": code, "redirect_uri": redirect_uri, "verifier": verifier})
        if self.refuse:
            raise SignInFailed("the token endpoint answered 400")
        return Tokens("header.payload.signature", 3600)


def _signin_handler(service: FakeWorkspace, signin: FakeSignIn) -> Mangum:
    return Mangum(create_app(lambda: service, GatewayAuth(signin), search_factory=FakeSearch), lifespan="off")


def _unauthorized(method: str, path: str, query: str = "", cookies: list[str] | None = None) -> dict[str, Any]:
    """A request on a route without the authorizer: no `authorizer` in the request context at all."""
    event = _event(method, path, None, sub="", cookies=cookies)
    del event["requestContext"]["authorizer"]
    event["rawQueryString"] = query
    return event


def _cookie(response: dict[str, Any], name: str) -> str:
    (found,) = [c for c in response.get("cookies", []) if c.startswith(f"{name}=")]
    return str(found)


def test_login_sends_the_browser_to_the_hosted_ui_with_state_and_a_pkce_challenge(service: FakeWorkspace) -> None:
    response = _signin_handler(service, FakeSignIn())(_unauthorized("GET", LOGIN_PATH), None)
    assert response["statusCode"] == 303
    location = urlsplit(response["headers"]["location"])
    query = parse_qs(location.query)
    pending = _cookie(response, SIGNIN_COOKIE)
    state, _, verifier = pending.split(";")[0].split("=", 1)[1].partition(".")
    assert query["state"] == [state]
    assert query["code_challenge"] == [challenge(verifier)]
    assert query["redirect_uri"] == ["https://id.execute-api.us-east-1.amazonaws.com/auth/callback"]
    assert len(verifier) >= 43
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute in pending


def test_the_callback_exchanges_the_code_with_the_verifier_and_sets_the_access_cookie(
        service: FakeWorkspace) -> None:
    signin = FakeSignIn()
    event = _unauthorized("GET", CALLBACK_PATH, "code=the-code&state=s1", cookies=[f"{SIGNIN_COOKIE}=s1.v1"])
    response = _signin_handler(service, signin)(event, None)
    assert response["statusCode"] == 303
    assert response["headers"]["location"] == "/"
    assert signin.exchanged == [{"code": "the-code", "verifier": "v1",
                                 "redirect_uri": "https://id.execute-api.us-east-1.amazonaws.com/auth/callback"}]
    access = _cookie(response, ACCESS_COOKIE)
    assert access.startswith(f"{ACCESS_COOKIE}=header.payload.signature;")
    # Lax, not Strict: the browser arrives here in a top-level redirect from Cognito's domain
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/", "Max-Age=1800"):  # the settings' 30 minutes
        assert attribute in access
    assert "Max-Age=0" in _cookie(response, SIGNIN_COOKIE)  # the sign-in in progress is over


@pytest.mark.parametrize(("query", "cookies"), [
    ("code=c&state=forged", [f"{SIGNIN_COOKIE}=s1.v1"]),  # another sign-in's state: a login CSRF
    ("code=c&state=s1", []),  # no sign-in started in this browser
    ("state=s1", [f"{SIGNIN_COOKIE}=s1.v1"]),  # no code (e.g. error=access_denied)
    ("code=c&state=", [f"{SIGNIN_COOKIE}=.v1"]),
], ids=["wrong-state", "no-cookie", "no-code", "empty-state"])
def test_a_callback_without_its_own_sign_in_is_refused_without_exchanging(
        service: FakeWorkspace, query: str, cookies: list[str]) -> None:
    signin = FakeSignIn()
    response = _signin_handler(service, signin)(_unauthorized("GET", CALLBACK_PATH, query, cookies), None)
    assert response["statusCode"] == 400
    assert signin.exchanged == []
    assert not [c for c in response.get("cookies", []) if c.startswith(f"{ACCESS_COOKIE}=")]


def test_a_refused_code_sets_no_cookie(service: FakeWorkspace) -> None:
    event = _unauthorized("GET", CALLBACK_PATH, "code=used&state=s1", cookies=[f"{SIGNIN_COOKIE}=s1.v1"])
    response = _signin_handler(service, FakeSignIn(refuse=True))(event, None)
    assert response["statusCode"] == 400
    assert not [c for c in response.get("cookies", []) if c.startswith(f"{ACCESS_COOKIE}=")]


def test_every_route_but_the_sign_in_needs_the_authorizers_identity(service: FakeWorkspace) -> None:
    handler = _signin_handler(service, FakeSignIn())
    app = create_app(lambda: service, GatewayAuth(FakeSignIn()))
    paths = {getattr(route, "path", "") for route in app.routes} - {LOGIN_PATH, CALLBACK_PATH, REFRESH_PATH}
    assert {"/", "/api/encounters", "/logout", "/static"} <= paths
    for path in paths:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        assert handler(_unauthorized("GET", concrete), None)["statusCode"] == 401, path


def test_aws_logout_hands_on_to_the_sign_out_that_receives_the_refresh_cookie(lambda_handler: Mangum) -> None:
    origin = "https://id.execute-api.us-east-1.amazonaws.com"
    response = lambda_handler(_event("POST", "/logout", "clinician", cookies=[f"{AWS_CSRF_COOKIE}={'e' * 43}"],
                                     headers={"x-csrf-token": "e" * 43, "origin": origin}), None)
    assert response["statusCode"] == 307  # the POST and its form go on (tests/unit/test_workspace_signin.py)
    assert response["headers"]["location"] == "/auth/logout"


def test_the_encounter_page_shows_each_claims_coded_entities_as_text(admin: tuple[TestClient, str],
                                                                    service: FakeWorkspace,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What the service answers (`entities`, and `claim_entities` naming them per claim) beside the claim:
    text, category, code and system, negated; an entity text with markup is shown as text."""
    viewed = service.encounter
    entities = {"engine": "offline", "language": "en-US", "notes": [], "entities": [
        {"id": "e1", "category": "MEDICAL_CONDITION", "type": "DX_NAME", "text": ATTACK, "lines": [2],
         "traits": ["NEGATION"], "codes": [{"system": "ICD-10-CM", "code": "R07.9", "description": "Chest pain"}],
         "not_coded": None},
        {"id": "e2", "category": "TEST_TREATMENT_PROCEDURE", "type": "TEST_NAME", "text": "stress test",
         "lines": [3], "traits": [], "codes": [], "not_coded": "offline: SNOMED CT is not available"}]}
    claims = [{"section": "Chief complaint", "item": 1, "entities": ["e1"]},
              {"section": "Plan", "item": 1, "entities": ["e2"]}]
    monkeypatch.setattr(service, "encounter", lambda actor, encounter_id: {
        **viewed(actor, encounter_id), "entities": entities, "claim_entities": claims})
    client, _ = admin
    assert client.get(f"/api/encounters/{ENC}").json()["claim_entities"] == claims
    html = client.get(f"/encounters/{ENC}").text
    complaint, plan = html.split('<li class="claim')[1:3]
    assert '<code class="entity-code" title="Chest pain">ICD-10-CM R07.9</code>' in complaint
    assert '<span class="negated">negated</span>' in complaint
    assert 'data-category="MEDICAL_CONDITION"' in complaint
    assert "medical condition" in complaint
    assert '<span class="entity-text">stress test</span>' in plan
    assert 'title="offline: SNOMED CT is not available">not coded<' in plan
    assert "R07.9" not in plan
    assert ATTACK not in html
    assert '<span class="entity-text">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;' in complaint


def test_an_emr_record_lists_its_coded_entities_in_a_panel(admin: tuple[TestClient, str], service: FakeWorkspace,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    viewed = service.encounter
    entities = {"encounter_id": ENC, "engine": "offline", "language": "en-US",
                "notes": ["offline: RxNorm is not coded"],
                "entities": [{"id": "e1", "category": "MEDICAL_CONDITION", "type": "DX_NAME", "text": ATTACK,
                              "spans": [{"line": 3, "begin": 0, "end": 5}], "traits": [], "attributes": [],
                              "codes": [{"system": "ICD-10-CM", "code": "R50.9", "description": "Fever"}]}]}
    monkeypatch.setattr(service, "encounter", lambda actor, encounter_id: {
        **viewed(actor, encounter_id), "note": None, "entities": entities, "claim_entities": [],
        "emr": {"record": {"Summary": "fever"}, "problems": [], "status": "DOCUMENTED", "engine": "offline"}})
    client, _ = admin
    html = client.get(f"/encounters/{ENC}").text
    panel = html.split('aria-label="Coded entities"', 1)[1]
    assert "ICD-10-CM R50.9" in panel
    assert "lines 3" in panel
    assert "offline: RxNorm is not coded" in panel
    assert ATTACK not in html
