"""Ask handler behind its function URL (the real payload format 2.0 event): answers over a transcribed
encounter through the Bedrock adapter against the strict local Converse endpoint, 400 for a body
that is not an AskRequest (fields and error types, never values), 404 for an unknown encounter, 503
when the model cannot answer in time (a handled TransientError, never a killed invocation)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from medscribe.adapters import aws_clients
from medscribe.messages import MAX_QUESTION_CHARS
from medscribe_local.converse_endpoint import ConverseEndpoint
from tests.handlers.conftest import Context, shared_event
from tests.handlers.test_document import fareez_lines, transcribed_encounter
from tests.handlers.test_malformed_messages import SENTINEL
from tests.handlers.test_malformed_messages import log as log
from tests.handlers.test_score import world as world


def request(body: dict[str, Any] | str) -> dict[str, Any]:
    event = shared_event("powertools/lambdaFunctionUrlEvent.json")
    event["rawPath"] = "/ask"
    event["requestContext"]["http"].update(method="POST", path="/ask")
    event["headers"]["content-type"] = "application/json"
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


class ShortContext(Context):
    """An invocation with less time left than one model call may take."""

    def get_remaining_time_in_millis(self) -> int:
        return 20_000


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with ConverseEndpoint() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.url)
        aws_clients.reset()
        yield endpoint
    aws_clients.reset()


def test_a_question_is_answered_with_cited_lines_through_bedrock(load_handler, world, bedrock) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribed_encounter(world, fareez_lines(count=20))
    response = load_handler("ask", note_engine="bedrock").handler(request({"encounter_id": encounter_id,
                                                    "question": "How long has the breathlessness lasted?"}), Context())
    assert response["statusCode"] == 200
    answer = json.loads(response["body"])
    assert answer["engine"].startswith("bedrock:")
    assert set(answer["lines"]) <= set(range(1, 21))
    assert bedrock.rejected == []
    assert len(bedrock.requests) == 1


@pytest.mark.parametrize(("body", "problems"), [
    ("", ["body: json_invalid"]),
    ("{not json " + SENTINEL, ["body: json_invalid"]),
    (json.dumps([SENTINEL]), ["body: model_type"]),
    (json.dumps(SENTINEL), ["body: model_type"]),
    ({"question": SENTINEL}, ["encounter_id: missing"]),
    ({"encounter_id": "enc-x", "question": " \n "}, ["question: string_too_short"]),
    ({"encounter_id": 7, "question": [SENTINEL]}, ["encounter_id: string_type", "question: string_type"]),
    ({"encounter_id": SENTINEL * 2, "question": SENTINEL * (MAX_QUESTION_CHARS // len(SENTINEL) + 1)},
     ["encounter_id: string_too_long", "question: string_too_long"]),
])
def test_a_body_that_is_not_an_ask_request_is_400_naming_fields_and_errors_never_values(  # type: ignore[no-untyped-def]
    load_handler, world, bedrock, log: io.StringIO, body: dict[str, Any] | str, problems: list[str]
) -> None:
    response = load_handler("ask", note_engine="bedrock").handler(request(body), Context())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["problems"] == problems
    assert "Quokkaworth" not in response["body"] + log.getvalue()
    assert bedrock.requests == []


def test_an_unknown_encounter_is_404(load_handler, world, bedrock) -> None:  # type: ignore[no-untyped-def]
    response = load_handler("ask", note_engine="bedrock").handler(
        request({"encounter_id": "enc-" + "0" * 32, "question": "x"}), Context())
    assert response["statusCode"] == 404
    assert bedrock.requests == []


def test_too_little_time_for_a_model_call_is_503_not_a_killed_invocation(load_handler, world, bedrock) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribed_encounter(world, fareez_lines(count=20))
    response = load_handler("ask", note_engine="bedrock").handler(
        request({"encounter_id": encounter_id, "question": "Any allergies?"}), ShortContext())
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "30"
    assert bedrock.requests == []  # the call was never started


def test_an_answer_that_is_not_json_is_asked_again_of_the_long_model(load_handler, world, bedrock) -> None:  # type: ignore[no-untyped-def]
    """The retry goes to the long tier (bedrock_long_model_id), the second model the stack grants."""
    from medscribe.settings import load_settings
    from medscribe_local.converse_endpoint import OfflineResponder

    offline = OfflineResponder()
    bedrock.responder = lambda request: ([{"text": "I think so."}], "end_turn") if len(bedrock.requests) == 1 \
        else offline(request)
    encounter_id = transcribed_encounter(world, fareez_lines(count=20))
    response = load_handler("ask", note_engine="bedrock").handler(
        request({"encounter_id": encounter_id, "question": "Any allergies?"}), Context())
    assert response["statusCode"] == 200
    settings = load_settings()
    assert [r["modelId"] for r in bedrock.requests] == [settings.bedrock_model_id, settings.bedrock_long_model_id]
