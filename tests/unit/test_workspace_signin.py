"""The sign-in lifecycle in AWS (medscribe.workspace.signin) through Mangum, with the real CognitoSignIn
against a fake Cognito domain on 127.0.0.1 (token and revocation endpoints): the callback's two cookies
and their attributes and lifetimes (from the settings), GET /auth/refresh (refresh-token grant of the public
client, a new access-token cookie, a redirect to a path of this app only; to /login without a refresh token
or when Cognito refuses it), and the sign-out (revocation, both cookies cleared, a failed revocation still
signs out)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
from mangum import Mangum

from medscribe.adapters.cognito_signin import (
    ACCESS_COOKIE,
    AUTH_PATH,
    CALLBACK_PATH,
    LOGOUT_PATH,
    REFRESH_COOKIE,
    REFRESH_PATH,
    SIGNIN_COOKIE,
    CognitoSignIn,
)
from medscribe.settings import PipelineSettings
from medscribe.workspace.app import create_app
from medscribe.workspace.auth import AWS_CSRF_COOKIE, GatewayAuth
from medscribe.workspace.signin import local_path
from tests.local_server import serve
from tests.unit.test_workspace_app import _event, _unauthorized
from tests.workspace_fakes import FakeSearch, FakeWorkspace

ORIGIN = "https://id.execute-api.us-east-1.amazonaws.com"
SETTINGS = PipelineSettings(workspace_access_token_minutes=15, workspace_refresh_token_days=7)


class FakeCognito(BaseHTTPRequestHandler):
    """/oauth2/token (code and refresh-token grants) and /oauth2/revoke, as a user pool domain answers them."""

    received: ClassVar[list[tuple[str, dict[str, list[str]]]]] = []
    revoke_status: ClassVar[int] = 200

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeCognito.received.append((self.path, form))
        status, body = 400, {"error": "invalid_grant"}
        if self.path == "/oauth2/revoke":
            status, body = FakeCognito.revoke_status, {}
        elif form.get("grant_type") == ["authorization_code"] and form.get("code") == ["good"]:
            status, body = 200, {"access_token": "acc.one.sig", "id_token": "id.one.sig",
                                 "refresh_token": "refresh-one", "expires_in": 900, "token_type": "Bearer"}
        elif form.get("grant_type") == ["refresh_token"] and form.get("refresh_token") == ["refresh-one"]:
            # Cognito answers a refresh without a new refresh token (no rotation)
            status, body = 200, {"access_token": "acc.two.sig", "id_token": "id.two.sig", "expires_in": 900,
                                 "token_type": "Bearer"}
        data = json.dumps(body).encode() if body else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cognito() -> Iterator[str]:
    FakeCognito.received = []
    FakeCognito.revoke_status = 200
    with serve(FakeCognito) as url:
        yield url


@pytest.fixture
def handler(cognito: str) -> Mangum:
    auth = GatewayAuth.for_settings(CognitoSignIn(auth_url=cognito, client_id="client1"), SETTINGS)
    return Mangum(create_app(FakeWorkspace, auth, search_factory=FakeSearch), lifespan="off")


def cookie(response: dict[str, Any], name: str) -> dict[str, str]:
    """The Set-Cookie of `name` as attribute -> value (the cookie's own value under "value")."""
    (found,) = [c for c in response.get("cookies", []) if c.startswith(f"{name}=")]
    first, *attributes = [part.strip() for part in found.split(";")]
    parsed = {"value": first.split("=", 1)[1]}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        parsed[key.lower()] = value
    return parsed


def signed_in(handler: Mangum) -> dict[str, Any]:
    event = _unauthorized("GET", CALLBACK_PATH, "code=good&state=s1", cookies=[f"{SIGNIN_COOKIE}=s1.v1"])
    return dict(handler(event, None))


def test_the_callback_sets_the_access_cookie_for_every_path_and_the_refresh_cookie_for_auth_only(
        handler: Mangum) -> None:
    response = signed_in(handler)
    assert response["statusCode"] == 303
    access, refresh = cookie(response, ACCESS_COOKIE), cookie(response, REFRESH_COOKIE)
    assert access["value"] == "acc.one.sig"
    assert refresh["value"] == "refresh-one"
    for attributes in (access, refresh):
        assert {"httponly", "secure"} <= attributes.keys()
        assert attributes["samesite"] == "lax"
    assert access["path"] == "/"
    assert refresh["path"] == AUTH_PATH == "/auth"  # never sent to the pages or the API
    assert REFRESH_PATH.startswith(AUTH_PATH + "/")
    assert LOGOUT_PATH.startswith(AUTH_PATH + "/")
    # the lifetimes of the app client's tokens (the settings), not the endpoint's expires_in
    assert access["max-age"] == str(15 * 60)
    assert refresh["max-age"] == str(7 * 86400)
    assert not REFRESH_COOKIE.startswith("__Host-")  # that prefix would force Path=/


def test_refresh_trades_the_refresh_token_for_a_new_access_cookie_and_returns_to_the_page(handler: Mangum) -> None:
    event = _unauthorized("GET", REFRESH_PATH, "next=/encounters/enc-1%3Ftab%3Daudit",
                          cookies=[f"{REFRESH_COOKIE}=refresh-one"])
    response = handler(event, None)
    assert response["statusCode"] == 303
    assert response["headers"]["location"] == "/encounters/enc-1?tab=audit"
    access = cookie(response, ACCESS_COOKIE)
    assert access["value"] == "acc.two.sig"
    assert access["max-age"] == str(15 * 60)
    assert access["path"] == "/"
    assert {"httponly", "secure"} <= access.keys()
    assert access["samesite"] == "lax"
    assert not [c for c in response.get("cookies", []) if c.startswith(f"{REFRESH_COOKIE}=")]  # kept as it was
    (request,) = FakeCognito.received
    assert request == ("/oauth2/token", {"grant_type": ["refresh_token"], "client_id": ["client1"],
                                         "refresh_token": ["refresh-one"]})


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "/\t/evil.example", "/\n/evil.example", "javascript:alert(1)", ""])
def test_refresh_returns_to_a_path_of_this_app_only(handler: Mangum, target: str) -> None:
    assert local_path(target) == "/"
    event = _unauthorized("GET", REFRESH_PATH, "", cookies=[f"{REFRESH_COOKIE}=refresh-one"])
    event["rawQueryString"] = "next=" + target.replace("\t", "%09").replace("\n", "%0A").replace("\\", "%5C")
    response = handler(event, None)
    assert response["statusCode"] == 303
    assert response["headers"]["location"] == "/"


@pytest.mark.parametrize("cookies", [[], [f"{REFRESH_COOKIE}=revoked-or-expired"]], ids=["no-cookie", "refused"])
def test_refresh_without_a_usable_refresh_token_sends_the_browser_to_login(handler: Mangum,
                                                                           cookies: list[str]) -> None:
    response = handler(_unauthorized("GET", REFRESH_PATH, "next=/search", cookies=cookies), None)
    assert response["statusCode"] == 303
    assert response["headers"]["location"] == "/login"
    assert not [c for c in response.get("cookies", []) if "Max-Age=0" not in c]  # no new token, only clearing
    if cookies:
        assert cookie(response, REFRESH_COOKIE)["max-age"] == "0"
        assert "revoked-or-expired" not in json.dumps(response)


def test_sign_out_revokes_the_refresh_token_and_clears_both_cookies(handler: Mangum) -> None:
    event = _event("POST", LOGOUT_PATH, "clinician", cookies=[f"{AWS_CSRF_COOKIE}={'e' * 43}",
                                                              f"{REFRESH_COOKIE}=refresh-one"],
                   headers={"x-csrf-token": "e" * 43, "origin": ORIGIN})
    response = handler(event, None)
    assert response["statusCode"] == 200
    assert FakeCognito.received == [("/oauth2/revoke", {"token": ["refresh-one"], "client_id": ["client1"]})]
    access, refresh = cookie(response, ACCESS_COOKIE), cookie(response, REFRESH_COOKIE)
    assert access["max-age"] == refresh["max-age"] == "0"
    assert (access["path"], refresh["path"]) == ("/", "/auth")


def test_sign_out_clears_the_cookies_when_the_revocation_fails(handler: Mangum) -> None:
    FakeCognito.revoke_status = 503
    event = _event("POST", LOGOUT_PATH, "clinician", cookies=[f"{AWS_CSRF_COOKIE}={'e' * 43}",
                                                              f"{REFRESH_COOKIE}=refresh-one"],
                   headers={"x-csrf-token": "e" * 43, "origin": ORIGIN})
    response = handler(event, None)
    assert response["statusCode"] == 200
    assert cookie(response, REFRESH_COOKIE)["max-age"] == "0"


def test_sign_out_is_a_state_change_needing_the_csrf_token(handler: Mangum) -> None:
    event = _event("POST", LOGOUT_PATH, "clinician", cookies=[f"{REFRESH_COOKIE}=refresh-one"],
                   headers={"origin": ORIGIN})
    assert handler(event, None)["statusCode"] == 403
    assert FakeCognito.received == []
