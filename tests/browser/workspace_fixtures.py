"""A running clinician workspace for the browser tests: the real app (`create_app`, the local
one-time-token login) served by uvicorn on a free loopback port, over the real WorkspaceService
and S3 recordings on a moto-backed world, with one documented audio encounter in it.

The encounter is the Fareez OSCE consultation CAR0003: the recording is the real sample MP3
(sample-data/audio/fareez/CAR0003.mp3, streamed by the app with HTTP Range), the transcript lines are
that consultation's dialogue (its first 24 turns, what the clip holds) with start times spread over
the clip by word count (no speech engine runs here), and one more patient line carries planted
markup. The note is written by the real document handler (offline engine), as the pipeline does.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn

from medscribe import settings as settings_module
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.services.wiring import workspace_service
from medscribe.settings import FunctionSettings, function_env, load_settings
from medscribe.workspace.app import create_app
from medscribe.workspace.auth import LocalAuth
from medscribe.workspace.ports import Actor, Uploads
from medscribe.workspace.recordings import S3Recordings
from tests.dialogues import DIALOGUES
from tests.handlers.conftest import Context
from tests.handlers.test_document import ready

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "sample-data" / "audio" / "fareez" / "CAR0003.mp3"
CLIP_SECONDS = 104.4  # ffprobe's duration of the sample MP3
CLIP_TURNS = 24  # the turns the clip holds (sample-data/ground-truth/fareez/CAR0003.txt)
PLANTED = "<img src=x onerror=alert(1)>"
KEY = "audio/clinic-a/CAR0003.mp3"
ARTIFACTS = "artifacts"
ACTOR = Actor("local-browser", "admin")


def timed_lines() -> list[dict[str, Any]]:
    """The clip's turns as the transcription stage writes them, plus the planted line."""
    turns = dialogue_lines((DIALOGUES / "fareez-osce" / "CAR0003.txt").read_text(encoding="utf-8"))[:CLIP_TURNS]
    words = [len(turn.text.split()) for turn in turns] + [3]
    per_word = CLIP_SECONDS / sum(words)
    lines, start = [], 0.0
    texts = [(turn.speaker, turn.text) for turn in turns] + [("patient", PLANTED)]
    for n, ((speaker, text), count) in enumerate(zip(texts, words, strict=True), start=1):
        end = round(start + count * per_word, 2)
        lines.append({"n": n, "speaker": "spk_0" if speaker == "clinician" else "spk_1", "start": round(start, 2),
                      "end": end, "text": text, "confidence": 0.9})
        start = end
    return lines


def document_handler(table: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """lambdas/document/handler.py with the environment the stack gives it (offline note engine)."""
    env = function_env(table=table, input_bucket=bucket, artifacts_bucket=ARTIFACTS,
                       topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                       kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                       settings=load_settings().model_copy(update={"note_engine": "offline"}))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings_module.function_settings.cache_clear()
    spec = importlib.util.spec_from_file_location("handler_document_browser",
                                                  ROOT / "lambdas" / "document" / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_encounter(table: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Upload the recording, record its transcription, and let the document handler write the note."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    body = RECORDING.read_bytes()
    response = s3.put_object(Bucket=bucket, Key=KEY, Body=body)
    ref = ObjectRef(bucket=bucket, key=KEY, size=len(body), version_id=response["VersionId"])
    repository = EncounterRepository(table)
    repository.create(Encounter.from_ref(ref, Kind.AUDIO, EncounterStatus.RECEIVED, media_format="mp3"))
    repository.acquire_slot(ref.encounter_id, cap=5, job_name="j")
    lines_key = f"transcripts/{ref.encounter_id}/lines.json"
    s3.put_object(Bucket=ARTIFACTS, Key=lines_key, Body=json.dumps({"lines": timed_lines()}).encode())
    repository.finish_transcription(ref.encounter_id, EncounterStatus.TRANSCRIBED, transcript_key=lines_key,
                                    language_code="en-US", model=None)
    document_handler(table, bucket, monkeypatch).handler(ready(ref.encounter_id), Context())
    return ref.encounter_id


class Clock:
    """The login's clock, moved forward by a test to expire the session."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Workspace:
    url: str
    login_token: str
    encounter_id: str
    clock: Clock
    settings: FunctionSettings

    @property
    def login_url(self) -> str:
        return f"{self.url}/login?token={self.login_token}"

    def service(self) -> Any:
        """A second service on the same stores, to check what the browser changed (or did not)."""
        return workspace_service(self.settings)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yields its base URL, stops it after."""
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def running_workspace(table: str, bucket: str, monkeypatch: pytest.MonkeyPatch, *,
                      uploads: Callable[[FunctionSettings], Uploads] | None = None) -> Iterator[Workspace]:
    """The app as `medscribe serve` builds it (minus the search index), over the moto world; with
    `uploads` (the settings -> the upload forms), the upload page too."""
    encounter_id = documented_encounter(table, bucket, monkeypatch)
    current = FunctionSettings(table_name=table, input_bucket=bucket, artifacts_bucket=ARTIFACTS,
                               topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                               kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                               pipeline=load_settings(), search_url=None)
    clock = Clock()
    auth = LocalAuth(ACTOR, session_seconds=3600, clock=clock)
    app = create_app(lambda: workspace_service(current), auth,
                     recordings_factory=lambda: S3Recordings(EncounterRepository(table), ObjectStore()),
                     uploads_factory=(lambda: uploads(current)) if uploads else None)
    with serve(app) as url:
        yield Workspace(url, auth.login_token, encounter_id, clock, current)
