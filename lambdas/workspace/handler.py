"""Workspace handler: the clinician workspace's ASGI app (medscribe.workspace) behind API Gateway.

Trigger: the workspace HTTP API (payload format 2.0): its `$default` route, only for requests whose
Cognito access token the workspace's Lambda authorizer accepted (its context `sub`, `groups` reaches
the app as `scope["aws.event"]["requestContext"]["authorizer"]["lambda"]`), and the three sign-in routes,
GET /login, /auth/callback and /auth/refresh, which have no authorizer: they are how a browser gets the token.
Side effects: those of the workspace service: note versions, sign-offs, audit records, an admin's erasure
(table items, object versions, Transcribe jobs, the search document); search queries to OpenSearch;
presigned audio URLs and upload forms (signed locally, used by the browser against S3); Cognito token
requests (code, refresh, revocation).
Idempotency: a note save names the version it edits (a stale one is refused), a sign-off the version it
signs. Never logged: bodies, query strings, tokens (the app logs ids and statuses only).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, cast

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.types import LambdaContext as MangumContext

from medscribe.invocation import invocation
from medscribe.observability import logger, metrics, tracer
from medscribe.settings import ENV


@cache
def asgi_handler() -> Mangum:
    """The app, built on the first request: its web libraries and templates load once per process, and
    importing this module stays cheap."""
    from medscribe.adapters.cognito_signin import CognitoSignIn
    from medscribe.services.wiring import workspace_recordings, workspace_search, workspace_service, workspace_uploads
    from medscribe.settings import function_settings
    from medscribe.workspace.app import create_app
    from medscribe.workspace.auth import GatewayAuth

    signin = CognitoSignIn(auth_url=os.environ[ENV.WORKSPACE_AUTH_URL],
                           client_id=os.environ[ENV.WORKSPACE_CLIENT_ID])
    # lifespan off: the app keeps no connections to open or close per process; the search client is built
    # on the first search
    app = create_app(workspace_service, GatewayAuth.for_settings(signin, function_settings().pipeline),
                     search_factory=workspace_search, uploads_factory=workspace_uploads,
                     recordings_factory=lambda: workspace_recordings(presigned=True))
    return Mangum(app, lifespan="off")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with invocation(context):
        # the same runtime object; Powertools and Mangum only describe it with different protocols
        response: dict[str, Any] = asgi_handler()(event, cast(MangumContext, context))
        return response
