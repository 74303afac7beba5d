"""One in-process local runtime for the e2e session, and a driver to feed it and read results.

The runtime uses cdk.json settings with quick retries (1 s visibility timeout, 2 receives before
the dead-letter queue) and a small ingest concurrency cap, so every behaviour shows within seconds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

import pytest

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.encounter import Encounter
from medscribe.local.runtime import LocalRuntime
from medscribe.local.state import StatePaths
from medscribe.local.uploads import Upload, upload, wait_for_terminal
from medscribe.settings import PipelineSettings, load_settings, project_root

EVENTS = project_root().parent / "shared" / "data" / "events"
T = TypeVar("T")


def e2e_settings() -> PipelineSettings:
    return load_settings().model_copy(update={
        "local_visibility_timeout_seconds": 1, "max_receive_count": 2, "max_concurrent_transcriptions": 4,
    })


def s3_notification(bucket: str, key: str, size: int, etag: str, version_id: str, sequencer: str) -> str:
    """An S3 ObjectCreated:Put notification as S3 puts it in an SQS body (real sample, our object)."""
    sample = json.loads((EVENTS / "powertools" / "s3SqsEvent.json").read_text())["Records"][0]["body"]
    event = json.loads(sample)
    record = event["Records"][0]
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"] = {
        "key": quote_plus(key), "size": size, "eTag": etag, "versionId": version_id, "sequencer": sequencer,
    }
    return json.dumps(event)


def note(number: int) -> bytes:
    """A synthetic English text note (no PHI)."""
    return f"Note {number}: patient reports a mild headache for two days; no fever.\n".encode()


def eventually(probe: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class Driver:
    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.resources = runtime.resources
        self.repository = EncounterRepository(self.resources.table)
        self.sqs = aws_clients.client("sqs")
        self.s3 = aws_clients.client("s3")

    @staticmethod
    def unique(prefix: str, name: str) -> str:
        return f"{prefix}/{uuid.uuid4().hex[:8]}/{name}"

    def put(self, key: str, body: bytes, bucket: str | None = None) -> Upload:
        return upload(bucket or self.resources.input_bucket, key, body)

    def wait(self, *uploads: Upload, timeout: float = 15.0) -> list[Encounter]:
        result = wait_for_terminal(self.repository, [u.encounter_id for u in uploads], timeout)
        assert result.complete, f"not terminal in {timeout} s: {result.pending}"
        return [result.encounters[u.encounter_id] for u in uploads]

    def encounters_for(self, key: str) -> list[Encounter]:
        return [e for e in self.repository.list() if e.source_key == key]

    def queue_depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    @property
    def ingest(self) -> Any:
        return self.resources.routes["ingest"]

    def send(self, *bodies: str) -> None:
        self.sqs.send_message_batch(
            QueueUrl=self.ingest.queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
        )

    def wait_idle(self, timeout: float = 15.0) -> None:
        eventually(lambda: self.queue_depth(self.ingest.queue_url) == 0, timeout)


@pytest.fixture(scope="package")  # stopped before other test packages run their own moto mocks
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    local = LocalRuntime(StatePaths(Path(tmp_path_factory.mktemp("medscribe-state"))), e2e_settings())
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def driver(runtime: LocalRuntime) -> Driver:
    return Driver(runtime)
