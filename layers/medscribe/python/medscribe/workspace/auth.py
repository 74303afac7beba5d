"""Who is asking, and whether a state change really comes from our own pages.

Local (`LocalAuth`, `medscribe serve`): the command prints a URL with a one-time login token
(`secrets.token_urlsafe`), as notebook servers do. GET /login?token=...[&next=/a/path] exchanges it,
once, for a session cookie (HttpOnly, SameSite=Strict) signed with HMAC-SHA256 under a secret made at start and
never written anywhere: restarting the server ends every session. The session expires after
`session_seconds`. The local actor is `local-<os user>` with the role admin: whoever started the
server owns the machine's runtime and may erase from it anyway.

AWS (`GatewayAuth`): the HTTP API's Lambda authorizer (lambdas/workspace_authorizer) has verified the
Cognito access token (the `Authorization: Bearer` header, or the HttpOnly cookie the sign-in callback
sets) before the function runs, and passes its context in the Lambda event (Mangum keeps the event in
`scope["aws.event"]`, `requestContext.authorizer.lambda`): `sub` is the actor id and `groups` (space
separated) the role (admin wins over clinician; a user in neither group is refused with 403). Sign-in:
GET /login starts Cognito's hosted UI (authorization code with PKCE); GET /auth/callback sets the
access-token and refresh-token cookies; GET /auth/refresh renews the access token (medscribe.workspace.signin).
Those three routes are the only ones API Gateway lets through without the authorizer.

CSRF (both): every session has a token; a state change (any method but GET/HEAD/OPTIONS) must carry
it in the `X-CSRF-Token` header (the API) or the `csrf` form field (the pages), and an `Origin` (or,
without one, `Referer`) header naming another origin is refused. Locally the token sits inside the
signed session; in AWS it is a random value in a `__Host-` cookie the app sets (Secure, HttpOnly, no
domain: another site cannot plant it) and the request must echo it (double submit). Pages carry the
token in a hidden field and a `csrf-token` meta tag (for the script); GET /api/session returns it.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.requests import Request

from medscribe.adapters.cognito_signin import Tokens
from medscribe.settings import PipelineSettings
from medscribe.workspace.ports import Actor, Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
LOCAL_SESSION_COOKIE = "medscribe_session"
AWS_CSRF_COOKIE = "__Host-medscribe-csrf"
DEFAULT_SESSION_SECONDS = 8 * 3600
DEFAULT_ACCESS_SECONDS = int(PipelineSettings.model_fields["workspace_access_token_minutes"].default) * 60
DEFAULT_REFRESH_SECONDS = int(PipelineSettings.model_fields["workspace_refresh_token_days"].default) * 86400


class Unauthenticated(Exception):
    """No valid session or token: 401. The message says why, without any credential in it."""


class NoRole(Exception):
    """Authenticated, but in no workspace group: 403."""


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str
    cookie: tuple[str, str] | None = None  # (name, value) the response must set: a newly minted CSRF cookie


class Auth(Protocol):
    def authenticate(self, request: Request) -> Session:
        """The request's session; raises Unauthenticated (401) or NoRole (403)."""
        ...

    @property
    def secure_cookies(self) -> bool: ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def local_actor(user: str) -> Actor:
    """`local-<os user>`, admin; characters an actor id may not hold (audit records take letters,
    digits, '.', '_' and '-') become '-'."""
    return Actor("local-" + (re.sub(r"[^A-Za-z0-9._-]", "-", user)[:100] or "user"), "admin")


class LocalAuth:
    """One-time login token -> signed session cookie, for one server process."""

    secure_cookies = False  # the local server speaks plain HTTP on the loopback interface

    def __init__(self, actor: Actor | None = None, *, session_seconds: int = DEFAULT_SESSION_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.actor = actor or local_actor(getpass.getuser())
        self.session_seconds = session_seconds
        self.clock = clock
        self._secret = secrets.token_bytes(32)
        self._login = secrets.token_urlsafe(32)
        self._used = False
        self._ended: set[str] = set()  # sessions logged out before they expired
        self._lock = threading.Lock()

    @property
    def login_token(self) -> str:
        return self._login

    def exchange(self, offered: str) -> str:
        """The session cookie's value for the login token, once; Unauthenticated after that."""
        with self._lock:
            if self._used or not hmac.compare_digest(offered.encode("utf-8"), self._login.encode("ascii")):
                raise Unauthenticated("this login link is not valid or was already used; "
                                      "restart `medscribe serve` for a new one")
            self._used = True
        payload = {"sid": secrets.token_urlsafe(16), "csrf": secrets.token_urlsafe(32),
                   "exp": int(self.clock()) + self.session_seconds}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._sign(body)}"

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("utf-8", "replace"), hashlib.sha256).digest())

    def _payload(self, cookie: str | None) -> dict[str, Any]:
        if not cookie or "." not in cookie:
            raise Unauthenticated("no session: open the login link `medscribe serve` printed")
        body, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature.encode("utf-8", "replace"), self._sign(body).encode("ascii")):
            raise Unauthenticated("the session is not valid (signed by another server process?); log in again")
        payload: dict[str, Any] = json.loads(_unb64(body))
        if int(payload["exp"]) <= self.clock():
            raise Unauthenticated("the session expired; restart `medscribe serve` for a new login link")
        if payload["sid"] in self._ended:
            raise Unauthenticated("the session was logged out")
        return payload

    def authenticate(self, request: Request) -> Session:
        payload = self._payload(request.cookies.get(LOCAL_SESSION_COOKIE))
        return Session(self.actor, str(payload["csrf"]))

    def logout(self, request: Request) -> None:
        with contextlib.suppress(Unauthenticated):  # no valid session: nothing to end
            self._ended.add(str(self._payload(request.cookies.get(LOCAL_SESSION_COOKIE))["sid"]))


def groups_claim(value: Any) -> list[str]:
    """Groups as a list: a JSON list, or a "[a b]" / "a b" string (the authorizer's context), or one name."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value or "").strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part for part in text.replace(",", " ").split() if part]


def role_of(groups: list[str]) -> Role | None:
    if "admin" in groups:
        return "admin"
    if "clinician" in groups:
        return "clinician"
    return None


class SignIn(Protocol):
    """The hosted sign-in (medscribe.adapters.cognito_signin.CognitoSignIn in AWS)."""

    def authorize_url(self, *, redirect_uri: str, state: str, verifier: str) -> str: ...

    def exchange(self, *, code: str, redirect_uri: str, verifier: str) -> Tokens: ...

    def refresh(self, refresh_token: str) -> Tokens: ...

    def revoke(self, refresh_token: str) -> None: ...


class GatewayAuth:
    """Identity from the Lambda authorizer's context in the event; the CSRF token in a cookie. The token
    cookies live as long as the tokens (the app client's lifetimes, from the settings)."""

    secure_cookies = True

    def __init__(self, signin: SignIn, *, access_seconds: int = DEFAULT_ACCESS_SECONDS,
                 refresh_seconds: int = DEFAULT_REFRESH_SECONDS) -> None:
        self.signin = signin
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds

    @classmethod
    def for_settings(cls, signin: SignIn, settings: PipelineSettings) -> GatewayAuth:
        return cls(signin, access_seconds=settings.workspace_access_token_minutes * 60,
                   refresh_seconds=settings.workspace_refresh_token_days * 86400)

    def authenticate(self, request: Request) -> Session:
        event = request.scope.get("aws.event")
        context: Mapping[str, Any] = {}
        if isinstance(event, Mapping):
            authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
            context = authorizer.get("lambda") or {}
        subject = str(context.get("sub") or "")
        if not subject:
            raise Unauthenticated("no verified token: sign in")
        role = role_of(groups_claim(context.get("groups")))
        if role is None:
            raise NoRole("the signed-in user is in neither the clinician nor the admin group")
        token = request.cookies.get(AWS_CSRF_COOKIE)
        if token and len(token) >= 32:
            return Session(Actor(subject, role), token)
        token = secrets.token_urlsafe(32)
        return Session(Actor(subject, role), token, cookie=(AWS_CSRF_COOKIE, token))


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin (Origin, else Referer);
    True when it names ours or names none (a client that is not a browser: the token still counts)."""
    ours = f"{request.url.scheme}://{request.url.netloc}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == ours
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == ours
    return True


def csrf_matches(session: Session, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(str(offered).encode("utf-8"), session.csrf.encode("utf-8"))
