"""Small readers over a synthesized CloudFormation template (plain dicts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App

from medscribe.routes import Access, Endpoint, EventTrigger, Route
from stacks.medscribe_stack import MedscribeStack

ROOT = Path(__file__).resolve().parents[2]
# Context that makes CDK skip asset bundling (what `cdk ls` does): for apps whose assets are not used.
SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}

PROBE_ROUTE = Route(
    name="probe",
    description="EventBridge-triggered route with every access, to exercise the generic wiring",
    trigger=EventTrigger(
        rule="probe-job-state",
        pattern={
            "source": ["aws.transcribe"],
            "detail-type": ["Transcribe Job State Change"],
            "detail": {"TranscriptionJobStatus": ["COMPLETED", "FAILED"]},
        },
    ),
    access=frozenset(Access),
    timeout_seconds=45,
    memory_mb=1024,
)

PROBE_ENDPOINT = Endpoint(
    name="probe-endpoint",
    description="Function URL endpoint with every access, to exercise the generic endpoint wiring",
    access=frozenset(Access),
    timeout_seconds=30,
    memory_mb=512,
)


@dataclass(frozen=True)
class Synth:
    app: App
    stack: MedscribeStack
    template: dict[str, Any]
    template_path: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def getatt(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document["Statement"])


def iam_documents(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every identity-policy document of the template: AWS::IAM::Policy, ManagedPolicy, Role inline."""
    documents = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append((logical_id, properties["PolicyDocument"]))
        elif resource["Type"] == "AWS::IAM::Role":
            documents += [(logical_id, policy["PolicyDocument"]) for policy in properties.get("Policies", [])]
    return documents


# stacks.security.deployment_id as `render` shows it: the first group of the stack id's GUID
DEPLOYMENT_ID = "${split('-', ${split('/', ${AWS::StackId})[2]})[0]}"


def render(value: Any) -> Any:
    """An intrinsic-laden template value as one readable string: `arn:${AWS::Partition}:...`.

    Ref -> ${Name}, Fn::GetAtt -> ${Id.Attribute}, Fn::Join -> the joined parts, Fn::Select of Fn::Split ->
    ${split(separator, source)[index]}; lists element-wise."""
    if isinstance(value, list):
        return [render(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return f"${{{value['Ref']}}}"
        if set(value) == {"Fn::GetAtt"}:
            return "${" + ".".join(value["Fn::GetAtt"]) + "}"
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return str(separator).join(str(render(part)) for part in parts)
        if set(value) == {"Fn::Select"} and set(value["Fn::Select"][1]) == {"Fn::Split"}:
            index, (separator, source) = value["Fn::Select"][0], value["Fn::Select"][1]["Fn::Split"]
            return f"${{split({separator!r}, {render(source)})[{index}]}}"
        return {key: render(item) for key, item in value.items()}
    return value
