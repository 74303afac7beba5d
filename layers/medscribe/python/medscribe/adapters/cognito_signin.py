"""The workspace's sign-in with Cognito's hosted UI: the authorization code grant with PKCE, for a
public app client (no client secret; PKCE binds the code to the browser that started the sign-in).

GET /login sends the browser to `authorize_url` with a fresh state and the S256 challenge of a fresh
verifier (both kept in a short-lived cookie); GET /auth/callback brings the code back and `exchange`
trades it, with the verifier, for tokens at the pool domain's token endpoint. The workspace keeps the
access token (in an HttpOnly cookie for "/", which the Lambda authorizer reads) and the refresh token (in an
HttpOnly cookie scoped to "/auth", so it rides along only to GET /auth/refresh, which `refresh`es it into a
new access token, and to POST /auth/logout, which `revoke`s it); the ID token would add only the person's
email. Tokens are never logged, nor put in an exception message.
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

# The sign-in's routes (served by medscribe.workspace.signin).
LOGIN_PATH = "/login"
CALLBACK_PATH = "/auth/callback"
REFRESH_PATH = "/auth/refresh"
# Where the refresh-token cookie is sent: the refresh and the sign-out (which revokes it), never the app's
# other routes. Behind the authorizer like every route but the sign-in.
AUTH_PATH = "/auth"
LOGOUT_PATH = "/auth/logout"
# The routes without the HTTP API's authorizer (medscribe.workspace.signin serves them; stacks/workspace.py).
SIGNIN_PATHS = (LOGIN_PATH, CALLBACK_PATH, REFRESH_PATH)
# The browser's copy of the access token, read by the workspace authorizer (adapters.cognito_tokens).
# `__Host-`: only this origin can set it, for the path "/", Secure.
ACCESS_COOKIE = "__Host-medscribe-access"
# The sign-in in progress: "<state>.<PKCE verifier>", from GET /login to GET /auth/callback.
SIGNIN_COOKIE = "__Host-medscribe-signin"
# The refresh token, for AUTH_PATH only (`__Secure-`: Secure, set over HTTPS; `__Host-` would force Path=/).
REFRESH_COOKIE = "__Secure-medscribe-refresh"
SIGNIN_SECONDS = 600
SCOPES = "openid email profile"
TIMEOUT_SECONDS = 10


class SignInFailed(Exception):
    """The token endpoint refused the code or refresh token (expired, used, revoked, or the verifier does not
    match), or the revocation endpoint refused the token."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str | None = None  # the code grant returns one; a refresh does not (no rotation)


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
        return self._tokens({"grant_type": "authorization_code", "client_id": self.client_id, "code": code,
                             "redirect_uri": redirect_uri, "code_verifier": verifier})

    def refresh(self, refresh_token: str) -> Tokens:
        """A new access token for the refresh token (the public client: no secret)."""
        return self._tokens({"grant_type": "refresh_token", "client_id": self.client_id,
                             "refresh_token": refresh_token})

    def revoke(self, refresh_token: str) -> None:
        """Revoke the refresh token and the access tokens issued with it (the app client allows revocation)."""
        self._post("/oauth2/revoke", {"token": refresh_token, "client_id": self.client_id})

    def _tokens(self, form: dict[str, str]) -> Tokens:
        answer = self._post("/oauth2/token", form)
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise SignInFailed("the token endpoint returned no access token")
        refresh = answer.get("refresh_token")
        return Tokens(access, int(answer.get("expires_in") or 3600), refresh if isinstance(refresh, str) else None)

    def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        body = urlencode(form).encode("ascii")
        # S310: the scheme was checked in __init__ (https, or http for the tests' local endpoint)
        request = urllib.request.Request(f"{self.auth_url}{path}", data=body, method="POST",  # noqa: S310
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked  # nosec B310
                data = response.read()
        except urllib.error.HTTPError as exc:
            raise SignInFailed(f"{path} answered {exc.code}") from None  # its body may echo the code or token
        answer: dict[str, Any] = json.loads(data) if data.strip() else {}  # the revocation answers an empty body
        return answer
