"""What IAM must allow for one recorded call: the call's own action on the resource its parameters
name, in the synthesized stack's terms, and the authorizations the service makes with the caller's
permissions that botocore never shows (implicit).

Names: a call's resources are named as the test or the local runtime named them; `Mapper` turns
each into the stack's resource by the part it plays, read from the function's environment at the
time of the call (recorder.Names): its table, input bucket, artifacts bucket, topic, key and
language-model data role become the stack's; queues are matched by `<prefix>-<route>[-dlq]`; names
that start with the local stage prefix (jobs, vocabularies, models) get the stack's prefix. A bucket
that is none of the function's is taken for the input bucket: the pipeline learns bucket names only
from the input bucket's notifications and the records made from them, and tests name buckets of their
own in those events (this is conservative: the input bucket is read-only to every function). Any
other unknown name is an error (`Unmapped`), never skipped.

Implicit authorizations modelled (each with the documentation it follows):
- SSE-KMS buckets (input, artifacts): reading an object needs kms:Decrypt, writing one
  kms:GenerateDataKey, on the bucket key or the request's SSEKMSKeyId.
- S3: GetObject/HeadObject that found no object answer 404 only with s3:ListBucket on the bucket
  (else 403 AccessDenied, which the code would take for a failure, not a missing object).
- SQS queues with a customer key: sending needs kms:GenerateDataKey and kms:Decrypt, receiving
  kms:Decrypt. SNS topics with a customer key: publishing needs kms:GenerateDataKey and kms:Decrypt.
- DynamoDB table and stream with the customer key: kms:Decrypt for item reads and writes and stream
  records (the stack's own assumption, ENCRYPTING_ACCESS in stacks/grants.py; conservative).
- Amazon Transcribe reads the media and writes the transcript with the caller's permissions
  (s3:GetObject on Media.MediaFileUri with kms:Decrypt; s3:PutObject on OutputBucketName/OutputKey
  with kms:GenerateDataKey on OutputEncryptionKMSKeyId), reads a vocabulary's VocabularyFileUri
  the same way, and CreateLanguageModel passes DataAccessRoleArn (iam:PassRole with
  iam:PassedToService transcribe.amazonaws.com) - the training text is then read with that role,
  checked against the language-model data role's policy.
- Bedrock through a cross-region inference profile: bedrock:InvokeModel (or
  ...WithResponseStream) on the profile and on its foundation model in another region of the
  geography, the latter with bedrock:InferenceProfileArn.
- OpenSearch HTTP calls (recorded from opensearch-py, recorder.py): es:ESHttp<Method> on the domain's ARN
  followed by the request path (`<domain ARN>/encounters/_search`), as the domain authorizes them. The
  search URL a test names is taken for the stack's one domain.
- S3 DeleteObjects: each key of the request, as s3:DeleteObjectVersion when it names a version (else
  s3:DeleteObject), on that object (the Service Authorization Reference: DeleteObjects has no action of its
  own).
Not modelled: KMS key policies and the other resource-based policies (identity policies only, see
iam.py; the search domain's resource policy is checked by tests/infra/test_search.py);
Lambda's own GetQueueAttributes calls for the event source mapping; X-Ray and CloudWatch Logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from stacks.grants import split_inference_profile
from tests.contract import iam
from tests.contract.recorder import Call, Names
from tests.contract.stack import ACCOUNT, PARTITION, REGION, RenderedStack

# botocore service name -> IAM prefix, where they differ
IAM_PREFIX = {"bedrock-runtime": "bedrock", "dynamodbstreams": "dynamodb"}
# Operations IAM authorizes under another action's name.
ACTION_OF = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    ("bedrock-runtime", "Converse"): "bedrock:InvokeModel",
    ("bedrock-runtime", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
}
# Operations that need no authorization at all.
UNAUTHORIZED = frozenset({("sts", "GetCallerIdentity")})
# A region of each inference-profile geography other than the stack's (Bedrock routes there too).
OTHER_REGION = {"us": "us-west-2", "us-gov": "us-gov-east-1", "eu": "eu-west-3", "apac": "ap-northeast-1",
                "au": "ap-southeast-4", "ca": "ca-west-1", "jp": "ap-northeast-3", "global": "eu-central-1"}
# Transcribe resource types -> the request parameter that names the resource.
TRANSCRIBE_NAME_PARAMS = {
    "transcriptionjob": "TranscriptionJobName",
    "medicaltranscriptionjob": "MedicalTranscriptionJobName",
    "vocabulary": "VocabularyName",
    "medicalvocabulary": "VocabularyName",
    "languagemodel": "ModelName",
    "vocabularyfilter": "VocabularyFilterName",
    "callanalyticscategory": "CategoryName",
    "callanalyticsjob": "CallAnalyticsJobName",
    "medicalscribejob": "MedicalScribeJobName",
}
DYNAMODB_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                         "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
DYNAMODB_DATA_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactWriteItems", "TransactGetItems",
})
MISSING_OBJECT_ERRORS = frozenset({"NoSuchKey", "NoSuchVersion", "404"})
CALLER, CLM_DATA_ROLE = "caller", "language-model data role"


class Unmapped(Exception):
    """A resource the call names that cannot be matched to one of the stack's."""


@dataclass(frozen=True)
class Requirement:
    request: iam.Request
    why: str  # "the call itself" or the service rule behind an implicit authorization
    role: str = CALLER  # whose policy must allow it: the caller's role, or CLM_DATA_ROLE


class Mapper:
    """Local and test resource names -> the synthesized stack's (see the module docstring)."""

    def __init__(self, stack: RenderedStack, names: Names) -> None:
        self.stack = stack
        self.names = names

    def bucket(self, name: str) -> str:
        if name == self.names.artifacts_bucket:
            return self.stack.artifacts_bucket
        return self.stack.input_bucket

    def table(self, name: str) -> str:
        if name == self.names.table or name == self.stack.table:
            return self.stack.table
        if name.startswith("arn:") and name.split("/", 1)[-1] in (self.names.table, self.stack.table):
            return self.stack.table
        raise Unmapped(f"table {name!r} is not the function's table ({self.names.table!r})")

    def table_arn(self, name: str) -> str:
        return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{self.table(name)}"

    def stream_arn(self, arn: str | None) -> str:
        if arn is not None:
            table = arn.split(":table/", 1)[-1].split("/stream/", 1)[0]
            self.table(table)  # the stream must be the function's table's
        return self.stack.stream_arn

    def topic(self, arn: str) -> str:
        if arn in (self.names.topic_arn, self.stack.topic_arn):
            return self.stack.topic_arn
        raise Unmapped(f"topic {arn!r} is not the function's topic ({self.names.topic_arn!r})")

    def key(self, key: str) -> str:
        """The key as the request names it (IAM compares what the request says: an id is not an ARN)."""
        if key in (self.names.kms_key_arn, self.stack.key_arn):
            return self.stack.key_arn
        local_id = (self.names.kms_key_arn or "").rsplit("/", 1)[-1]
        if key in (local_id, self.stack.key_id):
            return self.stack.key_id
        raise Unmapped(f"KMS key {key!r} is not the project key ({self.names.kms_key_arn!r})")

    def key_arn(self, key: str | None = None) -> str:
        self.key(key or self.stack.key_arn)
        return self.stack.key_arn

    def role(self, arn: str) -> str:
        if arn in (self.names.clm_role_arn, self.stack.clm_role_arn):
            return self.stack.clm_role_arn
        raise Unmapped(f"role {arn!r} is not the language-model data role ({self.names.clm_role_arn!r})")

    def named(self, name: str) -> str:
        """A name that carries the stage prefix (jobs, vocabularies, models, queues), with the stack's."""
        local = self.names.prefix
        if local and name.startswith(f"{local}-"):
            return f"{self.stack.prefix}-{name[len(local) + 1:]}"
        return name

    def queue_arn(self, url_or_arn: str) -> str:
        name = url_or_arn.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        arn = self.stack.queue_arns.get(self.named(name))
        if arn is None:
            raise Unmapped(f"queue {name!r} is no route's queue or dead-letter queue")
        return arn


def object_arn(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def s3_location(uri: str) -> tuple[str, str]:
    """s3://bucket/key or https://bucket.s3.<region>.amazonaws.com/key (or path style) -> (bucket, key)."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        return parts.netloc, unquote(parts.path.lstrip("/"))
    host, path = parts.netloc, unquote(parts.path.lstrip("/"))
    if ".s3." in host or host.endswith(".s3.amazonaws.com"):
        return host.split(".s3", 1)[0], path
    bucket, _, key = path.partition("/")
    return bucket, key


def requirements(call: Call, stack: RenderedStack) -> list[Requirement]:
    """Every authorization the call needs, in the stack's terms (raises Unmapped)."""
    if (call.service, call.operation) in UNAUTHORIZED:
        return []
    mapper = Mapper(stack, call.names)
    rule = RULES.get(call.service)
    if rule is None:
        raise Unmapped(f"no authorization rule for service {call.service!r} ({call.operation}): add one")
    return list(rule(call, mapper))


def _action(call: Call) -> str:
    prefix = IAM_PREFIX.get(call.service, call.service)
    return ACTION_OF.get((call.service, call.operation)) or f"{prefix}:{call.operation}"


def _own(call: Call, resource: str, context: dict[str, Any] | None = None, action: str | None = None) -> Requirement:
    return Requirement(iam.Request.of(action or _action(call), resource, context), "the call itself")


def _kms(mapper: Mapper, actions: tuple[str, ...], why: str, key: str | None = None) -> Iterator[Requirement]:
    arn = mapper.key_arn(key)
    for action in actions:
        yield Requirement(iam.Request.of(action, arn), why)


def _s3(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    params = call.params
    if "Bucket" not in params:
        raise Unmapped(f"s3 {call.operation} without a Bucket parameter")
    bucket = mapper.bucket(params["Bucket"])
    bucket_arn = f"arn:{PARTITION}:s3:::{bucket}"
    key = params.get("Key")
    if call.operation in ("GetObject", "HeadObject") and params.get("VersionId"):
        action = "s3:GetObjectVersion"
    elif call.operation == "DeleteObject" and params.get("VersionId"):
        action = "s3:DeleteObjectVersion"
    elif call.operation == "GetObjectTagging" and params.get("VersionId"):
        action = "s3:GetObjectVersionTagging"
    else:
        action = _action(call)
    if call.operation == "DeleteObjects":
        for entry in params.get("Delete", {}).get("Objects", []):
            deleted = "s3:DeleteObjectVersion" if entry.get("VersionId") else "s3:DeleteObject"
            yield _own(call, object_arn(bucket, entry["Key"]), action=deleted)
        return
    yield _own(call, object_arn(bucket, key) if key is not None else bucket_arn, action=action)
    if call.operation in ("GetObject", "HeadObject") and call.error in MISSING_OBJECT_ERRORS:
        yield Requirement(iam.Request.of("s3:ListBucket", bucket_arn),
                          "S3 answers a missing object with 404 only to callers with s3:ListBucket (else 403)")
    if call.operation == "GetObject" and call.error is None:
        yield from _kms(mapper, ("kms:Decrypt",), "S3 decrypts the SSE-KMS object with the bucket's key")
    if call.operation in ("PutObject", "CreateMultipartUpload"):
        yield from _kms(mapper, ("kms:GenerateDataKey",), "S3 encrypts the object with SSE-KMS",
                        params.get("SSEKMSKeyId"))


def _dynamodb(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    params = call.params
    if call.operation in ("TransactWriteItems", "TransactGetItems"):
        for item in params.get("TransactItems", []):
            (kind, body), = item.items()
            yield _own(call, mapper.table_arn(body["TableName"]), action=f"dynamodb:{DYNAMODB_ITEM_ACTIONS[kind]}")
    elif call.operation in ("BatchGetItem", "BatchWriteItem"):
        for table in params.get("RequestItems", {}):
            yield _own(call, mapper.table_arn(table))
    else:
        arn = mapper.table_arn(params["TableName"])
        index = params.get("IndexName")
        yield _own(call, f"{arn}/index/{index}" if index else arn)
    if call.operation in DYNAMODB_DATA_OPERATIONS:
        yield from _kms(mapper, ("kms:Decrypt",), "DynamoDB reads the table's customer-managed key")


def _dynamodb_streams(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    if call.operation == "ListStreams":
        yield _own(call, "*")
        return
    yield _own(call, mapper.stream_arn(call.params.get("StreamArn")))
    if call.operation == "GetRecords":
        yield from _kms(mapper, ("kms:Decrypt",), "stream records are encrypted with the table's key")


def _sqs(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    queue = call.params.get("QueueUrl") or call.params.get("QueueName")
    if queue is None:
        raise Unmapped(f"sqs {call.operation} names no queue")
    yield _own(call, mapper.queue_arn(queue))
    action = _action(call)
    if action == "sqs:SendMessage":
        yield from _kms(mapper, ("kms:GenerateDataKey", "kms:Decrypt"), "SQS SSE-KMS: a producer needs both")
    elif action == "sqs:ReceiveMessage":
        yield from _kms(mapper, ("kms:Decrypt",), "SQS SSE-KMS: a consumer decrypts")


def _sns(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    yield _own(call, mapper.topic(call.params["TopicArn"]))
    if call.operation == "Publish":
        yield from _kms(mapper, ("kms:GenerateDataKey", "kms:Decrypt"), "SNS SSE-KMS: a publisher needs both")


def _events(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    by_bus: dict[str, list[dict[str, Any]]] = {}
    for entry in call.params.get("Entries", []):
        bus = str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
        by_bus.setdefault(bus, []).append(entry)
    for bus, entries in by_bus.items():
        context = {
            "events:source": [str(entry["Source"]) for entry in entries if "Source" in entry],
            "events:detail-type": [str(entry["DetailType"]) for entry in entries if "DetailType" in entry],
        }
        yield _own(call, f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{bus}",
                   {key: values for key, values in context.items() if values})


def _bedrock(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    model_id = str(call.params["modelId"])
    geography, foundation_model = split_inference_profile(model_id)
    if geography is None:
        yield _own(call, f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/{foundation_model}")
        return
    profile = f"arn:{PARTITION}:bedrock:{REGION}:{ACCOUNT}:inference-profile/{model_id}"
    yield _own(call, profile)
    region = OTHER_REGION.get(geography, "us-west-2")
    yield Requirement(
        iam.Request.of(_action(call), f"arn:{PARTITION}:bedrock:{region}::foundation-model/{foundation_model}",
                       {"bedrock:InferenceProfileArn": profile}),
        "an inference profile invokes its foundation model in any region of its geography",
    )


def _transcribe(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    params = call.params
    action = iam.action(_action(call))
    if action is None:
        raise Unmapped(f"IAM has no action {_action(call)}")
    if action.resourceless:
        output_bucket, output_key = params.get("OutputBucketName"), params.get("OutputEncryptionKMSKeyId")
        context = {
            key: value for key, value in (
                ("transcribe:OutputBucketName", output_bucket and mapper.bucket(output_bucket)),
                ("transcribe:OutputKey", params.get("OutputKey")),
                ("transcribe:OutputEncryptionKMSKeyId", output_key and mapper.key(output_key)),
            ) if value
        }
        yield _own(call, "*", context)
    for kind in action.resource_types:
        name = params.get(TRANSCRIBE_NAME_PARAMS[kind])
        if name is None:
            raise Unmapped(f"transcribe {call.operation}: no {TRANSCRIBE_NAME_PARAMS[kind]} for its {kind}")
        yield _own(call, iam.arn_of(kind, action.name, mapper.named(str(name)),
                                    partition=PARTITION, region=REGION, account=ACCOUNT))
    media = params.get("Media", {}).get("MediaFileUri")
    if media:
        bucket, key = s3_location(media)
        yield Requirement(iam.Request.of("s3:GetObject", object_arn(mapper.bucket(bucket), key)),
                          "Transcribe reads the media with the caller's permissions")
        yield from _kms(mapper, ("kms:Decrypt",), "Transcribe reads SSE-KMS media with the caller's permissions")
    if params.get("OutputBucketName"):
        key = params.get("OutputKey") or f"{params.get('TranscriptionJobName', 'job')}.json"
        yield Requirement(iam.Request.of("s3:PutObject", object_arn(mapper.bucket(params["OutputBucketName"]), key)),
                          "Transcribe writes the transcript with the caller's permissions")
        yield from _kms(mapper, ("kms:GenerateDataKey",), "Transcribe encrypts the transcript with the given key",
                        params.get("OutputEncryptionKMSKeyId"))
    if params.get("VocabularyFileUri"):
        bucket, key = s3_location(params["VocabularyFileUri"])
        yield Requirement(iam.Request.of("s3:GetObject", object_arn(mapper.bucket(bucket), key)),
                          "Transcribe reads the vocabulary file with the caller's permissions")
        yield from _kms(mapper, ("kms:Decrypt",), "Transcribe reads the SSE-KMS vocabulary file")
    data = params.get("InputDataConfig")
    if data:
        yield Requirement(
            iam.Request.of("iam:PassRole", mapper.role(data["DataAccessRoleArn"]),
                           {"iam:PassedToService": "transcribe.amazonaws.com"}),
            "CreateLanguageModel hands Transcribe its DataAccessRoleArn",
        )
        bucket, prefix = s3_location(data["S3Uri"])
        bucket = mapper.bucket(bucket)
        reads = [("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}"),
                 ("s3:GetObject", object_arn(bucket, f"{prefix}*")), ("kms:Decrypt", mapper.key_arn())]
        for name, resource in reads:
            yield Requirement(iam.Request.of(name, resource),
                              "Transcribe reads the training text with the data access role", CLM_DATA_ROLE)


def _es(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    path = str(call.params["path"]).lstrip("/")
    yield _own(call, f"{mapper.stack.search_domain_arn}/{path}", action=f"es:{call.operation}")


def _kms_call(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    yield _own(call, mapper.key_arn(call.params.get("KeyId")))


def _generic(call: Call, mapper: Mapper) -> Iterator[Requirement]:
    action = iam.action(_action(call))
    if action is None:
        raise Unmapped(f"IAM has no action {_action(call)}")
    if not action.resourceless:
        raise Unmapped(f"{action.name} is authorized per resource and has no ARN rule here: add one")
    yield _own(call, "*")


RULES: dict[str, Callable[[Call, Mapper], Iterator[Requirement]]] = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "dynamodbstreams": _dynamodb_streams,
    "sqs": _sqs,
    "sns": _sns,
    "events": _events,
    "bedrock-runtime": _bedrock,
    "transcribe": _transcribe,
    "kms": _kms_call,
    "es": _es,
    "comprehendmedical": _generic,
}
