"""Ask handler.

Trigger: an IAM-authorised Lambda function URL: POST /ask {"encounter_id": "...", "question": "..."}.
Side effects: none (reads the encounter's transcript lines; calls the configured model, or answers
offline with the retrieved lines).
Response: {"answer", "lines": [n, ...], "found", "engine", "verified", "problems"}; 404 for an unknown or not yet
transcribed encounter; 400 for a body that is not a medscribe.messages.AskRequest, naming the fields and
pydantic's error types, never their values. The question and answer are never logged (PHI).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from medscribe.domain.errors import TransientError
from medscribe.invocation import invocation
from medscribe.messages import AskRequest, MalformedMessage, parse
from medscribe.observability import logger, metrics, tracer
from medscribe.services.wiring import ask_service

SERVICE = ask_service()
app = LambdaFunctionUrlResolver()


@app.exception_handler(TransientError)
def busy(_exc: TransientError) -> Response[str]:
    """Throttling, a model timeout, or too little time left in this invocation: try again later."""
    return Response(503, content_types.APPLICATION_JSON, '{"error": "the model is busy; try again"}',
                    headers={"Retry-After": "30"})


@app.exception_handler(MalformedMessage)
def bad_request(exc: MalformedMessage) -> Response[str]:
    """Field paths and error types only: the question may hold PHI."""
    return Response(400, content_types.APPLICATION_JSON,
                    json.dumps({"error": "the body must be a JSON object with encounter_id and question",
                                "problems": exc.problems}))


@app.post("/ask")
@tracer.capture_method(capture_response=False)
def ask() -> Response[str] | dict[str, Any]:
    request = parse(AskRequest, app.current_event.body or "")
    answer = SERVICE.ask(request.encounter_id, request.question)
    if answer is None:
        return Response(404, content_types.APPLICATION_JSON, '{"error": "no transcript for this encounter"}')
    return answer.to_dict()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with invocation(context):
        return app.resolve(event, context)
