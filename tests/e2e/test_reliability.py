"""Faults: poison messages reach the dead-letter queue with an alarm; bursts respect the concurrency cap."""

from __future__ import annotations

import email
import email.policy
import uuid

import pytest

from medscribe.domain.encounter import EncounterStatus
from medscribe.local.alarms import alarm_name, dlq_name
from tests.e2e.conftest import Driver, eventually, note, s3_notification
from tests.media import wav_bytes

pytestmark = pytest.mark.e2e


def test_poison_message_goes_to_the_dlq_with_an_alarm_while_the_batch_proceeds(driver: Driver) -> None:
    staging = f"e2e-staging-{uuid.uuid4().hex[:8]}"  # no notifications: only our batch names these objects
    driver.s3.create_bucket(Bucket=staging)
    driver.s3.put_bucket_versioning(Bucket=staging, VersioningConfiguration={"Status": "Enabled"})
    good = [driver.put(f"text/batch-{i}.txt", note(i), bucket=staging) for i in range(3)]
    bodies = [
        s3_notification(staging, g.key, g.size, "0" * 32, g.version_id, f"{i + 1:018X}") for i, g in enumerate(good)
    ]
    sentinel = f"poison-{uuid.uuid4().hex}"
    failed_before = driver.runtime.stats()["ingest"].messages_failed

    driver.send(bodies[0], "{not json " + sentinel, *bodies[1:])

    assert all(e.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW) for e in driver.wait(*good))
    route = driver.ingest
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
