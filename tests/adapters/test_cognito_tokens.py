"""The workspace authorizer's token check against a real JWKS endpoint on 127.0.0.1: a locally made RSA
key signs tokens shaped like Cognito's access tokens; only a valid one of the pool for the app client
is authorized, with its subject and groups; the token never reaches the logs."""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from medscribe.adapters.cognito_tokens import ACCESS_COOKIE, CognitoTokens, TokenRefused, offered_token
from tests.local_server import serve

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool"
CLIENT = "workspaceclient"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


class Keys:
    """What the JWKS endpoint publishes, and how often it was asked."""

    published: list[dict[str, Any]] = []
    fetches = 0


class JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        Keys.fetches += 1
        body = json.dumps({"keys": Keys.published}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_url() -> Iterator[str]:
    Keys.published, Keys.fetches = [_jwk(KEY, "k1")], 0
    with serve(JwksHandler) as url:
        yield f"{url}/.well-known/jwks.json"


@pytest.fixture
def verifier(jwks_url: str) -> CognitoTokens:
    return CognitoTokens(issuer_url=ISSUER, client_id=CLIENT, jwks_url=jwks_url)


def _token(key: rsa.RSAPrivateKey = KEY, kid: str = "k1", **changes: Any) -> str:
    claims = {"sub": "0f1e-user", "iss": ISSUER, "client_id": CLIENT, "token_use": "access",
              "exp": int(time.time()) + 600, "iat": int(time.time()), "cognito:groups": ["clinician"], **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": kid})


def test_a_valid_access_token_gives_its_subject_and_groups(verifier: CognitoTokens) -> None:
    identity = verifier.verify(_token(**{"cognito:groups": ["admin", "clinician"]}))
    assert (identity.sub, identity.groups) == ("0f1e-user", ("admin", "clinician"))
    verifier.verify(_token())
    assert Keys.fetches == 1  # the key set is kept by the process


@pytest.mark.parametrize("changes", [
    {"exp": int(time.time()) - 120},
    {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"},
    {"client_id": "anotherclient"},
    {"token_use": "id"},
    {"token_use": None},
    {"client_id": None},
], ids=["expired", "wrong-issuer", "wrong-client", "id-token", "no-token-use", "no-client"])
def test_a_token_that_is_not_this_pools_access_token_for_the_client_is_refused(
        verifier: CognitoTokens, changes: dict[str, Any]) -> None:
    with pytest.raises(TokenRefused):
        verifier.verify(_token(**changes))


def test_a_token_signed_by_another_key_is_refused(verifier: CognitoTokens) -> None:
    with pytest.raises(TokenRefused):
        verifier.verify(_token(key=OTHER_KEY))


def test_an_unknown_key_id_is_fetched_again_then_refused_or_accepted(jwks_url: str) -> None:
    verifier = CognitoTokens(issuer_url=ISSUER, client_id=CLIENT, jwks_url=jwks_url, refresh_cooldown=0)
    verifier.verify(_token())
    with pytest.raises(TokenRefused):
        verifier.verify(_token(key=OTHER_KEY, kid="rotated"))
    assert Keys.fetches == 2  # asked again for the unknown key id
    Keys.published.append(_jwk(OTHER_KEY, "rotated"))  # Cognito rotated its keys
    assert verifier.verify(_token(key=OTHER_KEY, kid="rotated")).sub == "0f1e-user"


def test_made_up_key_ids_do_not_make_each_request_fetch_the_keys(verifier: CognitoTokens) -> None:
    verifier.verify(_token())
    for attempt in range(5):
        with pytest.raises(TokenRefused):
            verifier.verify(_token(key=OTHER_KEY, kid=f"made-up-{attempt}"))
    assert Keys.fetches == 1  # within the cooldown after the first fetch


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c"])
def test_garbage_is_refused(verifier: CognitoTokens, garbage: str) -> None:
    with pytest.raises(TokenRefused):
        verifier.verify(garbage)


def test_the_token_comes_from_the_bearer_header_else_the_cookie() -> None:
    assert offered_token({"authorization": "Bearer abc"}, [f"{ACCESS_COOKIE}=def"]) == "abc"
    assert offered_token({}, ["other=1", f"{ACCESS_COOKIE}=def"]) == "def"
    assert offered_token({"authorization": "Basic abc"}, []) is None
    assert offered_token({}, [f"{ACCESS_COOKIE}="]) is None


def _authorizer_module() -> Any:
    spec = importlib.util.spec_from_file_location("authorizer_handler",
                                                  ROOT / "lambdas" / "workspace_authorizer" / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(headers: dict[str, str], cookies: list[str] | None = None) -> dict[str, Any]:
    return {"version": "2.0", "type": "REQUEST", "routeKey": "$default", "headers": headers,
            "cookies": cookies or [], "requestContext": {"http": {"method": "GET", "path": "/"}}}


def test_the_authorizer_answers_simple_responses_and_never_logs_the_token(
        verifier: CognitoTokens, caplog: pytest.LogCaptureFixture) -> None:
    decide = _authorizer_module().decide
    good, expired = _token(), _token(exp=int(time.time()) - 120)
    with caplog.at_level(logging.DEBUG):
        assert decide(_event({}, [f"{ACCESS_COOKIE}={good}"]), verifier) == {
            "isAuthorized": True, "context": {"sub": "0f1e-user", "groups": "clinician"}}
        assert decide(_event({"Authorization": f"Bearer {good}"}), verifier)["isAuthorized"] is True
        assert decide(_event({"Authorization": f"Bearer {expired}"}), verifier) == {"isAuthorized": False}
        assert decide(_event({}), verifier) == {"isAuthorized": False}
    assert good not in caplog.text
    assert expired not in caplog.text


@pytest.mark.parametrize("changes", [{"client_id": "anotherclient"}, {"token_use": "id"}],
                         ids=["another-app-client", "id-token"])
def test_the_authorizer_refuses_a_valid_pool_token_for_another_client_or_use(
        verifier: CognitoTokens, changes: dict[str, Any]) -> None:
    decide = _authorizer_module().decide
    assert verifier.client_id == CLIENT
    assert decide(_event({}, [f"{ACCESS_COOKIE}={_token(**changes)}"]), verifier) == {"isAuthorized": False}
    assert decide(_event({"Authorization": f"Bearer {_token(**changes)}"}), verifier) == {"isAuthorized": False}
    assert decide(_event({"Authorization": f"Bearer {_token()}"}), verifier)["isAuthorized"] is True
