"""IAM, offline: the action/resource-type database parliament ships in its wheel, and an evaluator of
identity-policy statements for one request.

Evaluation (`decide`): an explicit Deny that matches wins; else the request is allowed when an Allow
statement matches its action (wildcards, case-insensitive), its resource (wildcards) and all of its
conditions. Conditions are evaluated with the request's context keys: StringEquals/StringLike (and
their Not/IfExists forms), ArnEquals/ArnLike, Null, Bool and ForAllValues:/ForAnyValue: on
multivalued keys. An operator this evaluator does not know, or a key the request context does not
carry, fails the condition: unknown means denied, so a finding is never hidden. Resource-based
policies (bucket, key, queue, topic, domain policies), SCPs and permission boundaries are not
evaluated: identity policies only.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

with warnings.catch_warnings():  # parliament opens its data files without closing them, and imports pkg_resources
    warnings.simplefilter("ignore")
    import parliament
    from parliament import is_arn_match


@dataclass(frozen=True)
class Action:
    """One IAM action as the Service Authorization Reference defines it."""

    name: str  # "s3:GetObject"
    resource_types: tuple[str, ...]  # "object", "bucket"... ; empty: only Resource "*" matches it

    @property
    def resourceless(self) -> bool:
        return not self.resource_types

    def supports(self, resource: str) -> bool:
        """Whether the policy resource `resource` (wildcards allowed) names resources of a type this
        action is authorized on. A resource without wildcards in its resource part has one type, the
        most specific format it matches (`table/T/index/I` is an index, not a table); a wildcard one
        may span several, and passes when the action supports any of them."""
        if resource == "*":
            return True
        candidates = resource_types_of(self.name.split(":", 1)[0], resource)
        if "*" not in ":".join(resource.split(":")[5:]) and candidates:
            candidates = [max(candidates, key=lambda kind: len(self._format(kind).replace("*", "")))]
        return any(kind in self.resource_types for kind in candidates)

    def _format(self, kind: str) -> str:
        return _formats(self.name.split(":", 1)[0])[kind]


@cache
def _services() -> dict[str, dict[str, Any]]:
    return {service["prefix"]: service for service in parliament.iam_definition}


@cache
def _formats(prefix: str) -> dict[str, str]:
    """The service's resource types -> ARN patterns (${...} parts as *)."""
    return {resource["resource"]: re.sub(r"\$\{.*?\}", "*", resource["arn"])
            for resource in _services()[prefix]["resources"]}


def resource_types_of(prefix: str, resource: str) -> list[str]:
    """The service's resource types whose ARN format can match the policy resource."""
    if prefix not in _services():
        return []
    return [kind for kind, pattern in _formats(prefix).items() if is_arn_match(kind, pattern, resource)]


@cache
def action(name: str) -> Action | None:
    """The database's entry for `name` ("service:Action"), None when IAM has no such action."""
    prefix, _, short = name.partition(":")
    service = _services().get(prefix.lower())
    if service is None:
        return None
    for privilege in service["privileges"]:
        if privilege["privilege"].lower() == short.lower():
            kinds = tuple(
                kind["resource_type"].rstrip("*") for kind in privilege["resource_types"] if kind["resource_type"]
            )
            return Action(f"{service['prefix']}:{privilege['privilege']}", kinds)
    return None


def expand(pattern: str) -> list[str]:
    """The actions a policy's action pattern ("kms:GenerateDataKey*") names."""
    return [f"{found['service']}:{found['action']}" for found in parliament.expand_action(pattern, False)]


def arn_of(kind: str, action_name: str, name: str, *, partition: str, region: str, account: str) -> str:
    """The ARN of the resource `name` of type `kind` of the action's service (from the database's
    ARN template: arn:${Partition}:transcribe:${Region}:${Account}:vocabulary/${VocabularyName})."""
    prefix = action_name.split(":", 1)[0]
    standard = {"Partition": partition, "Region": region, "Account": account}
    for resource in _services()[prefix]["resources"]:
        if resource["resource"] == kind:
            return re.sub(r"\$\{(\w+)\}", lambda match: standard.get(match.group(1), name), resource["arn"])
    raise KeyError(f"{prefix} has no resource type {kind!r}")


# --- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What IAM authorizes: one action on one resource, with the condition keys the request carries."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()  # key -> values (multivalued keys have several)

    @classmethod
    def of(cls, action: str, resource: str, context: Mapping[str, str | Sequence[str]] | None = None) -> Request:
        items = (context or {}).items()
        return cls(action, resource, tuple(sorted(
            (key, (value,) if isinstance(value, str) else tuple(value)) for key, value in items
        )))

    def values(self, key: str) -> tuple[str, ...] | None:
        for name, values in self.context:
            if name.lower() == key.lower():
                return values
        return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, text: str, *, case_sensitive: bool = True) -> bool:
    # IAM wildcards: * (any run) and ? (one character); nothing else is special
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, 0 if case_sensitive else re.IGNORECASE) is not None


def action_matches(patterns: Iterable[str], name: str) -> bool:
    return any(_glob(pattern, name, case_sensitive=False) for pattern in patterns)


def resource_matches(patterns: Iterable[str], arn: str) -> bool:
    return any(pattern == "*" or _glob(pattern, arn) for pattern in patterns)


_STRING_TESTS = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": lambda expected, actual: _glob(expected, actual),
    "StringEqualsIgnoreCase": lambda expected, actual: expected.lower() == actual.lower(),
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": lambda expected, actual: _glob(expected, actual),
    "Bool": lambda expected, actual: str(expected).lower() == actual.lower(),
}


def _condition_holds(operator: str, key: str, expected: list[Any], request: Request) -> bool:
    actual = request.values(key)
    if operator == "Null":  # "true": the key is absent; "false": present
        return (actual is None) == (str(expected[0]).lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    negated = base.startswith(("StringNot", "ArnNot"))
    test = _STRING_TESTS.get(base.replace("Not", "", 1) if negated else base)
    if test is None or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        return False  # an operator this evaluator does not know: conservatively not satisfied
    if actual is None:
        if qualifier == "ForAllValues":
            return True  # IAM: ForAllValues on an absent key is true (hence the stack's Null conditions)
        return if_exists or negated

    def one(value: str) -> bool:
        hit = any(test(str(item), value) for item in expected)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(value) for value in actual)
    if qualifier == "ForAnyValue":
        return any(one(value) for value in actual)
    return len(actual) == 1 and one(actual[0])


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]], request: Request) -> list[str]:
    """The conditions the request does not satisfy (empty: all hold)."""
    failed = []
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            if not _condition_holds(operator, key, as_list(expected), request):
                failed.append(f"{operator} {key} {expected!r} (request: {request.values(key)!r})")
    return failed


@dataclass(frozen=True)
class Decision:
    allowed: bool
    why: str


def decide(statements: Sequence[Mapping[str, Any]], request: Request) -> Decision:
    """Whether identity-policy `statements` allow `request` (explicit deny > allow > implicit deny)."""
    near_misses = []
    allowed_by = None
    for statement in statements:
        if "NotAction" in statement:
            action_hit = not action_matches(as_list(statement["NotAction"]), request.action)
        else:
            action_hit = action_matches(as_list(statement.get("Action", [])), request.action)
        if "NotResource" in statement:
            resource_hit = not resource_matches(as_list(statement["NotResource"]), request.resource)
        else:
            resource_hit = resource_matches(as_list(statement.get("Resource", [])), request.resource)
        if not action_hit:
            continue
        if not resource_hit:
            near_misses.append(f"action granted on {statement.get('Resource', statement.get('NotResource'))}")
            continue
        failed = conditions_hold(statement.get("Condition", {}), request)
        if failed:
            near_misses.append("conditions not met: " + "; ".join(failed))
            continue
        if statement.get("Effect") == "Deny":
            return Decision(False, "explicitly denied")
        allowed_by = statement
    if allowed_by is not None:
        return Decision(True, "allowed")
    return Decision(False, "no Allow statement matches" + (f" ({' | '.join(near_misses)})" if near_misses else ""))


def uses(statement: Mapping[str, Any], requests: Iterable[Request]) -> bool:
    """Whether any of `requests` is allowed by this one statement (for the unused-grant report)."""
    return any(decide([statement], request).allowed for request in requests)

