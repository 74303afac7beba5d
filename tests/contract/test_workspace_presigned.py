"""What the workspace's presigned URLs authorize, its role must allow: S3 checks a presigned request
against the signer's permissions when the browser uses it, long after the function signed it locally (no
AWS call is made, so the recorder never sees one). An audio URL is an s3:GetObject on the input bucket
(S3 decrypts with the project key); an upload form is an s3:PutObject of exactly the key its policy names
(S3 encrypts with the key the policy pins, so the signer needs its data keys). Uploads anywhere else in
the input bucket are refused by the role.

The upload forms are the real ones (medscribe.workspace.uploads, cdk.json's settings, the synthesized
stack's bucket and key): their POST policies are decoded and every condition S3 will enforce is checked
against the role and against S3's and SigV4's own limits (moto enforces none of them).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from medscribe.adapters.objects import MAX_PRESIGN_SECONDS, ObjectStore
from medscribe.domain.uploads import UPLOAD_KINDS, UPLOAD_PREFIXES, upload_target
from medscribe.routes import WORKSPACE
from medscribe.settings import load_settings
from medscribe.workspace.uploads import S3Uploads
from tests.contract import iam
from tests.contract.stack import REGION, RenderedStack

MAX_POST_BYTES = 5 * 1024**3  # S3: a single upload (PUT or POST) holds at most 5 GB


def decide(stack: RenderedStack, action: str, resource: str) -> iam.Decision:
    principal = stack.principal("function", WORKSPACE.name)
    return iam.decide(stack.statements(principal.role_logical_id), iam.Request.of(action, resource))


def uploads(stack: RenderedStack) -> S3Uploads:
    client = boto3.client("s3", region_name=REGION, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
    return S3Uploads(ObjectStore(client), stack.input_bucket, kms_key_id=stack.key_arn, settings=load_settings())


def conditions(fields: dict[str, str]) -> tuple[dict[str, Any], list[list[Any]], float]:
    """The policy's exact-match conditions, its list conditions, and its expiry (epoch seconds)."""
    policy = json.loads(base64.b64decode(fields["policy"]))
    exact = {name: value for c in policy["conditions"] if isinstance(c, dict) for name, value in c.items()}
    listed = [c for c in policy["conditions"] if isinstance(c, list)]
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return exact, listed, expires


def _takes(kind: str, extension: str) -> bool:
    """Whether an upload of `kind` may end in `extension`."""
    try:
        upload_target(kind, f"a.{extension}", None, frozenset([extension]))
    except ValueError:
        return False
    return True


def test_an_audio_url_it_signs_is_allowed_with_the_key(stack: RenderedStack) -> None:
    audio = f"arn:aws:s3:::{stack.input_bucket}/audio/clinic-a/visit.mp3"
    for action, resource in (("s3:GetObject", audio), ("kms:Decrypt", stack.key_arn)):
        decision = decide(stack, action, resource)
        assert decision.allowed, f"{action} on {resource}: {decision.why}"


@pytest.mark.parametrize("kind", UPLOAD_KINDS)
def test_an_upload_form_it_signs_is_allowed_by_the_role_and_within_s3s_limits(stack: RenderedStack,
                                                                              kind: str) -> None:
    settings = load_settings()
    extension = next(e for e in settings.workspace_upload_extensions if _takes(kind, e))
    made = datetime.now(UTC).timestamp()
    form = uploads(stack).form(kind, f"../../visit 7.{extension}", "clinic-a", None)
    exact, listed, expires = conditions(form.fields)
    # the object it writes: exactly the key, which the role may put
    assert exact["bucket"] == stack.input_bucket
    assert exact["key"] == form.key == f"{kind}/clinic-a/visit 7.{extension}"
    assert not [c for c in listed if c[:2] == ["starts-with", "$key"]]
    decision = decide(stack, "s3:PutObject", f"arn:aws:s3:::{stack.input_bucket}/{form.key}")
    assert decision.allowed, decision.why
    # S3 encrypts it with the key the policy pins (the stack's), with data keys the signer must be allowed
    assert exact["x-amz-server-side-encryption"] == "aws:kms"
    assert exact["x-amz-server-side-encryption-aws-kms-key-id"] == stack.key_arn
    decision = decide(stack, "kms:GenerateDataKey", exact["x-amz-server-side-encryption-aws-kms-key-id"])
    assert decision.allowed, decision.why
    # SigV4: a presigned request lives at most seven days, and is signed for the bucket's region
    assert made < expires <= made + MAX_PRESIGN_SECONDS
    assert exact["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert exact["x-amz-credential"].endswith(f"/{REGION}/s3/aws4_request")
    # size: at least one byte, at most the pipeline's limit for the kind and S3's for one upload
    (size,) = [c for c in listed if c[0] == "content-length-range"]
    pipeline = settings.text_max_bytes if kind == "text" else settings.audio_max_bytes
    assert size[1] == 1
    assert size[2] <= min(pipeline, MAX_POST_BYTES)
    (content_type,) = [c for c in listed if c[:2] == ["starts-with", "$Content-Type"]]
    assert content_type[2] == ("audio/" if kind == "audio" else "text/")
    assert form.fields["Content-Type"].startswith(content_type[2])


@pytest.mark.parametrize("prefix", UPLOAD_PREFIXES)
def test_an_upload_form_it_signs_is_allowed_under_each_upload_prefix(stack: RenderedStack, prefix: str) -> None:
    upload = f"arn:aws:s3:::{stack.input_bucket}/{prefix}clinic-a/new.mp3"
    for action, resource in (("s3:PutObject", upload), ("kms:GenerateDataKey", stack.key_arn)):
        decision = decide(stack, action, resource)
        assert decision.allowed, f"{action} on {resource}: {decision.why}"


@pytest.mark.parametrize("key", ["elsewhere/new.mp3", "audio", "new.mp3", "ground-truth/clinic-a/new.txt",
                                 "keywords/new.txt"])
def test_uploads_outside_the_upload_prefixes_are_refused(stack: RenderedStack, key: str) -> None:
    assert not decide(stack, "s3:PutObject", f"arn:aws:s3:::{stack.input_bucket}/{key}").allowed
    assert not decide(stack, "s3:DeleteObject", f"arn:aws:s3:::{stack.input_bucket}/audio/{key}").allowed
