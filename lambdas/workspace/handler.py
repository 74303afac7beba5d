"""Workspace handler: the clinician workspace's ASGI app (medscribe.workspace) behind API Gateway.

Trigger: the workspace HTTP API's `$default` route (payload format 2.0), only for requests whose token
API Gateway's JWT authorizer accepted (issuer: the workspace user pool, audience: its app client); the
claims (`sub`, `cognito:groups`) reach the app as `scope["aws.event"]["requestContext"]["authorizer"]`.
Side effects: those of the workspace service: note versions, sign-offs, audit records; presigned audio
URLs and upload forms (signed locally, used by the browser against S3).
Idempotency: a note save names the version it edits (a stale one is refused), a sign-off the version it
signs. Never logged: bodies, query strings, tokens (the app logs ids and statuses only).
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.types import LambdaContext as MangumContext

from medscribe.invocation import invocation
from medscribe.observability import logger, metrics, tracer


@cache
def asgi_handler() -> Mangum:
    """The app, built on the first request: its web libraries and templates load once per process, and
    importing this module stays cheap."""
    from medscribe.services.wiring import workspace_recordings, workspace_service
    from medscribe.workspace.app import create_app
    from medscribe.workspace.auth import CognitoAuth

    # lifespan off: the app keeps no connections to open or close per process. No search factory: the
    # workspace role has no OpenSearch access yet, so search answers that it is not configured here.
    app = create_app(workspace_service, CognitoAuth(),
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
