"""The workspace's code exchange against a real token endpoint on 127.0.0.1: the authorization code
grant of a public client (no secret) with the PKCE verifier; a refused code is SignInFailed without the
endpoint's answer in the message."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from medscribe.adapters.cognito_signin import CognitoSignIn, SignInFailed, challenge
from tests.local_server import serve


class TokenEndpoint(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        TokenEndpoint.received.append({"path": self.path, "form": form, "auth": self.headers.get("Authorization")})
        if form["code"] == ["good"]:
            status, body = 200, {"access_token": "a.b.c", "id_token": "i.d.t", "refresh_token": "r",
                                 "expires_in": 900, "token_type": "Bearer"}
        else:
            status, body = 400, {"error": "invalid_grant", "echo": form["code"][0]}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def signin() -> Iterator[CognitoSignIn]:
    TokenEndpoint.received = []
    with serve(TokenEndpoint) as url:
        yield CognitoSignIn(auth_url=url, client_id="client1")


def test_the_code_is_exchanged_with_the_verifier_and_no_secret(signin: CognitoSignIn) -> None:
    tokens = signin.exchange(code="good", redirect_uri="https://x/auth/callback", verifier="v" * 64)
    assert (tokens.access_token, tokens.expires_in) == ("a.b.c", 900)
    (request,) = TokenEndpoint.received
    assert request["path"] == "/oauth2/token"
    assert request["auth"] is None  # a public client: no client secret
    assert request["form"] == {"grant_type": ["authorization_code"], "client_id": ["client1"], "code": ["good"],
                               "redirect_uri": ["https://x/auth/callback"], "code_verifier": ["v" * 64]}


def test_a_refused_code_fails_without_the_answer_in_the_message(signin: CognitoSignIn) -> None:
    with pytest.raises(SignInFailed) as refused:
        signin.exchange(code="secret-code", redirect_uri="https://x/auth/callback", verifier="v" * 64)
    assert "secret-code" not in str(refused.value)


def test_the_authorize_url_asks_for_the_code_with_an_s256_challenge() -> None:
    url = CognitoSignIn(auth_url="https://pool.auth.us-east-1.amazoncognito.com/", client_id="client1").authorize_url(
        redirect_uri="https://x/auth/callback", state="s", verifier="v" * 64)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://pool.auth.us-east-1.amazoncognito.com/oauth2/authorize"
    assert parse_qs(parts.query) == {"response_type": ["code"], "client_id": ["client1"], "state": ["s"],
                                     "redirect_uri": ["https://x/auth/callback"], "scope": ["openid email profile"],
                                     "code_challenge": [challenge("v" * 64)], "code_challenge_method": ["S256"]}


def test_the_challenge_is_unpadded_base64url_of_the_sha256() -> None:
    value = challenge("v" * 64)
    assert len(value) == 43  # 32 bytes, no "=" padding (RFC 7636 S256)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    assert base64.urlsafe_b64decode(value + "=") == hashlib.sha256(b"v" * 64).digest()


def test_a_file_or_custom_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        CognitoSignIn(auth_url="file:///etc", client_id="c")
