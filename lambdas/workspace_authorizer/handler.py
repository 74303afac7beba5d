"""Workspace authorizer handler: the HTTP API's Lambda REQUEST authorizer (payload format 2.0, simple
responses) on every workspace route but the three sign-in routes (GET /login, /auth/callback, /auth/refresh).

Trigger: API Gateway, before the workspace function, for each request (no result caching: the
identity is a cookie or a header, and a signed-out cookie must stop working at once).
Decision: {"isAuthorized": true, "context": {"sub", "groups"}} for a valid Cognito access token of the
workspace's pool and app client, offered as `Authorization: Bearer <token>` or in the access-token
cookie the app's sign-in callback set; {"isAuthorized": false} otherwise (API Gateway answers 403).
Side effects: none; the pool's JWKS is fetched once per process (and again for an unknown key id).
Never logged: the token, cookies, headers; only the refusal's kind (e.g. ExpiredSignatureError).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from medscribe.adapters.cognito_tokens import CognitoTokens, TokenRefused, issuer, offered_token
from medscribe.observability import logger, metrics, tracer
from medscribe.settings import ENV


@cache
def tokens() -> CognitoTokens:
    """The pool's verifier, built on the first request (no I/O until a token is verified)."""
    return CognitoTokens(issuer_url=issuer(os.environ["AWS_REGION"], os.environ[ENV.WORKSPACE_USER_POOL_ID]),
                         client_id=os.environ[ENV.WORKSPACE_CLIENT_ID])


def decide(event: dict[str, Any], verifier: CognitoTokens) -> dict[str, Any]:
    token = offered_token({k.lower(): v for k, v in (event.get("headers") or {}).items()}, event.get("cookies") or [])
    if token is None:
        logger.info("refused", extra={"reason": "no token"})
        return {"isAuthorized": False}
    try:
        identity = verifier.verify(token)
    except TokenRefused as exc:
        logger.info("refused", extra={"reason": str(exc)})
        return {"isAuthorized": False}
    # context values must be strings, numbers or booleans: the groups travel space-separated
    return {"isAuthorized": True, "context": {"sub": identity.sub, "groups": " ".join(identity.groups)}}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return decide(event, tokens())
