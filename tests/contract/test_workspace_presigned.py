"""What the workspace's presigned URLs authorize, its role must allow: S3 checks a presigned request
against the signer's permissions when the browser uses it, long after the function signed it locally (no
AWS call is made, so the recorder never sees one). An audio URL is an s3:GetObject on the input bucket
(S3 decrypts with the project key); an upload form is an s3:PutObject under an input prefix (S3 encrypts
with it). Uploads anywhere else in the input bucket are refused by the role.
"""

from __future__ import annotations

import pytest

from medscribe.domain.encounter import INPUT_PREFIXES
from medscribe.routes import WORKSPACE
from tests.contract import iam
from tests.contract.stack import RenderedStack


def decide(stack: RenderedStack, action: str, resource: str) -> iam.Decision:
    principal = stack.principal("function", WORKSPACE.name)
    return iam.decide(stack.statements(principal.role_logical_id), iam.Request.of(action, resource))


def test_an_audio_url_it_signs_is_allowed_with_the_key(stack: RenderedStack) -> None:
    audio = f"arn:aws:s3:::{stack.input_bucket}/audio/clinic-a/visit.mp3"
    for action, resource in (("s3:GetObject", audio), ("kms:Decrypt", stack.key_arn)):
        decision = decide(stack, action, resource)
        assert decision.allowed, f"{action} on {resource}: {decision.why}"


@pytest.mark.parametrize("prefix", INPUT_PREFIXES)
def test_an_upload_form_it_signs_is_allowed_under_each_input_prefix(stack: RenderedStack, prefix: str) -> None:
    upload = f"arn:aws:s3:::{stack.input_bucket}/{prefix}clinic-a/new.mp3"
    for action, resource in (("s3:PutObject", upload), ("kms:GenerateDataKey", stack.key_arn)):
        decision = decide(stack, action, resource)
        assert decision.allowed, f"{action} on {resource}: {decision.why}"


@pytest.mark.parametrize("key", ["elsewhere/new.mp3", "audio", "new.mp3"])
def test_uploads_outside_the_input_prefixes_are_refused(stack: RenderedStack, key: str) -> None:
    assert not decide(stack, "s3:PutObject", f"arn:aws:s3:::{stack.input_bucket}/{key}").allowed
    assert not decide(stack, "s3:DeleteObject", f"arn:aws:s3:::{stack.input_bucket}/audio/{key}").allowed
