"""Workspace handler (lambdas/workspace/handler.py) through Mangum, with the HTTP API's payload format 2.0
event and the Lambda authorizer's context, over moto and a local stand-in of the OpenSearch domain (the
SigV4-signed requests opensearch-py sends, answered with OpenSearch's response shapes): a clinician lists,
views, edits, signs and searches; an admin erases. Every AWS call the handler makes here (DynamoDB, S3,
Transcribe, OpenSearch) is recorded by tests/contract/recorder.py, and the contract tier checks each against
the synthesized workspace role (test_iam_coverage)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import ModuleType
from typing import Any

import boto3
import pytest

from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.search import DEFAULT_INDEX
from medscribe.domain.transcribe_naming import job_name
from medscribe.settings import ENV, load_settings
from medscribe.workspace.auth import AWS_CSRF_COOKIE
from tests.contract.recorder import recorded_calls
from tests.handlers.conftest import Context, shared_event
from tests.handlers.test_document import fareez_lines, ready
from tests.handlers.test_document import load_handler as load_handler
from tests.local_server import serve

__all__ = ["load_handler"]

CSRF = "c" * 43
HOST = "id.execute-api.us-east-1.amazonaws.com"
CLINICIAN = ("0f1e2d3c-clinician", "clinician")
ADMIN = ("9a8b7c6d-admin", "admin clinician")


@dataclass
class FakeDomain:
    """The OpenSearch domain's `_search` and `_bulk` endpoints; keeps (method, path) of each request."""

    url: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)
    hit: str = ""  # the encounter id every search finds


def _domain_handler(domain: FakeDomain) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            domain.requests.append((self.command, path))
            assert self.headers["Authorization"].startswith("AWS4-HMAC-SHA256 ")  # SigV4, service es
            if path == f"/{DEFAULT_INDEX}/_search":
                source = {"status": "DOCUMENTED", "updated_at": "2026-12-01T10:00:00Z", "transcript": "chest pain"}
                reply: dict[str, Any] = {"took": 3, "hits": {"hits": [{
                    "_id": domain.hit, "_score": 1.5, "_source": source,
                    "highlight": {"transcript": ["\ue000chest\ue001 pain"]}}]}}
            else:  # _bulk: one result per action line (deletes carry no source line)
                actions = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                reply = {"took": 1, "errors": False, "items": [
                    {kind: {"_index": DEFAULT_INDEX, "_id": meta["_id"], "status": 200, "result": "deleted"}}
                    for action in actions for kind, meta in action.items()]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def domain() -> Iterator[FakeDomain]:
    fake = FakeDomain()
    with serve(_domain_handler(fake)) as url:
        fake.url = url
        yield fake


@pytest.fixture
def workspace(load_handler, world: dict[str, Any], domain: FakeDomain,  # type: ignore[no-untyped-def]
              monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The handler with the environment stacks/workspace.py gives it (the search domain's URL: the fake's)."""
    monkeypatch.setenv(ENV.SEARCH_URL, domain.url)
    monkeypatch.setenv(ENV.WORKSPACE_AUTH_URL, "https://medscribe-dev-123456789012.auth.us-east-1.amazoncognito.com")
    monkeypatch.setenv(ENV.WORKSPACE_CLIENT_ID, "workspaceclient")
    module: ModuleType = load_handler("workspace")
    return module


def documented(load_handler, world: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    """An audio encounter transcribed by a job named as the pipeline names it, then documented."""
    body = b"ID3"
    version = boto3.client("s3").put_object(Bucket=world["bucket"], Key="audio/clinic-a/visit.mp3",
                                            Body=body)["VersionId"]
    ref = ObjectRef(bucket=world["bucket"], key="audio/clinic-a/visit.mp3", size=len(body), version_id=version)
    repo = EncounterRepository(world["table"])
    repo.create(Encounter.from_ref(ref, Kind.AUDIO, EncounterStatus.RECEIVED, media_format="mp3"))
    repo.acquire_slot(ref.encounter_id, cap=5, job_name=job_name(load_settings().prefix, ref.encounter_id))
    lines_key = f"transcripts/{ref.encounter_id}/lines.json"
    boto3.client("s3").put_object(Bucket="artifacts", Key=lines_key,
                                  Body=json.dumps({"lines": fareez_lines(count=20)}).encode())
    repo.finish_transcription(ref.encounter_id, EncounterStatus.TRANSCRIBED, transcript_key=lines_key,
                              language_code="en-US")
    assert load_handler("document").handler(ready(ref.encounter_id), Context()) == {"batchItemFailures": []}
    return ref.encounter_id


def request(method: str, path: str, who: tuple[str, str], *, query: str = "", body: Any = None) -> dict[str, Any]:
    """The HTTP API's event for a request the authorizer accepted (its context: sub, groups)."""
    event = shared_event("apiGatewayProxyV2LambdaAuthorizerEvent.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    event.pop("queryStringParameters", None)
    event.pop("pathParameters", None)
    event["requestContext"]["authorizer"]["lambda"] = {"sub": who[0], "groups": who[1]}
    event["headers"] = {"host": HOST, "x-forwarded-proto": "https", "content-type": "application/json",
                        "origin": f"https://{HOST}", "x-csrf-token": CSRF}
    event["cookies"] = [f"{AWS_CSRF_COOKIE}={CSRF}"]
    event["body"] = json.dumps(body) if body is not None else None
    return event


def call(workspace: ModuleType, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    response = workspace.handler(request(*args, **kwargs), Context())
    text = response.get("body") or ""
    is_json = response["headers"].get("content-type", "").startswith("application/json")
    return response["statusCode"], json.loads(text) if is_json else text


def test_a_clinician_reviews_edits_signs_and_searches_and_an_admin_erases(  # type: ignore[no-untyped-def]
        load_handler, world: dict[str, Any], workspace: ModuleType, domain: FakeDomain) -> None:
    encounter_id = documented(load_handler, world)
    domain.hit = encounter_id

    status, listed = call(workspace, "GET", "/api/encounters", CLINICIAN, query="limit=10")
    assert status == 200
    assert [item["encounter_id"] for item in listed["items"]] == [encounter_id]
    status, view = call(workspace, "GET", f"/api/encounters/{encounter_id}", CLINICIAN)
    assert status == 200
    sections = view["note"]["sections"]
    sections[0]["items"].append({"text": "Chest pain on exertion", "lines": [1]})
    status, saved = call(workspace, "PUT", f"/api/encounters/{encounter_id}/note", CLINICIAN,
                         body={"version": view["note"]["version"], "note": {"sections": sections}})
    assert status == 200, saved
    status, signed = call(workspace, "POST", f"/api/encounters/{encounter_id}/sign", CLINICIAN,
                          body={"version": saved["version"]})
    assert status == 200, signed
    status, page = call(workspace, "GET", f"/encounters/{encounter_id}", CLINICIAN)
    assert status == 200
    assert "Chest pain on exertion" in page
    status, found = call(workspace, "GET", "/api/search", CLINICIAN, query="q=chest")
    assert status == 200, found
    assert [hit["encounter_id"] for hit in found["items"]] == [encounter_id]
    assert ("POST", f"/{DEFAULT_INDEX}/_search") in domain.requests

    status, _ = call(workspace, "DELETE", f"/api/encounters/{encounter_id}", CLINICIAN)
    assert status == 403  # erasure is an admin's
    status, report = call(workspace, "DELETE", f"/api/encounters/{encounter_id}", ADMIN)
    assert status == 200, report
    assert report["erased"] == [encounter_id]
    assert report["deleted"]["search documents"] == 1
    assert ("POST", "/_bulk") in domain.requests
    assert EncounterRepository(world["table"]).get(encounter_id) is None
    versions = boto3.client("s3").list_object_versions(Bucket=world["bucket"], Prefix="audio/")
    assert not versions.get("Versions")
    assert not versions.get("DeleteMarkers")
    status, trail = call(workspace, "GET", f"/api/encounters/{encounter_id}/audit", ADMIN)
    assert status == 200
    assert "erase" in {event["action"] for event in trail["items"]}

    # what the contract tier checks against the synthesized role: every kind of call, from worker threads too
    made = {(c.service, c.operation) for c in recorded_calls(function="workspace") if c.test and "erases" in c.test}
    assert {("dynamodb", "Query"), ("dynamodb", "TransactWriteItems"), ("s3", "GetObject"),
            ("s3", "DeleteObjects"), ("s3", "ListObjectVersions"), ("transcribe", "DeleteTranscriptionJob"),
            ("es", "ESHttpPost")} <= made, made

