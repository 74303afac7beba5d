"""One pydantic model per queue message body: the part of what each route's queue carries that its
handler reads.

| route | producer | model |
|---|---|---|
| ingest | S3 ObjectCreated notifications (and S3's s3:TestEvent) | `S3Message` |
| transcript | EventBridge rule: Transcribe Job State Change | `TranscribeJobStateChange` |
| document, score | EventBridge rules: medscribe's own events (medscribe.adapters.events) | `EncounterEvent` |
| reconcile, selfheal | schedules (routes.ScheduleTrigger.message) | `ReconcileTick`, `SelfhealTick` |
| index | the table's stream through a Pipe (routes.STREAM_MESSAGE_TEMPLATE) | `StreamMessage` |

`parse` turns a body into its model. A body that is not JSON or not that shape raises
`MalformedMessage`: the message can never be processed, whatever the retries, so the handler
factories (medscribe.handlers) drop that record alone. Fields the handlers do not read are ignored.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class MalformedMessage(Exception):
    """A queue message its handler can never process. It names the expected model and pydantic's
    error types at their field paths (the model's own field names), never a value: bodies may hold PHI."""

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
    model_config = ConfigDict(frozen=True)


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
    pass


# transcript: Transcribe Job State Change events through the EventBridge rule
class TranscribeJobDetail(Message):
    TranscriptionJobName: str = Field(min_length=1)


class TranscribeJobStateChange(Message):
    detail: TranscribeJobDetail


# document, score: "Encounter Ready For Documentation" / "Encounter Ready For Scoring"
class EncounterDetail(Message):
    encounter_id: str = Field(min_length=1)


class EncounterEvent(Message):
    detail: EncounterDetail


# reconcile, selfheal: the schedules' messages
class ReconcileTick(Message):
    task: Literal["reconcile"]


class SelfhealTick(Message):
    task: Literal["selfheal"]


# index: the Pipe's message per stream record: the item's keys and the change, never the item
class StreamMessage(Message):
    pk: str
    sk: str
