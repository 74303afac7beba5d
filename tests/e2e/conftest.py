"""One in-process local runtime for the e2e session, and a driver to feed it and read results.

The runtime uses cdk.json settings with quick retries (3 s visibility timeout: longer than a
transcript or note invocation takes here; 2 receives before the dead-letter queue), a small
transcription cap and a 2 s reconciler timer (10 s stuck age), so
every behaviour shows within seconds. Audio is transcribed by the real local speech engine.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

import numpy as np
import pytest
from faster_whisper import decode_audio

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.encounter import Encounter
from medscribe.settings import PipelineSettings, load_settings, project_root
from medscribe_local.runtime import LocalRuntime
from medscribe_local.state import StatePaths
from medscribe_local.uploads import Upload, upload, wait_for_terminal
from tests import FIXTURES

EVENTS = FIXTURES / "events"
SAMPLE_AUDIO = project_root() / "sample-data" / "audio" / "fareez"
T = TypeVar("T")


def e2e_settings() -> PipelineSettings:
    return load_settings().model_copy(update={
        "local_visibility_timeout_seconds": 3, "max_receive_count": 2, "max_concurrent_transcriptions": 4,
        "local_reconcile_interval_seconds": 2, "local_stuck_after_seconds": 10,
    })


@cache
def speech_wav(seconds: float = 2.0) -> bytes:
    """The opening of a sample recording as a stereo 16 kHz WAV: the clinician, on the left channel,
    asking "What brings you in today?" (1.6 s); shorter cuts end mid-question."""
    left, right = decode_audio(str(SAMPLE_AUDIO / "GAS0001.mp3"), split_stereo=True)
    frames = np.stack([left, right], axis=1)[: int(seconds * 16000)]
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes((np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


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
        """The encounters once terminal and, documented ones, coded by the entities stage (its write is
        the last: a record read earlier would change under a test comparing it later)."""
        result = wait_for_terminal(self.repository, [u.encounter_id for u in uploads], timeout,
                                   until_coded=self.runtime.settings.entity_engine != "off")
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

    def outbox_files(self, subject_contains: str) -> list[Path]:
        """The outbox's .eml files whose subject contains the text."""
        found = []
        for path in sorted(self.runtime.paths.outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if subject_contains in str(message["Subject"]):
                found.append(path)
        return found

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures the reliability tests recorded (tests/faults.py FIGURES), after the run."""
    from tests.faults import FIGURES

    if not FIGURES:
        return
    terminalreporter.write_sep("=", "reliability figures")
    section = None
    for name, figure, value in FIGURES:
        if name != section:
            terminalreporter.write_line(f"{name}:")
            section = name
        terminalreporter.write_line(f"  {figure}: {value}")
