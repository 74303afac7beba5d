"""The workspace's sign-in with Cognito's hosted UI: the authorization code grant with PKCE, for a
public app client (no client secret; PKCE binds the code to the browser that started the sign-in).

GET /login sends the browser to `authorize_url` with a fresh state and the S256 challenge of a fresh
verifier (both kept in a short-lived cookie); GET /auth/callback brings the code back and `exchange`
trades it, with the verifier, for tokens at the pool domain's token endpoint. The workspace keeps only
the access token (in an HttpOnly cookie the Lambda authorizer reads): the ID token would add only the
person's email, and a refresh token in a cookie would ride along on every request and outlive a
signed-out access token; the user signs in again when the access token expires. Tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

# The two routes without the HTTP API's authorizer (they are the sign-in), also used by stacks/workspace.py.
LOGIN_PATH = "/login"
CALLBACK_PATH = "/auth/callback"
# The browser's copy of the access token, read by the workspace authorizer (adapters.cognito_tokens).
# `__Host-`: only this origin can set it, for the path "/", Secure.
ACCESS_COOKIE = "__Host-medscribe-access"
# The sign-in in progress: "<state>.<PKCE verifier>", from GET /login to GET /auth/callback.
SIGNIN_COOKIE = "__Host-medscribe-signin"
SIGNIN_SECONDS = 600
SCOPES = "openid email profile"
TIMEOUT_SECONDS = 10


class SignInFailed(Exception):
    """The token endpoint refused the code (expired, used, or the verifier does not match)."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int


def challenge(verifier: str) -> str:
    """The S256 code challenge: base64url(SHA-256(verifier)) without padding (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


class CognitoSignIn:
    """The hosted UI of one user pool domain (`auth_url`: https://<prefix>.auth.<region>.amazoncognito.com)
    for one app client."""

    def __init__(self, *, auth_url: str, client_id: str) -> None:
        if urlsplit(auth_url).scheme not in {"https", "http"}:  # http: the tests' local token endpoint only
            raise ValueError("the sign-in domain must be an https URL")
        self.auth_url = auth_url.rstrip("/")
        self.client_id = client_id

    def authorize_url(self, *, redirect_uri: str, state: str, verifier: str) -> str:
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                           "scope": SCOPES, "state": state, "code_challenge": challenge(verifier),
                           "code_challenge_method": "S256"})
        return f"{self.auth_url}/oauth2/authorize?{query}"

    def exchange(self, *, code: str, redirect_uri: str, verifier: str) -> Tokens:
        body = urlencode({"grant_type": "authorization_code", "client_id": self.client_id, "code": code,
                          "redirect_uri": redirect_uri, "code_verifier": verifier}).encode("ascii")
        # S310: the scheme was checked in __init__ (https, or http for the tests' local endpoint)
        request = urllib.request.Request(f"{self.auth_url}/oauth2/token", data=body, method="POST",  # noqa: S310
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked  # nosec B310
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SignInFailed(f"the token endpoint answered {exc.code}") from None  # its body may echo the code
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise SignInFailed("the token endpoint returned no access token")
        return Tokens(access, int(answer.get("expires_in") or 3600))
