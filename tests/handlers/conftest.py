from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from medscribe import settings
from medscribe.adapters import aws_clients
from medscribe.settings import function_env, load_settings
from tests import FIXTURES
from tests.adapters.conftest import aws, bucket, table  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = FIXTURES / "events"


def shared_event(path: str) -> dict[str, Any]:
    """A payload from tests/fixtures/events (see its SOURCE.txt)."""
    return dict(json.loads((EVENTS / path).read_text(encoding="utf-8")))


class Context:
    function_name = "medscribe-test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:medscribe-test"
    aws_request_id = "test-request"


@pytest.fixture
def load_handler(table: str, bucket: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # noqa: F811
    """Import lambdas/<name>/handler.py fresh, with the environment the stack gives it."""

    def load(name: str, **settings_overrides: Any) -> ModuleType:
        env = function_env(table=table, input_bucket=bucket, artifacts_bucket="artifacts",
                           topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                           kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                           settings=load_settings().model_copy(update=settings_overrides))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings.function_settings.cache_clear()
        spec = importlib.util.spec_from_file_location(f"handler_{name}", ROOT / "lambdas" / name / "handler.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def transcribe(aws: None):  # type: ignore[no-untyped-def]  # noqa: F811
    """A botocore Stubber on the shared Transcribe client: tests queue real request/response shapes."""
    stubber = Stubber(aws_clients.client("transcribe"))
    stubber.activate()
    yield stubber
    stubber.deactivate()


@pytest.fixture
def world(table: str, bucket: str) -> dict[str, Any]:  # noqa: F811
    """The function's table and input bucket, and the artifacts bucket the stack gives it."""
    boto3.client("s3").create_bucket(Bucket="artifacts")
    return {"table": table, "bucket": bucket}
