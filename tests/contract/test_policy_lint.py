"""Every identity policy the stack synthesizes (function roles, the pipe's and the schedules' roles, the
language-model data role, CDK's own), with its intrinsics rendered to realistic ARNs, checked against
the IAM database: each action exists, and is granted on resources of a type it is authorized on.

An action without resource types (`transcribe:CreateVocabulary`, `dynamodb:ListStreams`) is matched
by IAM only on Resource "*": granted on an ARN it never applies. An action granted on an ARN of a
type it does not support (`dynamodb:GetItem` on an index) applies to nothing there. parliament's own
analysis runs too; its RESOURCE_MISMATCH for actions with resource types is replaced by the check
here (parliament requires every resource type of a multi-type action such as bedrock:InvokeModel to
be granted, and rejects ARNs with colons in their names, such as inference profile and stream ARNs).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.contract import iam
from tests.contract.iam import parliament  # imported there without its import-time warnings
from tests.contract.stack import RenderedStack

# parliament findings replaced by the check above or of no consequence (LOW: StringEquals on an ARN works)
PARLIAMENT_IGNORED = frozenset({"MISMATCHED_TYPE_BUT_USABLE"})


def lint(document: dict[str, Any]) -> list[str]:
    """The database's objections to one rendered policy document."""
    findings = []
    for statement in iam.as_list(document["Statement"]):
        resources = iam.as_list(statement.get("Resource", []))
        for pattern in iam.as_list(statement.get("Action", [])):
            names = iam.expand(pattern)
            if not names:
                findings.append(f"{pattern}: IAM has no such action")
            for name in names:
                action = iam.action(name)
                assert action is not None
                if action.resourceless:
                    if "*" not in resources:
                        findings.append(f"{name} has no resource type, so IAM matches it only on Resource '*'; "
                                        f"granted on {resources} it never applies")
                    continue
                wrong = [resource for resource in resources if not action.supports(resource)]
                if wrong:
                    findings.append(f"{name} is granted on {wrong}, of no resource type it is authorized on "
                                    f"({', '.join(action.resource_types)})")
    return findings


def parliament_findings(document: dict[str, Any]) -> list[str]:
    found = []
    for finding in parliament.analyze_policy_string(json.dumps(document)).findings:
        if finding.issue in PARLIAMENT_IGNORED:
            continue
        if finding.issue == "RESOURCE_MISMATCH":
            # only "this action has no resource type and is not granted on *" is kept (see the docstring)
            detail = [entry for entry in finding.detail if entry.get("required_format") == "*"]
            if detail:
                found.append(f"RESOURCE_MISMATCH {detail}")
            continue
        found.append(f"{finding.issue} {finding.detail}")
    return found


def test_every_action_is_granted_on_resources_it_is_authorized_on(stack: RenderedStack) -> None:
    documents = list(stack.policy_documents())
    assert len(documents) >= len(stack.principals())
    findings = [f"{logical_id}: {finding}" for logical_id, document in documents for finding in lint(document)]
    assert not findings, "\n".join(findings)


def test_parliament_finds_nothing_in_the_rendered_policies(stack: RenderedStack) -> None:
    findings = [
        f"{logical_id}: {finding}"
        for logical_id, document in stack.policy_documents() for finding in parliament_findings(document)
    ]
    assert not findings, "\n".join(findings)


@pytest.mark.parametrize(("document", "expected"), [
    ({"Statement": [{"Effect": "Allow", "Action": "transcribe:CreateVocabulary",
                     "Resource": "arn:aws:transcribe:us-east-1:123456789012:vocabulary/medscribe-dev-*"}]},
     "transcribe:CreateVocabulary has no resource type"),
    ({"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem",
                     "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t/index/by-day"}]},
     "dynamodb:GetItem is granted on"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket"}]},
     "s3:GetObject is granted on"),
    ({"Statement": [{"Effect": "Allow", "Action": "transcribe:StartJob", "Resource": "*"}]},
     "transcribe:StartJob: IAM has no such action"),
])
def test_lint_reports_what_iam_would_never_match(document: dict[str, Any], expected: str) -> None:
    (finding,) = lint(document)
    assert finding.startswith(expected)


@pytest.mark.parametrize("document", [
    {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:Query", "dynamodb:GetItem"],
                    "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t"}]},
    {"Statement": [{"Effect": "Allow", "Action": "bedrock:InvokeModel",
                    "Resource": "arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"}]},
    {"Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents",
                    "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*"}]},
])
def test_lint_accepts_grants_iam_matches(document: dict[str, Any]) -> None:
    assert lint(document) == []
