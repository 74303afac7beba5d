"""Every AWS call the handlers made in the handler and e2e tiers is allowed by the synthesized role of
its function (or of the pipe or schedule that made it), with the service's own implicit
authorizations (tests/contract/authorizations.py). Grants no recorded call used are reported at the
end of the run as information, never as a failure: a test tier need not exercise every path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from medscribe.routes import ENDPOINTS, ROUTES, WORKSPACE
from tests.contract import iam
from tests.contract.authorizations import CLM_DATA_ROLE, Requirement, Unmapped, requirements
from tests.contract.conftest import E2E_TIER, UNUSED_GRANTS, Recordings
from tests.contract.recorder import Call
from tests.contract.stack import Principal, RenderedStack

ROUTE_NAMES = [route.name for route in ROUTES]
ENDPOINT_NAMES = [endpoint.name for endpoint in (*ENDPOINTS, WORKSPACE)]  # cdk.json deploys the workspace
# caller (recorder.CALLERS) -> the kind of role it calls with
# Made by the Lambda service for the function (logs, traces), never by handler code: not reported unused.
RUNTIME_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                             "xray:PutTelemetryRecords"})
ROLE_OF_CALLER = {"handler": "function", "event-source-mapping": "function", "pipe": "pipe", "schedule": "schedule"}


@dataclass(frozen=True)
class Denial:
    principal: str
    call: Call
    requirement: Requirement | None
    why: str

    def __str__(self) -> str:
        where = f"{self.call.service}.{self.call.operation}"
        if self.requirement is None:
            what = "cannot be checked"
        else:
            request = self.requirement.request
            context = f" with {dict(request.context)}" if request.context else ""
            what = f"needs {request.action} on {request.resource}{context} ({self.requirement.why})"
        return f"{self.principal} ({self.call.caller}): {where} {what}: {self.why}; first in {self.call.test}"


def check(calls: Iterable[Call], principal: Principal, stack: RenderedStack) -> tuple[list[Denial], set[iam.Request]]:
    """The denials among the calls' requirements (each distinct one reported once), and the requests
    the principal's own role allowed."""
    statements = {CLM_DATA_ROLE: stack.statements(stack.clm_role_logical_id),
                  "caller": stack.statements(principal.role_logical_id)}
    denials: dict[tuple[str, iam.Request] | tuple[str, str], Denial] = {}
    allowed: set[iam.Request] = set()
    decided: dict[tuple[str, iam.Request], iam.Decision] = {}
    for call in calls:
        try:
            needed = requirements(call, stack)
        except Unmapped as exc:
            denials.setdefault((call.service, str(exc)), Denial(principal.label, call, None, str(exc)))
            continue
        for requirement in needed:
            key = (requirement.role, requirement.request)
            if key not in decided:
                decided[key] = iam.decide(statements[requirement.role], requirement.request)
            decision = decided[key]
            label = principal.label if requirement.role == "caller" else f"{principal.label} -> {requirement.role}"
            if not decision.allowed:
                denials.setdefault(key, Denial(label, call, requirement, decision.why))
            elif requirement.role == "caller":
                allowed.add(requirement.request)
    return list(denials.values()), allowed


def unused_grants(principal: Principal, stack: RenderedStack, used: set[iam.Request]) -> list[str]:
    """'actions on resources' for each statement of the role that none of the allowed requests matched
    (the Lambda service's own logging and tracing actions left out: no handler code makes them)."""
    unused = []
    for statement in stack.statements(principal.role_logical_id):
        actions = [action for action in iam.as_list(statement.get("Action", [])) if action not in RUNTIME_ACTIONS]
        if statement.get("Effect") != "Allow" or not actions or iam.uses(statement, used):
            continue
        resources = [short_arn(resource) for resource in iam.as_list(statement.get("Resource", []))]
        unused.append(f"{', '.join(actions)} on {', '.join(resources)}")
    return unused


def short_arn(arn: str) -> str:
    """arn:aws:dynamodb:us-east-1:123456789012:table/t -> dynamodb:table/t (for the report)."""
    parts = arn.split(":", 5)
    return f"{parts[2]}:{parts[5]}" if len(parts) == 6 else arn


def calls_of(recordings: Recordings, kind: str, name: str) -> list[Call]:
    return [call for call in recordings.calls if call.function == name and ROLE_OF_CALLER[call.caller] == kind]


def assert_allowed(calls: list[Call], principal: Principal, stack: RenderedStack) -> None:
    denials, allowed = check(calls, principal, stack)
    UNUSED_GRANTS[principal.label] = unused_grants(principal, stack, allowed)
    assert not denials, f"{len(denials)} call(s) the synthesized IAM would deny:\n" + "\n".join(map(str, denials))


@pytest.mark.parametrize("name", ROUTE_NAMES + ENDPOINT_NAMES)
def test_calls_of_each_function_are_allowed_by_its_role(name: str, recordings: Recordings,
                                                        stack: RenderedStack) -> None:
    calls = calls_of(recordings, "function", name)
    if not calls and name in ENDPOINT_NAMES:
        pytest.skip(f"no handler or e2e test invokes endpoint {name!r}: nothing recorded to check")
    assert calls, f"route {name!r}: no AWS call of its handler was recorded from {recordings.source}"
    assert_allowed(calls, stack.principal("function", name), stack)


def test_calls_of_pipes_and_schedules_are_allowed_by_their_roles(recordings: Recordings,
                                                                 stack: RenderedStack) -> None:
    if E2E_TIER not in recordings.tiers:
        pytest.skip("the local runtime's pipes and schedules run in the e2e tier: "
                    "`pytest tests/handlers tests/e2e tests/contract` (or `pytest -q`) checks them")
    principals = [p for p in stack.principals() if p.kind != "function"]
    assert principals
    for principal in principals:
        calls = calls_of(recordings, principal.kind, principal.name)
        assert calls, f"{principal.label}: nothing recorded (medscribe_local.pollers changed? recorder.TRIGGER_METHODS)"
        assert_allowed(calls, principal, stack)


def test_event_source_mappings_were_recorded_in_e2e(recordings: Recordings) -> None:
    if E2E_TIER not in recordings.tiers:
        pytest.skip("the local runtime's event source mappings run in the e2e tier (`pytest -q` checks them)")
    # tests of the poller itself (tests/adapters) run routes of their own, which do not count here
    mapped = {call.function for call in recordings.calls if call.caller == "event-source-mapping"}
    assert set(ROUTE_NAMES) <= mapped, "routes whose event source mapping recorded nothing: " \
        f"{sorted(set(ROUTE_NAMES) - mapped)} (did medscribe_local.pollers change? recorder.TRIGGER_METHODS)"

