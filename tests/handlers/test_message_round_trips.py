"""Producers and handlers share medscribe.messages: what each producer sends, delivered the way its
route delivers it (moto's S3 notifications and EventBridge rules; the schedules' messages), is parsed
by the handler's model and reaches the handler's service with the right ids. The stream's Pipe
template: tests/adapters/test_stream_message.py; the local Transcribe's events:
tests/adapters/test_local_transcribe.py."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from medscribe.adapters.events import EventPublisher
from medscribe.domain.encounter import ObjectRef
from medscribe.messages import EncounterDetail, EncounterEvent, S3Message, parse
from medscribe.routes import ROUTES, EventTrigger, ScheduleTrigger, route
from tests.handlers.conftest import Context
from tests.handlers.test_ingest import sqs_event
from tests.handlers.test_malformed_messages import RecordingService

ODD_KEY = "audio/Dr visit+1 한국 (2).wav"


def queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def bodies(url: str) -> list[str]:
    return [m["Body"] for m in boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]


def handled(load_handler: Any, name: str, *messages: str) -> list[tuple[str, Any]]:
    """The service calls the route's handler makes for these queue bodies (none may be malformed)."""
    module = load_handler(name)
    module.SERVICE = service = RecordingService()
    assert module.handler(sqs_event(*messages), Context()) == {"batchItemFailures": []}
    return service.calls


@pytest.mark.parametrize("name", [r.name for r in ROUTES if isinstance(r.trigger, EventTrigger)
                                  and r.trigger.pattern["source"] == ["medscribe"]])
def test_what_the_event_publisher_puts_reaches_its_routes_handler(load_handler, name: str) -> None:  # type: ignore[no-untyped-def]
    trigger = route(name).trigger
    assert isinstance(trigger, EventTrigger)
    url, arn = queue(name)
    events = boto3.client("events")
    events.put_rule(Name=trigger.rule, EventPattern=json.dumps(trigger.pattern))
    events.put_targets(Rule=trigger.rule, Targets=[{"Id": name, "Arn": arn}])

    publisher = EventPublisher("dev")
    publisher.ready_for_documentation("enc-doc")
    publisher.ready_for_scoring("enc-score")
    publisher.ready_for_entities("enc-entities")

    [body] = bodies(url)  # the rule passes its own event type only
    encounter_id = parse(EncounterEvent, body).detail.encounter_id
    assert parse(EncounterEvent, body).detail == EncounterDetail(encounter_id=encounter_id, stage="dev")
    expected = {"document": ("document", "enc-doc"), "score": ("score_encounters", ["enc-score"]),
                "entities": ("extract", "enc-entities")}[name]
    assert handled(load_handler, name, body) == [expected]


def test_an_s3_notification_reaches_the_ingest_handler_with_the_key_decoded(load_handler, bucket: str) -> None:  # type: ignore[no-untyped-def]
    url, arn = queue("ingest")
    s3 = boto3.client("s3")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key=ODD_KEY, Body=b"RIFF")

    received = bodies(url)  # the configuration's s3:TestEvent, then the object's notification
    assert len(received) == 2
    refs: list[ObjectRef] = []
    module = load_handler("ingest")
    for body in received:
        refs += module.object_refs(parse(S3Message, body))
    [ref] = refs
    assert (ref.bucket, ref.key, ref.size) == (bucket, ODD_KEY, 4)
    assert handled(load_handler, "ingest", *received) == [("ingest", bucket)]


@pytest.mark.parametrize("name", [r.name for r in ROUTES if isinstance(r.trigger, ScheduleTrigger)])
def test_a_schedule_tick_reaches_its_routes_handler(load_handler, name: str) -> None:  # type: ignore[no-untyped-def]
    trigger = route(name).trigger
    assert isinstance(trigger, ScheduleTrigger)
    expected = {"reconcile": ("reconcile", None), "selfheal": ("tick", None)}[name]
    assert handled(load_handler, name, trigger.message.model_dump_json()) == [expected]
