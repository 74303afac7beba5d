"""`medscribe erase --aws` (issue 14, item 6): the deployed stores found through the stack's outputs, the
report with what ages out and its dates, and one-line errors (moto plays the account; the search index
is a SQLite file named by MEDSCRIBE_SEARCH_URL, as for `medscribe search --aws`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from medscribe.adapters.search_sqlite import SqliteSearchIndex
from medscribe.domain.encounter import EncounterStatus, Kind
from medscribe.domain.search import SearchDocument
from medscribe.settings import load_settings
from medscribe_local.cli import main
from tests.adapters.test_erasure import ARTIFACTS, encounter

NAME = "Ottoline Brackenbury"


def stack(table: str, bucket: str) -> None:
    outputs = {"InputBucketName": bucket, "ArtifactsBucketName": ARTIFACTS, "TableName": table,
               "SearchUrl": "https://search.invalid", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k"}
    template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()}}
    boto3.client("cloudformation").create_stack(StackName=load_settings().prefix, TemplateBody=json.dumps(template))
    boto3.client("s3").create_bucket(Bucket=ARTIFACTS)


def test_erase_aws_finds_the_stores_by_the_stack_outputs_and_lists_what_ages_out(
    table: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    stack(table, bucket)
    erased = encounter(bucket, table, f"text/clinic/{NAME}.txt", Kind.TEXT, EncounterStatus.DOCUMENTED)
    index = SqliteSearchIndex(tmp_path / "search.db")
    index.upsert(SearchDocument(erased, "DOCUMENTED", "text", "2026-12-03T00:00:00.000Z", "text/clinic"))
    monkeypatch.setenv("MEDSCRIBE_SEARCH_URL", f"sqlite:///{tmp_path / 'search.db'}")

    assert main(["erase", erased, "--aws", "--json"]) == 0

    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["erased"] == [erased]
    assert report["deleted"]["input object versions"] == 1
    assert report["deleted"]["table items"] == 1
    assert report["deleted"]["search documents"] == 1
    assert index.versions() == {}
    gone = {item["store"]: item["gone_by"] for item in report["ages_out"]}
    today = datetime.now(UTC).date()
    assert gone["DynamoDB point-in-time recovery"] == (today + timedelta(days=35)).isoformat()
    assert gone["CloudWatch Logs (functions, search domain)"] == (
        today + timedelta(days=load_settings().log_retention_days)).isoformat()
    assert NAME not in out + err


def test_erase_aws_errors_are_one_line(table: str, bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["erase", "enc-x", "--aws"]) == 1  # no stack
    assert "cannot read the outputs of stack" in capsys.readouterr().err
    stack(table, bucket)
    assert main(["erase", "enc-unknown", "--aws"]) == 1
    err = capsys.readouterr().err
    assert "no encounter with id 'enc-unknown'" in err
    assert err.strip().count("\n") == 0
