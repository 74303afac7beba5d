"""Verifying the workspace's Cognito access tokens (the Lambda authorizer's one check).

Why the access token, not the ID token: the access token is the one Cognito issues for calling an
API (`token_use` "access"); it names the app client in `client_id` and carries `cognito:groups`,
which is all the workspace needs (the subject and the role). The ID token describes the person to
the client (email, name) and is not meant to authorize requests.

Checks: RS256 signature against the user pool's JWKS (fetched once per process by PyJWT's
`PyJWKClient`, kept, and fetched again when a token names a key id it does not hold: Cognito rotates
keys; at most once per `refresh_cooldown` seconds, so tokens with made-up key ids cannot make every
request fetch the set), `iss` is the pool, `exp` is in the future, `token_use` is "access" and `client_id` is the
workspace's app client. The token itself is never logged nor put in an exception message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from medscribe.adapters.cognito_signin import ACCESS_COOKIE

ACCESS_TOKEN_USE = "access"  # noqa: S105 - a claim value, not a secret  # nosec B105
LEEWAY_SECONDS = 30  # clock skew between Cognito and Lambda


class TokenRefused(Exception):
    """The token is missing, malformed, expired, or not one of this pool's for this client."""


@dataclass(frozen=True)
class Identity:
    sub: str
    groups: tuple[str, ...]


def issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def offered_token(headers: dict[str, str], cookies: list[str]) -> str | None:
    """The bearer token of the `Authorization` header, else the access-token cookie's value."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for cookie in cookies:
        name, _, value = cookie.strip().partition("=")
        if name == ACCESS_COOKIE and value:
            return value
    return None


class CognitoTokens:
    """One user pool's keys (cached by the process) and the app client whose access tokens count."""

    def __init__(self, *, issuer_url: str, client_id: str, jwks_url: str | None = None,
                 refresh_cooldown: float = 30) -> None:
        self.issuer = issuer_url
        self.client_id = client_id
        # PyJWKClient keeps the key set (lifespan 300 s) and fetches it again for an unknown `kid`.
        self.keys = jwt.PyJWKClient(jwks_url or f"{issuer_url}/.well-known/jwks.json", cache_keys=True,
                                     timeout=5, cooldown_duration=refresh_cooldown)

    def verify(self, token: str) -> Identity:
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], issuer=self.issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub", "token_use", "client_id"], "verify_aud": False},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise TokenRefused(type(exc).__name__) from None  # the class says why; the message may quote the token
        if claims["token_use"] != ACCESS_TOKEN_USE:
            raise TokenRefused("not an access token")
        if claims["client_id"] != self.client_id:
            raise TokenRefused("issued to another app client")
        groups = claims.get("cognito:groups") or []
        return Identity(str(claims["sub"]), tuple(str(group) for group in groups))
