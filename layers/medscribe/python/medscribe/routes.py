"""The one route table: which source feeds which queue and which handler.

Read by `stacks/` (S3 notifications, EventBridge rules, queues with DLQs, event source mappings,
grants) and by `medscribe_local` (the same wiring inside the local AWS emulator). Every trigger goes
through an SQS queue; each route owns one queue, one dead-letter queue and one handler at
`lambdas/<route.name>/handler.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from medscribe.domain.encounter import INPUT_PREFIXES
from medscribe.messages import Message, ReconcileTick, SelfhealTick, StreamMessage
from medscribe.settings import PipelineSettings


class Access(StrEnum):
    """What a route's function may touch; the stack turns each into scoped IAM grants."""

    TABLE_READ_WRITE = "table-read-write"
    TABLE_READ = "table-read"
    ARTIFACTS_READ = "artifacts-read"
    INPUT_READ = "input-read"
    # s3:GetObjectTagging / GetObjectVersionTagging on input objects: an upload may choose its note template
    # by its `medscribe-template` tag (domain.template_choice)
    INPUT_TAGS_READ = "input-tags-read"
    # s3:PutObject under the upload prefixes (domain.uploads.UPLOAD_PREFIXES: audio/, text/) only: what
    # the workspace's presigned POST uploads need
    INPUT_WRITE = "input-write"
    ARTIFACTS_READ_WRITE = "artifacts-read-write"
    TOPIC_PUBLISH = "topic-publish"
    # StartTranscriptionJob / StartMedicalTranscriptionJob on this stage's job names
    # (transcription-job/<prefix>-*), reading the input bucket and writing transcripts/ in the
    # artifacts bucket with the project key (Transcribe uses the caller's permissions for both).
    TRANSCRIBE_START = "transcribe-start"
    # GetTranscriptionJob / GetMedicalTranscriptionJob / ListTranscriptionJobs
    TRANSCRIBE_READ = "transcribe-read"
    # events:PutEvents on the default bus (pipeline events carry ids only)
    EVENTS_PUT = "events-put"
    # bedrock:InvokeModel / InvokeModelWithResponseStream (Converse, ConverseStream) on the configured
    # model ids / inference profiles and the foundation models behind them
    BEDROCK_INVOKE = "bedrock-invoke"
    # es:ESHttpGet/Head/Post/Put/Delete on the search domain's indexes (SigV4-signed HTTP)
    SEARCH_WRITE = "search-write"
    # es:ESHttpPost on the search index's `_search` path only (a query; the workspace's search page)
    SEARCH_QUERY = "search-query"
    # What an admin's erasure deletes beyond table items (services/erasure.py): every version of the
    # encounter's objects (s3:ListBucketVersions, s3:DeleteObjectVersion), its Transcribe jobs (this stage's
    # names) and its search document (es:ESHttpPost on the domain's `_bulk` path)
    ERASE = "erase"
    # Create/Update/Get custom vocabularies and Create/Describe custom language models named
    # <prefix>-*, and iam:PassRole of the CLM data-access role to Transcribe
    TRANSCRIBE_CUSTOMIZE = "transcribe-customize"
    # comprehendmedical:DetectEntitiesV2 (clinical words among missed words; no resource-level permissions)
    COMPREHEND_MEDICAL = "comprehend-medical"
    # comprehendmedical:DetectEntitiesV2, InferICD10CM, InferRxNorm, InferSNOMEDCT (coded entities; no
    # resource-level permissions either); apart from COMPREHEND_MEDICAL so self-heal keeps only the one it calls
    COMPREHEND_MEDICAL_CODES = "comprehend-medical-codes"


@dataclass(frozen=True)
class S3Trigger:
    """ObjectCreated notifications from the input bucket for the given key prefixes."""

    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class EventTrigger:
    """An EventBridge rule on the default bus with this event pattern."""

    rule: str
    pattern: dict[str, Any]


@dataclass(frozen=True)
class ScheduleTrigger:
    """A schedule (EventBridge Scheduler in AWS, a timer locally) that sends `message` to the queue.

    `message` is the handler's own model (medscribe.messages), sent as its JSON. The interval comes
    from the named PipelineSettings fields (AWS and local)."""

    interval_setting: str
    local_interval_setting: str
    message: Message


@dataclass(frozen=True)
class StreamTrigger:
    """The table's DynamoDB stream into the queue: an EventBridge Pipe in AWS, a stream poller locally.

    Only items whose sort key is one of `item_types` pass, and each message carries the item's keys and
    the change type only (`STREAM_MESSAGE_TEMPLATE`), never the item: the handler reads the current
    item, so messages that arrive out of order or twice change nothing."""

    item_types: tuple[str, ...]


# Where the Pipe finds each StreamMessage field in a DynamoDB stream record (a test keeps the keys
# equal to the model's fields), its input template (EventBridge Pipes placeholder syntax) built from
# them, and its local twin, `stream_message`.
STREAM_MESSAGE_PATHS: dict[str, str] = {
    "pk": "$.dynamodb.Keys.pk.S", "sk": "$.dynamodb.Keys.sk.S", "eventName": "$.eventName",
}
STREAM_MESSAGE_TEMPLATE = json.dumps({name: f"<{path}>" for name, path in STREAM_MESSAGE_PATHS.items()})


def stream_message(record: dict[str, Any], item_types: tuple[str, ...]) -> StreamMessage | None:
    """What the Pipe sends for one DynamoDB stream record; None when its filter drops the record."""
    values = {name: _at(record, path) for name, path in STREAM_MESSAGE_PATHS.items()}
    if values["sk"] not in item_types:
        return None
    return StreamMessage.model_validate(values)


def _at(record: dict[str, Any], path: str) -> Any:
    """The value at a JSONPath of plain field names ("$.a.b"), or None."""
    value: Any = record
    for name in path.removeprefix("$.").split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


@dataclass(frozen=True)
class Route:
    name: str
    description: str
    trigger: S3Trigger | EventTrigger | ScheduleTrigger | StreamTrigger
    access: frozenset[Access]
    timeout_seconds: int = 60
    memory_mb: int = 512
    # which PipelineSettings field caps this route's concurrent invocations
    concurrency_setting: str = "stage_max_concurrency"
    # the dependency layer's requirements file (heavy libraries stay off other routes)
    requirements: str = "layers/deps/requirements.txt"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def handler_path(self) -> str:
        return f"lambdas/{self.name}/handler.py"

    def visibility_timeout_seconds(self) -> int:
        # AWS guidance for SQS event sources: at least six times the function timeout.
        return 6 * self.timeout_seconds

    def max_concurrency(self, settings: PipelineSettings) -> int:
        return int(getattr(settings, self.concurrency_setting))


TRANSCRIBE_JOB_STATE_PATTERN: dict[str, Any] = {
    "source": ["aws.transcribe"],
    "detail-type": ["Transcribe Job State Change"],
    "detail": {
        "TranscriptionJobStatus": ["COMPLETED", "FAILED"],
        "TranscriptionJobName": [{"prefix": "medscribe-"}],
    },
}

# Completing a transcription writes artifacts; both completers may also start waiting work.
COMPLETES_TRANSCRIPTIONS = frozenset({
    Access.TABLE_READ_WRITE, Access.ARTIFACTS_READ_WRITE, Access.TRANSCRIBE_READ,
    Access.TRANSCRIBE_START, Access.INPUT_READ, Access.TOPIC_PUBLISH, Access.EVENTS_PUT,
})

READY_FOR_DOCUMENTATION_PATTERN: dict[str, Any] = {
    "source": ["medscribe"],
    "detail-type": ["Encounter Ready For Documentation"],
}

READY_FOR_SCORING_PATTERN: dict[str, Any] = {
    "source": ["medscribe"],
    "detail-type": ["Encounter Ready For Scoring"],
}

READY_FOR_ENTITIES_PATTERN: dict[str, Any] = {
    "source": ["medscribe"],
    "detail-type": ["Encounter Ready For Entities"],
}

ROUTES: tuple[Route, ...] = (
    Route(
        name="ingest",
        description="Validate uploaded objects, create encounter records, start transcription jobs",
        trigger=S3Trigger(prefixes=INPUT_PREFIXES),
        access=frozenset({
            Access.TABLE_READ_WRITE, Access.INPUT_READ, Access.INPUT_TAGS_READ, Access.TRANSCRIBE_START,
            Access.TRANSCRIBE_READ, Access.TOPIC_PUBLISH, Access.EVENTS_PUT,
        }),
        timeout_seconds=60,
        concurrency_setting="max_concurrent_transcriptions",
    ),
    Route(
        name="transcript",
        description="On Transcribe job completion: numbered lines, CSV/DOCX artifacts, TRANSCRIBED or FAILED",
        trigger=EventTrigger(rule="transcribe-job-state", pattern=TRANSCRIBE_JOB_STATE_PATTERN),
        access=COMPLETES_TRANSCRIPTIONS,
        timeout_seconds=120,
        memory_mb=1024,
        requirements="layers/artifacts/requirements.txt",
    ),
    Route(
        name="reconcile",
        description="Find encounters stuck waiting for transcription and drive them forward",
        trigger=ScheduleTrigger(
            interval_setting="reconcile_interval_minutes",
            local_interval_setting="local_reconcile_interval_seconds",
            message=ReconcileTick(task="reconcile"),
        ),
        access=COMPLETES_TRANSCRIPTIONS,
        timeout_seconds=300,
        memory_mb=1024,
        requirements="layers/artifacts/requirements.txt",
        concurrency_setting="reconcile_max_concurrency",
    ),
    Route(
        name="document",
        description="Clinical note with verified citations (audio) or EMR record (text) -> DOCUMENTED / NEEDS_REVIEW",
        trigger=EventTrigger(rule="ready-for-documentation", pattern=READY_FOR_DOCUMENTATION_PATTERN),
        access=frozenset({Access.TABLE_READ_WRITE, Access.INPUT_READ, Access.ARTIFACTS_READ_WRITE,
                          Access.BEDROCK_INVOKE, Access.EVENTS_PUT}),
        # Lambda's maximum: a long transcript is several model calls (chunks, repairs), each up to the
        # Bedrock client's read timeout; calls that would not fit are not started (medscribe.invocation)
        timeout_seconds=900,
        memory_mb=1024,
    ),
    Route(
        name="entities",
        description="Clinical entities with codes and line evidence of a documented encounter -> entities/<id>.json",
        trigger=EventTrigger(rule="ready-for-entities", pattern=READY_FOR_ENTITIES_PATTERN),
        access=frozenset({Access.TABLE_READ_WRITE, Access.INPUT_READ, Access.ARTIFACTS_READ_WRITE,
                          Access.COMPREHEND_MEDICAL_CODES}),
        # a long transcript is several calls per API (InferSNOMEDCT's default quota: 2 a second), with backoff
        timeout_seconds=300,
    ),
    Route(
        name="score",
        description="Score transcripts against their ground truth (WER/CER): score records, CSV report, email",
        trigger=EventTrigger(rule="ready-for-scoring", pattern=READY_FOR_SCORING_PATTERN),
        access=frozenset({Access.TABLE_READ_WRITE, Access.INPUT_READ, Access.ARTIFACTS_READ_WRITE,
                          Access.TOPIC_PUBLISH}),
        timeout_seconds=120,
        memory_mb=1024,
        requirements="layers/scoring/requirements.txt",
    ),
    Route(
        name="selfheal",
        description="Self-heal: missed words -> custom vocabulary / language model, evaluate, leaderboard, promote",
        trigger=ScheduleTrigger(
            interval_setting="selfheal_interval_minutes",
            local_interval_setting="local_selfheal_interval_seconds",
            message=SelfhealTick(task="selfheal"),
        ),
        access=frozenset({
            Access.TABLE_READ_WRITE, Access.INPUT_READ, Access.ARTIFACTS_READ_WRITE, Access.TOPIC_PUBLISH,
            Access.TRANSCRIBE_START, Access.TRANSCRIBE_READ, Access.TRANSCRIBE_CUSTOMIZE, Access.COMPREHEND_MEDICAL,
        }),
        timeout_seconds=300,
        memory_mb=1024,
        requirements="layers/scoring/requirements.txt",
        concurrency_setting="reconcile_max_concurrency",
    ),
    Route(
        name="index",
        description="Keep the search index in step with encounter records (DynamoDB stream -> OpenSearch)",
        # the encounter record, and the note head (domain.note_versions.HEAD_SORT_KEY; a test keeps them
        # equal) that the workspace moves on every save and signature
        trigger=StreamTrigger(item_types=("ENC", "NOTE")),
        access=frozenset({Access.TABLE_READ, Access.INPUT_READ, Access.ARTIFACTS_READ, Access.SEARCH_WRITE}),
        timeout_seconds=60,
        requirements="layers/search/requirements.txt",
        concurrency_setting="index_max_concurrency",
    ),
)


@dataclass(frozen=True)
class Endpoint:
    """A function called over HTTPS (not a queue route): behind an IAM-authorised Lambda function URL
    (`ENDPOINTS`), or behind the workspace's HTTP API (`WORKSPACE`)."""

    name: str
    description: str
    access: frozenset[Access]
    timeout_seconds: int = 60
    memory_mb: int = 1024
    # the dependency layer's requirements file
    requirements: str = "layers/deps/requirements.txt"

    @property
    def handler_path(self) -> str:
        return f"lambdas/{self.name}/handler.py"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        name="ask",
        description="Answer a question over one encounter's transcript, with line citations",
        access=frozenset({Access.TABLE_READ, Access.ARTIFACTS_READ, Access.BEDROCK_INVOKE}),
        timeout_seconds=180,  # one model call (the Bedrock client's read timeout) and its retry fit
    ),
)


# The clinician workspace (issue 16): one ASGI app behind an HTTP API whose every route needs a Cognito
# token (stacks/workspace.py), deployed when `workspace_enabled`. It reads encounters, writes note versions
# and audit records, reads and writes artifacts, signs audio URLs (input read) and upload forms (input write),
# queries the search index and, for admins, erases encounters.
WORKSPACE = Endpoint(
    name="workspace",
    description="Clinician workspace: encounters, review with audio, edit, sign-off, audit trail (JSON API, pages)",
    access=frozenset({Access.TABLE_READ_WRITE, Access.ARTIFACTS_READ_WRITE, Access.INPUT_READ, Access.INPUT_WRITE,
                      Access.SEARCH_QUERY, Access.ERASE}),
    # API Gateway ends an HTTP API integration after 30 s: the function stops before the gateway does
    timeout_seconds=29,
    requirements="layers/workspace/requirements.txt",
)

# The workspace HTTP API's Lambda authorizer: verifies a Cognito access token (header or cookie) against the
# pool's published keys. No data access at all: no table, bucket, topic or key.
WORKSPACE_AUTHORIZER = Endpoint(
    name="workspace_authorizer",
    description="Workspace sign-in check: a Cognito access token of the pool for the app client (header or cookie)",
    access=frozenset(),
    timeout_seconds=10,
    memory_mb=256,
    requirements="layers/authorizer/requirements.txt",
)


def route(name: str) -> Route:
    for candidate in ROUTES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no route named {name!r}")
