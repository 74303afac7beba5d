"""One malformed message in a batch (RELIABILITY.md): that record alone is dropped, logged by its
message id and counted in the MalformedMessages metric; its neighbours are processed.

For every route of medscribe.routes.ROUTES (a route without a case here fails), one batch: a good
message (its producer's real shape) between malformed ones (not JSON, another JSON shape, the right
envelope without the id the handler needs). Every malformed body carries a PHI sentinel, which must
not reach the logs. The handler's service is replaced by a recorder after the import (the behaviour
under test is the handler's parsing, not the service); tests/handlers/test_ingest.py runs the same
batch through the real ingest service, tests/handlers/test_message_round_trips.py the producers' own
messages.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from medscribe.observability import logger
from medscribe.routes import ROUTES, ScheduleTrigger, route
from medscribe.settings import ENV
from tests.handlers.conftest import Context, shared_event
from tests.handlers.test_index import change
from tests.handlers.test_ingest import sqs_event

SENTINEL = "Zebediah Quokkaworth DOB 1962-03-04"


@dataclass
class RecordingService:
    """Stands in for every handler's SERVICE: records what each call was given."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def ingest(self, ref: Any) -> None:
        self.calls.append(("ingest", ref.bucket))

    def complete_job(self, job_name: str) -> None:
        self.calls.append(("complete_job", job_name))

    def document(self, encounter_id: str) -> None:
        self.calls.append(("document", encounter_id))

    def extract(self, encounter_id: str) -> None:
        self.calls.append(("extract", encounter_id))

    def reconcile(self) -> None:
        self.calls.append(("reconcile", None))

    def tick(self) -> None:
        self.calls.append(("tick", None))

    def score_encounters(self, encounter_ids: Any) -> tuple[list[Any], set[str]]:
        self.calls.append(("score_encounters", sorted(encounter_ids)))
        return [], set()

    def sync(self, by_encounter: dict[str, list[str]]) -> set[str]:
        self.calls.append(("sync", sorted(by_encounter)))
        return set()


def s3_notification() -> dict[str, Any]:
    return dict(json.loads(shared_event("powertools/s3SqsEvent.json")["Records"][0]["body"]))


def transcribe_event(detail: dict[str, Any]) -> dict[str, Any]:
    event = shared_event("transcribe_eventbridge_from_docs/transcribe-job-state-change-COMPLETED.json")
    return {**event, "detail": detail}


def pipeline_event(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """One of medscribe's own events as its rule delivers it (the EventBridge envelope of the Transcribe event)."""
    return {**transcribe_event(detail), "detail-type": detail_type, "source": "medscribe"}


def schedule_message(name: str) -> dict[str, Any]:
    """What the route's schedule sends (the route table's message, as its JSON)."""
    trigger = route(name).trigger
    assert isinstance(trigger, ScheduleTrigger)
    return dict(json.loads(trigger.message.model_dump_json()))


def without_object_key() -> dict[str, Any]:
    body = copy.deepcopy(s3_notification())
    del body["Records"][0]["s3"]["object"]["key"]
    body["Records"][0]["s3"]["object"]["note"] = SENTINEL
    return body


def ready(detail_type: str, encounter_id: str) -> dict[str, Any]:
    return pipeline_event(detail_type, {"encounter_id": encounter_id, "stage": "dev"})


DOCUMENTATION, SCORING = "Encounter Ready For Documentation", "Encounter Ready For Scoring"
ENTITIES = "Encounter Ready For Entities"
# handler -> (good body, the call it makes, malformed bodies of the handler's own kind)
CASES: dict[str, tuple[dict[str, Any], tuple[str, Any], list[dict[str, Any]]]] = {
    "ingest": (s3_notification(), ("ingest", "xxx"), [without_object_key(), {"Records": [], "note": SENTINEL}]),
    "transcript": (
        transcribe_event({"TranscriptionJobName": "medscribe-dev-enc-1", "TranscriptionJobStatus": "COMPLETED"}),
        ("complete_job", "medscribe-dev-enc-1"),
        [transcribe_event({"TranscriptionJobStatus": "COMPLETED", "note": SENTINEL}),
         transcribe_event({"TranscriptionJobName": ["medscribe-dev-enc-1"], "note": SENTINEL})],
    ),
    "document": (
        ready(DOCUMENTATION, "enc-1"), ("document", "enc-1"),
        [pipeline_event(DOCUMENTATION, {"stage": "dev", "note": SENTINEL}), ready(DOCUMENTATION, ""),
         pipeline_event(DOCUMENTATION, {"encounter_id": "enc-1", "note": SENTINEL})],
    ),
    "entities": (
        ready(ENTITIES, "enc-1"), ("extract", "enc-1"),
        [pipeline_event(ENTITIES, {"stage": "dev", "note": SENTINEL}), ready(ENTITIES, ""),
         {"detail": {"encounter_id": ["enc-1"], "stage": SENTINEL}, "detail-type": ENTITIES}],
    ),
    "reconcile": (schedule_message("reconcile"), ("reconcile", None), [{"task": f"selfheal {SENTINEL}"}]),
    "selfheal": (schedule_message("selfheal"), ("tick", None), [{"task": f"reconcile {SENTINEL}"}]),
    "score": (
        ready(SCORING, "enc-1"), ("score_encounters", ["enc-1"]),
        [pipeline_event(SCORING, {"encounter_id": 7, "note": SENTINEL}),
         {"detail": SENTINEL, "detail-type": SCORING}],
    ),
    "index": (
        change("enc-1"), ("sync", ["enc-1"]),
        [{"pk": "SCORE#enc-2", "sk": "SCORE#baseline", "eventName": "MODIFY", "note": SENTINEL},
         {"sk": "ENC", "eventName": "MODIFY", "note": SENTINEL}, {**change("enc-3"), "eventName": SENTINEL}],
    ),
}
NOT_JSON = "{not json " + SENTINEL
ANOTHER_SHAPE = json.dumps([SENTINEL])


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """What the handlers' Powertools logger writes (its stream is the stdout of whoever created it first)."""
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    yield buffer
    logger.registered_handler.setStream(previous or buffer)


def test_every_case_is_a_route() -> None:
    assert set(CASES) <= {r.name for r in ROUTES}


@pytest.mark.parametrize("name", [r.name for r in ROUTES])
def test_a_malformed_message_is_dropped_alone_and_its_neighbours_are_processed(  # type: ignore[no-untyped-def]
    name: str, load_handler, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log: io.StringIO, capsys
) -> None:
    assert name in CASES, f"route {name} has no malformed-message case"
    good, call, own_kind = CASES[name]
    monkeypatch.setenv(ENV.SEARCH_URL, f"sqlite:///{tmp_path / 'search.db'}")
    module = load_handler(name)
    service = RecordingService()
    module.SERVICE = service
    capsys.readouterr()
    log.truncate(0)

    malformed = [NOT_JSON, ANOTHER_SHAPE, *(json.dumps(body) for body in own_kind)]
    bodies = [malformed[0], json.dumps(good), *malformed[1:]]
    result = module.handler(sqs_event(*bodies), Context())

    assert result == {"batchItemFailures": []}  # a retry could only fail again, until the DLQ
    assert service.calls == [call]
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    dropped = [line for line in lines if line["message"] == "dropped a malformed message"]
    assert sorted(line["message_id"] for line in dropped) == sorted(
        f"msg-{n}" for n, body in enumerate(bodies) if body != json.dumps(good)
    )
    assert all(line["level"] == "WARNING" and line["problems"] for line in dropped)
    printed = capsys.readouterr()
    [emf] = [json.loads(line) for line in printed.out.splitlines() if line.startswith('{"_aws"')]
    assert sum(emf["MalformedMessages"]) == len(malformed)
    for output in (log.getvalue(), printed.out, printed.err):
        assert "Quokkaworth" not in output
