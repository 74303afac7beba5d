"""cdk-nag: every finding acknowledged exactly once with a specific reason; cfn-lint clean; outputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import build_app
from stacks import nag
from stacks.naming import construct_id
from tests.infra.helpers import ROOT, SKIP_BUNDLING, Synth

pytestmark = pytest.mark.infra

SECURITY_DOC = ROOT / "docs" / "security.md"


def test_an_unacknowledged_finding_fails_synth(synth: Synth, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The packs really run at synth: drop one acknowledgement and synthesis must fail on it."""
    dropped = nag.plan(synth.stack)[0]
    full_plan = nag.plan
    monkeypatch.setattr(nag, "plan", lambda stack: full_plan(stack)[1:])
    app, _ = build_app(outdir=str(tmp_path), extra_context=SKIP_BUNDLING)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text(encoding="utf-8")
    assert dropped.rule in report
    assert dropped.path in report


def test_acknowledgements_are_exactly_the_findings(synth: Synth, unacknowledged_findings: set[tuple[str, str]]) -> None:
    planned = [(ack.rule, ack.path) for ack in nag.plan(synth.stack)]
    assert len(planned) == len(set(planned)), "an acknowledgement is listed twice"
    missing = unacknowledged_findings - set(planned)
    stale = set(planned) - unacknowledged_findings
    assert not missing, f"findings without acknowledgement: {sorted(missing)}"
    assert not stale, f"acknowledgements without finding: {sorted(stale)}"


def test_acknowledgement_reasons_are_specific(synth: Synth) -> None:
    reasons = [reason for _, reason in nag.acknowledgements(synth.stack)]
    for reason in reasons:
        assert len(reason) >= 80, reason
        assert not re.fullmatch(r"(?i)\s*(ok|fine|n/?a|accepted|suppressed|ignore[d]?)\W*", reason)


def test_iam5_is_acknowledged_finding_by_finding(synth: Synth) -> None:
    for rule, _ in nag.acknowledgements(synth.stack):
        if rule.startswith("AwsSolutions-IAM5") or rule.startswith("AwsSolutions-IAM4"):
            assert re.fullmatch(r"AwsSolutions-IAM[45]\[(Action|Resource|Policy)::.+\]", rule), rule


def test_security_doc_lists_every_acknowledgement(synth: Synth) -> None:
    doc = SECURITY_DOC.read_text(encoding="utf-8")
    section = doc.split("\n## Acknowledgements\n", 1)[1].split("\n## ", 1)[0]
    plan = nag.plan(synth.stack)
    stated = re.search(r"\*\*(\d+) acknowledgements\*\*", section)
    assert stated, "docs/security.md must state the number of acknowledgements as **N acknowledgements**"
    assert int(stated.group(1)) == len(plan)
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == [f"| `{ack.rule}` | `{ack.path}` | {ack.reason} |" for ack in plan]


def test_cfn_lint_is_clean(synth: Synth) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(synth.template_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_outputs_name_every_store_and_route(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    for name in ("InputBucketName", "ArtifactsBucketName", "AccessLogBucketName", "TableName", "TopicArn"):
        assert name in outputs
    for route_name, resources in synth.stack.routes.items():
        cid = construct_id(route_name)
        for suffix in ("QueueUrl", "DeadLetterQueueUrl", "FunctionName"):
            assert f"{cid}{suffix}" in outputs
        assert (f"{cid}RuleName" in outputs) == (resources.queue.rule is not None)
        assert (f"{cid}ScheduleName" in outputs) == (resources.queue.schedule is not None)


def test_an_output_names_the_lambda_concurrency_the_queues_need(synth: Synth) -> None:
    """The account's concurrency quota can be lower than the event source mappings' maximum concurrency
    together (new accounts start low); the output gives the number to compare with it."""
    needed = synth.template["Outputs"]["QueueConcurrencyNeeded"]["Value"]
    caps = [resource["Properties"]["ScalingConfig"]["MaximumConcurrency"]
            for resource in synth.template["Resources"].values()
            if resource["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert int(needed) == sum(caps) == 66  # with cdk.json's defaults
