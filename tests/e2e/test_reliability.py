"""Faults: poison messages reach the dead-letter queue with an alarm, malformed ones are dropped alone;
bursts respect the concurrency cap."""

from __future__ import annotations

import email
import email.policy
import json
import uuid

import pytest

from medscribe.domain.encounter import EncounterStatus
from medscribe_local.alarms import alarm_name, dlq_name
from medscribe_local.uploads import Upload
from tests.e2e.conftest import Driver, eventually, note, s3_notification
from tests.faults import FaultInjector, FaultKind, Stage
from tests.media import wav_bytes

pytestmark = pytest.mark.e2e


def staged_batch(driver: Driver, names: list[str]) -> tuple[list[Upload], list[str]]:
    """Text notes in a bucket without notifications (only our batch names them), and their S3 notifications."""
    staging = f"e2e-staging-{uuid.uuid4().hex[:8]}"
    driver.s3.create_bucket(Bucket=staging)
    driver.s3.put_bucket_versioning(Bucket=staging, VersioningConfiguration={"Status": "Enabled"})
    uploads = [driver.put(f"text/{name}.txt", note(i), bucket=staging) for i, name in enumerate(names)]
    bodies = [s3_notification(staging, u.key, u.size, "0" * 32, u.version_id, f"{i + 1:018X}")
              for i, u in enumerate(uploads)]
    return uploads, bodies


def test_poison_message_goes_to_the_dlq_with_an_alarm_while_the_batch_proceeds(driver: Driver) -> None:
    """A well-formed message whose processing keeps failing (every read of its object is throttled)."""
    sentinel = f"poison-{uuid.uuid4().hex}"
    uploads, bodies = staged_batch(driver, ["batch-0", sentinel, "batch-2", "batch-3"])
    good = [uploads[0], *uploads[2:]]
    failed_before = driver.runtime.stats()["ingest"].messages_failed
    faults = FaultInjector(1.0, stage=Stage.CALL, routes={"ingest"}, mentioning=sentinel,
                           faults={"s3": (FaultKind("SlowDown", 503),)})

    route = driver.ingest
    with faults:
        driver.send(*bodies)
        assert all(e.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW) for e in driver.wait(*good))
        eventually(lambda: driver.queue_depth(route.dlq_url) == 1, timeout=20)
    [dead] = driver.sqs.receive_message(QueueUrl=route.dlq_url, VisibilityTimeout=0)["Messages"]
    assert sentinel in dead["Body"]
    stats = driver.runtime.stats()["ingest"]
    assert stats.messages_failed - failed_before == driver.runtime.settings.max_receive_count

    # this route's alarm (other tests may have raised other routes' alarms in the same runtime)
    [alarm_file] = eventually(lambda: driver.outbox_files(f'ALARM: "{alarm_name(route)}"'), timeout=10)
    alarm = email.message_from_bytes(alarm_file.read_bytes(), policy=email.policy.default)
    assert str(alarm["Subject"]).strip().startswith(f'ALARM: "{alarm_name(route)}"')
    assert alarm["To"]
    assert alarm["From"]
    assert alarm["Date"]
    body = alarm.get_body().get_content()  # type: ignore[union-attr]
    assert dlq_name(route) in body
    assert sentinel not in alarm_file.read_text(encoding="utf-8")
    assert sentinel not in driver.runtime.paths.log_file.read_text(encoding="utf-8")


def test_a_malformed_message_is_dropped_alone_while_its_batch_proceeds(driver: Driver) -> None:
    """Not JSON: it can never be processed, so it is neither retried nor sent to the DLQ; the log names
    it by message id, without its body."""
    sentinel = f"malformed-{uuid.uuid4().hex}"
    good, bodies = staged_batch(driver, ["batch-0", "batch-1", "batch-2"])
    route = driver.ingest
    failed_before = driver.runtime.stats()["ingest"].messages_failed
    dead_before = driver.queue_depth(route.dlq_url)

    response = driver.sqs.send_message_batch(QueueUrl=route.queue_url, Entries=[
        {"Id": str(i), "MessageBody": body} for i, body in enumerate([bodies[0], "{not json " + sentinel, *bodies[1:]])
    ])
    [malformed_id] = [entry["MessageId"] for entry in response["Successful"] if entry["Id"] == "1"]

    assert all(e.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW) for e in driver.wait(*good))
    log = driver.runtime.paths.log_file
    [dropped] = eventually(lambda: [line for line in log.read_text(encoding="utf-8").splitlines()
                                    if malformed_id in line and "dropped a malformed message" in line], timeout=10)
    assert json.loads(dropped)["message_id"] == malformed_id
    eventually(lambda: driver.queue_depth(route.queue_url) == 0, timeout=10)  # deleted, as Lambda's mapping does
    assert driver.queue_depth(route.dlq_url) == dead_before
    assert driver.runtime.stats()["ingest"].messages_failed == failed_before
    assert sentinel not in log.read_text(encoding="utf-8")


def test_a_burst_of_uploads_all_end_terminal_within_the_concurrency_cap(driver: Driver) -> None:
    cap = driver.ingest.max_concurrency
    uploads = [
        driver.put(driver.unique("audio", f"burst-{i}.wav"), wav_bytes(0.5)) if i % 2
        else driver.put(driver.unique("text", f"burst-{i}.txt"), note(i))
        for i in range(50)
    ]

    encounters = driver.wait(*uploads, timeout=180)  # generous: CI machines are shared and slow at times

    assert all(e.is_terminal and e.status is not EncounterStatus.REJECTED for e in encounters)
    stats = driver.runtime.stats()["ingest"]
    assert cap == 4
    assert 2 <= stats.max_in_flight <= cap  # concurrency was used, never beyond the cap
    assert stats.cold_starts <= cap
