"""The upload forms against the local runtime's emulator, as `medscribe serve` builds them
(services.wiring.workspace_uploads with the runtime's endpoint): the emulator's S3 answers the browser's
CORS preflight from the workspace's origin, accepts the multipart POST with every field of the form
(SSE-KMS ones included) and stores exactly the bytes under exactly the key, as a new version. The
policy's conditions are not enforced there (moto does not check them; the unit and contract tests
decode and check them instead)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from medscribe.adapters import aws_clients
from medscribe.services.wiring import workspace_uploads
from medscribe.settings import FunctionSettings, PipelineSettings
from medscribe_local.emulator import Emulator
from medscribe_local.environment import connect

BUCKET = "medscribe-dev-input"
WORKSPACE_ORIGIN = "http://127.0.0.1:8765"


@pytest.fixture
def emulator() -> Iterator[tuple[str, str]]:
    """The running emulator's endpoint and a KMS-encrypted, versioned input bucket's key ARN."""
    emulator = Emulator()
    endpoint = emulator.start()
    restore = connect(endpoint)
    try:
        key_arn = aws_clients.client("kms").create_key()["KeyMetadata"]["Arn"]
        s3 = aws_clients.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]})
        yield endpoint, key_arn
    finally:
        emulator.stop()
        restore()


def settings(key_arn: str) -> FunctionSettings:
    return FunctionSettings(table_name="t", input_bucket=BUCKET, artifacts_bucket="a", topic_arn="arn:aws:sns:x",
                            kms_key_arn=key_arn, pipeline=PipelineSettings())


def test_the_emulator_takes_a_browser_post_of_the_form(emulator: tuple[str, str]) -> None:
    endpoint, key_arn = emulator
    uploads = workspace_uploads(settings(key_arn))
    assert uploads.origin == endpoint  # what the upload page's CSP lets it connect to
    body = b"Patient twisted her ankle yesterday.\n"
    form = uploads.form("text", "ankle.txt", "clinic-b", len(body))
    assert form.url == f"{endpoint}/{BUCKET}"
    assert form.fields["x-amz-server-side-encryption-aws-kms-key-id"] == key_arn

    preflight = requests.options(form.url, timeout=10, headers={
        "Origin": WORKSPACE_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] in (WORKSPACE_ORIGIN, "*")
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    files: dict[str, Any] = {"file": ("ankle.txt", body, "text/plain")}
    posted = requests.post(form.url, data=form.fields, files=files, timeout=10, headers={"Origin": WORKSPACE_ORIGIN})
    assert posted.status_code == 204, posted.text
    assert posted.headers["Access-Control-Allow-Origin"] in (WORKSPACE_ORIGIN, "*")
    stored = aws_clients.client("s3").get_object(Bucket=BUCKET, Key=form.key)
    assert form.key == "text/clinic-b/ankle.txt"
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "text/plain; charset=utf-8"
    assert stored.get("VersionId")  # a versioned revision: the encounter id is made from it
