"""The index route's message: the Pipe's input template (routes.STREAM_MESSAGE_TEMPLATE), rendered for a
real DynamoDB stream record of the encounter table (the local runtime's emulator, the stream the
local pump reads), parses as the handler's model, StreamMessage, and equals what the local pump
sends (routes.stream_message)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import table_definition
from medscribe.messages import StreamMessage, parse
from medscribe.routes import ROUTES, STREAM_MESSAGE_PATHS, STREAM_MESSAGE_TEMPLATE, StreamTrigger, stream_message
from medscribe_local.emulator import Emulator
from medscribe_local.environment import connect

TABLE = "records"


@pytest.fixture
def stream_records() -> Iterator[list[dict[str, Any]]]:
    """The stream records of writing an encounter item, changing it, writing a slots item, deleting the encounter."""
    emulator = Emulator()
    restore = connect(emulator.start())
    try:
        dynamodb = aws_clients.client("dynamodb")
        dynamodb.create_table(**table_definition(TABLE))
        encounter = {"pk": {"S": "ENC#enc-1"}, "sk": {"S": "ENC"}}
        dynamodb.put_item(TableName=TABLE, Item={**encounter, "status": {"S": "RECEIVED"}})
        dynamodb.put_item(TableName=TABLE, Item={**encounter, "status": {"S": "TRANSCRIBING"}})
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "SLOTS#transcribe"}, "sk": {"S": "SLOTS"}})
        dynamodb.delete_item(TableName=TABLE, Key=encounter)
        streams = aws_clients.client("dynamodbstreams")
        arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        yield streams.get_records(ShardIterator=iterator)["Records"]
    finally:
        emulator.stop()
        restore()


def rendered(template: str, record: dict[str, Any]) -> str:
    """What the Pipe sends: each <$.path> placeholder replaced by the record's value at that path."""

    def value(match: re.Match[str]) -> str:
        found: Any = record
        for name in match.group(1).split("."):
            found = found[name]
        return str(found)

    return re.sub(r"<\$\.([^>]+)>", value, template)


def test_the_template_names_every_field_of_the_model() -> None:
    assert set(STREAM_MESSAGE_PATHS) == set(StreamMessage.model_fields)


def test_the_rendered_template_parses_as_the_handlers_model_and_equals_the_local_pumps_message(
    stream_records: list[dict[str, Any]],
) -> None:
    (index,) = [route for route in ROUTES if isinstance(route.trigger, StreamTrigger)]
    assert isinstance(index.trigger, StreamTrigger)
    messages = [stream_message(record, index.trigger.item_types) for record in stream_records]
    assert messages == [
        StreamMessage(pk="ENC#enc-1", sk="ENC", eventName="INSERT"),
        StreamMessage(pk="ENC#enc-1", sk="ENC", eventName="MODIFY"),
        None,  # not an encounter item: the Pipe's filter drops it
        StreamMessage(pk="ENC#enc-1", sk="ENC", eventName="REMOVE"),
    ]
    for record, message in zip(stream_records, messages, strict=True):
        if message is not None:
            assert parse(StreamMessage, rendered(STREAM_MESSAGE_TEMPLATE, record)) == message
