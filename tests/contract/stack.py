"""The synthesized stack as IAM sees it: CloudFormation intrinsics rendered to realistic values, each
role's policy statements, and the stack's resources by the part they play.

Rendering: `Ref`/`Fn::GetAtt`/`Fn::Join`/`Fn::Sub`/`Fn::Select`/`Fn::Split` and the pseudo parameters
become the strings CloudFormation would produce in account 123456789012, region us-east-1
(partition aws): a resource with a name property (QueueName, TopicName, DomainName...) keeps it, one
without gets the `<stack>-<logical id>-<suffix>` name CloudFormation generates (bucket names in lower
case), keys a fixed UUID per key. An attribute the renderer does not know is an error, never a guess.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.infra.helpers import Synth, as_list

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}
STREAM_LABEL = "2026-01-01T00:00:00.000"
# Physical-name properties CloudFormation uses instead of generating a name.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::OpenSearchService::Domain": "DomainName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Pipes::Pipe": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Events::Rule": "Name",
}


class Renderer:
    """Renders template values; resources are read from the template's Resources section."""

    def __init__(self, template: dict[str, Any], stack_name: str) -> None:
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.stack_name = stack_name

    def value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, argument), = value.items()
            if name == "Ref":
                return self.ref(argument)
            if name == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.getatt(logical_id, attribute)
            if name == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.value(part)) for part in self.value(parts))
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::Select":
                index, items = argument
                return self.value(items)[int(self.value(index))]
            if name == "Fn::Split":
                separator, text = argument
                return str(self.value(text)).split(separator)
            if name.startswith("Fn::"):
                raise ValueError(f"the renderer does not know {name}")
        return {key: self.value(item) for key, item in value.items()}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name and name not in PSEUDO:
                logical_id, attribute = name.split(".", 1)
                return str(self.getatt(logical_id, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def _resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise ValueError(f"no resource {logical_id!r} in the template") from None

    def name(self, logical_id: str) -> str:
        """The physical name: the name property if set, else the one CloudFormation generates."""
        resource = self._resource(logical_id)
        prop = NAME_PROPERTIES.get(resource["Type"])
        given = resource.get("Properties", {}).get(prop) if prop else None
        if given is not None:
            return str(self.value(given))
        suffix = hashlib.sha256(logical_id.encode()).hexdigest()[:12]
        generated = f"{self.stack_name}-{logical_id}-{suffix}"
        return generated.lower()[:63] if resource["Type"] == "AWS::S3::Bucket" else generated[:64]

    def ref(self, logical_id: str) -> Any:
        if logical_id in PSEUDO:
            return PSEUDO[logical_id]
        if logical_id == "AWS::StackName":
            return self.stack_name
        if logical_id == "AWS::StackId":
            return f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack_name}/{uuid.UUID(int=0)}"
        kind = self._resource(logical_id)["Type"]
        if kind == "AWS::KMS::Key":
            return str(uuid.UUID(hashlib.md5(logical_id.encode()).hexdigest()))  # noqa: S324  (a stable id, not security)
        if kind == "AWS::SNS::Topic":
            return self.arn(logical_id)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name(logical_id)}"
        return self.name(logical_id)

    def arn(self, logical_id: str) -> str | None:
        kind = self._resource(logical_id)["Type"]
        name = self.name(logical_id)
        service = f"{PARTITION}:{{}}:{REGION}:{ACCOUNT}"
        arns = {
            "AWS::S3::Bucket": lambda: f"arn:{PARTITION}:s3:::{name}",
            "AWS::DynamoDB::Table": lambda: f"arn:{service.format('dynamodb')}:table/{name}",
            "AWS::SQS::Queue": lambda: f"arn:{service.format('sqs')}:{name}",
            "AWS::SNS::Topic": lambda: f"arn:{service.format('sns')}:{name}",
            "AWS::KMS::Key": lambda: f"arn:{service.format('kms')}:key/{self.ref(logical_id)}",
            "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::OpenSearchService::Domain": lambda: f"arn:{service.format('es')}:domain/{name}",
            "AWS::Logs::LogGroup": lambda: f"arn:{service.format('logs')}:log-group:{name}:*",
            "AWS::Lambda::Function": lambda: f"arn:{service.format('lambda')}:function:{name}",
            "AWS::Pipes::Pipe": lambda: f"arn:{service.format('pipes')}:pipe/{name}",
            "AWS::Events::Rule": lambda: f"arn:{service.format('events')}:rule/{name}",
            "AWS::Scheduler::Schedule": lambda: f"arn:{service.format('scheduler')}:schedule/default/{name}",
        }
        make = arns.get(kind)
        return make() if make else None

    def getatt(self, logical_id: str, attribute: str) -> str:
        kind = self._resource(logical_id)["Type"]
        arn = self.arn(logical_id)
        if attribute == "Arn" and arn is not None:
            return arn
        name = self.name(logical_id)
        special = {
            ("AWS::DynamoDB::Table", "StreamArn"): f"{arn}/stream/{STREAM_LABEL}",
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            ("AWS::SNS::Topic", "TopicArn"): arn,
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::OpenSearchService::Domain", "DomainEndpoint"): f"search-{name}-abcdefgh.{REGION}.es.amazonaws.com",
            ("AWS::IAM::Role", "RoleId"): f"AROA{hashlib.sha256(logical_id.encode()).hexdigest()[:17].upper()}",
        }
        found = special.get((kind, attribute))
        if found is None:
            raise ValueError(f"the renderer does not know {kind}.{attribute} ({logical_id})")
        return found


@dataclass(frozen=True)
class Principal:
    """A role of the stack whose calls the contract tier checks: a function's, a pipe's, a schedule's."""

    kind: str  # "function", "pipe", "schedule"
    name: str  # the route or endpoint name
    role_logical_id: str

    @property
    def label(self) -> str:
        return f"{self.kind} '{self.name}'" if self.kind == "function" else f"{self.name} {self.kind}"


class RenderedStack:
    """The synthesized stack with every IAM value rendered, and its resources by role."""

    def __init__(self, synth: Synth) -> None:
        self.synth = synth
        self.stack = synth.stack
        self.renderer = Renderer(synth.template, synth.stack.stack_name)
        self.prefix = synth.stack.settings.prefix
        storage = synth.stack.storage
        self.input_bucket = self.renderer.name(self._id(storage.input_bucket))
        self.artifacts_bucket = self.renderer.name(self._id(storage.artifacts_bucket))
        table = self._id(storage.table)
        self.table = self.renderer.name(table)
        self.table_arn = self.renderer.getatt(table, "Arn")
        self.stream_arn = self.renderer.getatt(table, "StreamArn")
        self.topic_arn = self.renderer.getatt(self._id(synth.stack.notifications.topic), "Arn")
        key = self._id(synth.stack.security.key)
        self.key_arn = self.renderer.getatt(key, "Arn")
        self.key_id = str(self.renderer.ref(key))
        self.clm_role_logical_id = self._id(storage.clm_data_role)
        self.clm_role_arn = self.renderer.getatt(self.clm_role_logical_id, "Arn")
        self.search_domain_arn = self.renderer.getatt(self._id(storage.search.domain), "Arn")
        self.queue_arns = {
            queue_name: self.renderer.getatt(self._id(queue), "Arn")
            for resources in synth.stack.routes.values()
            for queue in (resources.queue.queue, resources.queue.dead_letter_queue)
            for queue_name in [self.renderer.name(self._id(queue))]
        }

    def _id(self, construct: Any) -> str:
        child = construct.node.default_child
        return str(self.stack.resolve(child.logical_id))

    def principals(self) -> list[Principal]:
        found = [
            Principal("function", name, self._id(function.role))
            for name, function in self.stack.functions.items()
        ]
        for name, resources in self.stack.routes.items():
            for kind, role in (("pipe", resources.queue.pipe_role), ("schedule", resources.queue.schedule_role)):
                if role is not None:
                    found.append(Principal(kind, name, self._id(role)))
        return found

    def principal(self, kind: str, name: str) -> Principal:
        for principal in self.principals():
            if (principal.kind, principal.name) == (kind, name):
                return principal
        raise KeyError(f"the stack has no {kind} role for {name!r}")

    def statements(self, role_logical_id: str) -> list[dict[str, Any]]:
        """Every identity-policy statement of the role, rendered (AWS::IAM::Policy and inline policies)."""
        found = []
        role = self.renderer.resources[role_logical_id]
        for policy in role.get("Properties", {}).get("Policies", []):
            found += as_list(policy["PolicyDocument"]["Statement"])
        for resource in self.renderer.resources.values():
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                roles = resource["Properties"].get("Roles", [])
                if {"Ref": role_logical_id} in roles:
                    found += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
        return [self.renderer.value(statement) for statement in found]

    def policy_documents(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(logical id, rendered document) of every identity policy in the template."""
        for logical_id, resource in self.renderer.resources.items():
            properties = resource.get("Properties", {})
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                yield logical_id, self.renderer.value(properties["PolicyDocument"])
            elif resource["Type"] == "AWS::IAM::Role":
                for policy in properties.get("Policies", []):
                    yield f"{logical_id}/{policy.get('PolicyName')}", self.renderer.value(policy["PolicyDocument"])
