"""One pydantic model per queue message body (the part of what each route's queue carries that its
handler reads), and the ask endpoint's request.

| route | producer | model |
|---|---|---|
| ingest | S3 ObjectCreated notifications (and S3's s3:TestEvent) | `S3Message` |
| transcript | EventBridge rule: Transcribe Job State Change | `TranscribeJobStateChange` |
| document, score, entities | EventBridge rules: medscribe's own events (1) | `EncounterEvent` |
| reconcile, selfheal | schedules: `routes.ScheduleTrigger.message` is the model | `ReconcileTick`, `SelfhealTick` |
| index | the table's stream through a Pipe (2) | `StreamMessage` |
| ask (a function URL, no queue) | the caller's POST body | `AskRequest` |

(1) medscribe.adapters.events builds the detail from `EncounterDetail`. (2) The Pipe's input template,
`routes.STREAM_MESSAGE_TEMPLATE`, and its local twin, `routes.stream_message`, are built from
`routes.STREAM_MESSAGE_PATHS`, whose keys are `StreamMessage`'s fields.

`parse` turns a body into its model. A body that is not JSON or not that shape raises
`MalformedMessage`: the message can never be processed, whatever the retries, so the handler
factories (medscribe.handlers) drop that record alone. Fields the handlers do not read are ignored:
a message is dropped only when what its handler needs is missing or malformed.

Why not Powertools' parser models (aws_lambda_powertools.utilities.parser.models): they require
envelope fields no handler reads, and the local runtime's AWS (moto) leaves some out, so its
messages would be dropped as malformed. `EventBridgeModel` requires `account`, which moto's
EventBridge-to-SQS delivery omits, and a `time` (the Transcribe documentation's example has the
placeholder "timestamp"). `S3Model` requires userIdentity, requestParameters, responseElements and
bucket.ownerIdentity, which moto's S3 notifications omit; its record validator raises AttributeError
or TypeError, not a ValidationError, for a record without `s3` or `eventName`, so such a record would
be retried until the dead-letter queue instead of dropped; it types the size as a float; and
importing it adds about 15 ms to the ingest cold start (EventBridgeModel about 6 ms). Like
Powertools' model (unlike its S3Event data class), ours keeps the key as S3 sends it, URL-encoded:
`ObjectRef.from_event` decodes it. `parse` is not Powertools' `parse` either: that one raises
pydantic's ValidationError, whose text quotes the input.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, ValidationError

M = TypeVar("M", bound=BaseModel)


class MalformedMessage(Exception):
    """A message its handler can never process. It names the expected model and pydantic's error types
    at their field paths (the model's own field names), never a value: bodies may hold PHI."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        super().__init__(f"malformed {kind}: {'; '.join(problems)}")
        self.kind = kind
        self.problems = problems


def parse(kind: type[M], body: str) -> M:
    """The message in `body` as `kind`, or MalformedMessage."""
    try:
        return kind.model_validate_json(body)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc']) or 'body'}: {detail['type']}"
            for detail in error.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise MalformedMessage(kind.__name__, problems) from None  # the ValidationError quotes the body


class Message(BaseModel):
    # defer_build: a model's validator is built when it first parses, so a handler builds the one or
    # two models of its route, not every route's (about 15 ms of each cold start otherwise)
    model_config = ConfigDict(frozen=True, defer_build=True)


# ingest: S3 event notifications (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)
class S3Object(Message):
    key: str = Field(min_length=1)  # URL-encoded, as S3 sends it (ObjectRef.from_event decodes it)
    size: int | None = None
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class S3Bucket(Message):
    name: str = Field(min_length=1)


class S3Entity(Message):
    bucket: S3Bucket
    object: S3Object


class S3NotificationRecord(Message):
    eventName: str
    s3: S3Entity


class S3Notification(Message):
    Records: list[S3NotificationRecord] = Field(min_length=1)


class S3TestEvent(Message):
    """What S3 sends once when a notification configuration is created."""

    Event: Literal["s3:TestEvent"]


class S3Message(RootModel[S3TestEvent | S3Notification]):
    model_config = ConfigDict(defer_build=True)


# transcript: Transcribe Job State Change events through the EventBridge rule
class TranscribeJobDetail(Message):
    TranscriptionJobName: str = Field(min_length=1)


class TranscribeJobStateChange(Message):
    detail: TranscribeJobDetail


# document, score, entities: "Encounter Ready For Documentation" / "... For Scoring" / "... For Entities"
class EncounterDetail(Message):
    """The detail of medscribe's own events: ids only (events are routed, logged and retried)."""

    encounter_id: str = Field(min_length=1)
    stage: str = Field(min_length=1)


class EncounterEvent(Message):
    detail: EncounterDetail


# reconcile, selfheal: the schedules' messages
class ReconcileTick(Message):
    task: Literal["reconcile"]


class SelfhealTick(Message):
    task: Literal["selfheal"]


# index: the Pipe's message per stream record: the item's keys and the change, never the item
class StreamMessage(Message):
    pk: str = Field(min_length=1)
    sk: str = Field(min_length=1)
    eventName: Literal["INSERT", "MODIFY", "REMOVE"]


# ask: the function URL's POST body
MAX_QUESTION_CHARS = 2000
NonBlankText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class AskRequest(Message):
    """A question about one encounter. Encounter ids are "enc-" and 32 hex digits; the question is
    bounded so that one request cannot fill the model's context."""

    encounter_id: Annotated[NonBlankText, StringConstraints(max_length=64)]
    question: Annotated[NonBlankText, StringConstraints(max_length=MAX_QUESTION_CHARS)]
