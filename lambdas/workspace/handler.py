"""Workspace handler: the clinician workspace's ASGI app (medscribe.workspace) behind API Gateway.

Trigger: the workspace HTTP API (payload format 2.0): its `$default` route, only for requests whose
Cognito access token the workspace's Lambda authorizer accepted (its context `sub`, `groups` reaches
the app as `scope["aws.event"]["requestContext"]["authorizer"]["lambda"]`), and the two sign-in routes,
GET /login and GET /auth/callback, which have no authorizer: they are how a browser gets the token.
Side effects: those of the workspace service: note versions, sign-offs, audit records; presigned audio
URLs and upload forms (signed locally, used by the browser against S3).
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
    from medscribe.services.wiring import workspace_recordings, workspace_service, workspace_uploads
    from medscribe.workspace.app import create_app
    from medscribe.workspace.auth import GatewayAuth

    signin = CognitoSignIn(auth_url=os.environ[ENV.WORKSPACE_AUTH_URL],
                           client_id=os.environ[ENV.WORKSPACE_CLIENT_ID])
    # lifespan off: the app keeps no connections to open or close per process. No search factory: the
    # workspace role has no OpenSearch access yet, so search answers that it is not configured here.
    app = create_app(workspace_service, GatewayAuth(signin),
                     recordings_factory=lambda: workspace_recordings(presigned=True), uploads_factory=workspace_uploads)
    return Mangum(app, lifespan="off")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with invocation(context):
        # the same runtime object; Powertools and Mangum only describe it with different protocols
        response: dict[str, Any] = asgi_handler()(event, cast(MangumContext, context))
        return response
