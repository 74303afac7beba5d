"""moto-backed AWS for adapter and handler tests (the real boto3 code paths, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import table_definition

TABLE = "encounters"
BUCKET = "medscribe-input"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "medscribe-test",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws_clients.reset()
    with mock_aws():
        yield
    aws_clients.reset()


@pytest.fixture
def table(aws: None) -> str:
    boto3.client("dynamodb").create_table(**table_definition(TABLE))
    return TABLE


@pytest.fixture
def bucket(aws: None) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return BUCKET


def put(bucket: str, key: str, body: bytes) -> dict[str, Any]:
    return dict(boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body))
