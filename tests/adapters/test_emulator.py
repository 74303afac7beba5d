"""The emulator's transaction snapshot: it copies only what a transaction names, so its rollback must
still restore every item the transaction changed and leave every other item as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe_local.emulator import Emulator
from medscribe_local.environment import connect

TABLE = "records"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    emulator = Emulator()
    restore = connect(emulator.start())
    try:
        client = aws_clients.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
        )
        for pk, count in (("A", 1), ("B", 5), ("C", 7)):
            client.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "sk": {"S": "x"}, "n": {"N": str(count)}})
        yield client
    finally:
        emulator.stop()
        restore()


def key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def state(client: Any) -> dict[tuple[str, str], str]:
    items = client.scan(TableName=TABLE)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): i.get("n", {}).get("N", "") for i in items}


def test_a_cancelled_transaction_restores_updated_put_and_deleted_items(dynamodb: Any) -> None:
    before = state(dynamodb)
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=[
            # an in-place update, a new item, a delete, then a condition that fails
            {"Update": {"TableName": TABLE, "Key": key("A"), "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "99"}}}},
            {"Put": {"TableName": TABLE, "Item": {**key("NEW"), "n": {"N": "1"}}}},
            {"Delete": {"TableName": TABLE, "Key": key("B")}},
            {"ConditionCheck": {"TableName": TABLE, "Key": key("C"), "ConditionExpression": "n = :m",
                                "ExpressionAttributeValues": {":m": {"N": "0"}}}},
        ])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert state(dynamodb) == before


def test_a_cancelled_transaction_restores_a_partition_it_changed_twice(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={**key("A", "y"), "n": {"N": "2"}})
    before = state(dynamodb)
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": key("A"), "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "99"}}}},
            {"Put": {"TableName": TABLE, "Item": {**key("A", "z"), "n": {"N": "1"}}}},
            {"Delete": {"TableName": TABLE, "Key": key("A", "y")}},
            {"ConditionCheck": {"TableName": TABLE, "Key": key("C"), "ConditionExpression": "n = :m",
                                "ExpressionAttributeValues": {":m": {"N": "0"}}}},
        ])
    assert state(dynamodb) == before


def test_a_committed_transaction_applies_and_later_rollbacks_keep_it(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE, "Key": key("A"), "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": TABLE, "Item": {**key("B", "y"), "n": {"N": "3"}}}},
    ])
    committed = state(dynamodb)
    assert committed[("A", "x")] == "2"
    assert committed[("B", "y")] == "3"
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": key("B", "y"), "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "50"}}}},
            {"Put": {"TableName": TABLE, "Item": {**key("A"), "n": {"N": "8"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    assert state(dynamodb) == committed
    # the restored table keeps working: plain writes and another transaction still land
    dynamodb.put_item(TableName=TABLE, Item={**key("D"), "n": {"N": "4"}})
    dynamodb.transact_write_items(TransactItems=[{"Delete": {"TableName": TABLE, "Key": key("C")}}])
    after = state(dynamodb)
    assert ("C", "x") not in after
    assert after[("D", "x")] == "4"
    assert after[("B", "y")] == "3"


def test_the_dispatcher_works_out_each_hosts_backend_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto lists its package folder to find a request's backend; the emulator asks once per host."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from medscribe_local.emulator import _CachedDispatcher

    asked: list[str | None] = []

    def lookup(self: object, host: str | None) -> str:
        asked.append(host)
        return f"backend-of-{host}"

    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", lookup)
    dispatcher = _CachedDispatcher(lambda service: None)
    hosts = ["sqs.us-east-1.amazonaws.com", "s3.amazonaws.com", "sqs.us-east-1.amazonaws.com", None, None]
    assert [dispatcher.get_backend_for_host(h) for h in hosts] == [f"backend-of-{h}" for h in hosts]
    assert asked == ["sqs.us-east-1.amazonaws.com", "s3.amazonaws.com", None]


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "B"}}},
    {"KeyConditionExpression": "pk = :p AND sk > :s", "ScanIndexForward": False,
     "ExpressionAttributeValues": {":p": {"S": "B"}, ":s": {"S": "x"}}},
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nobody"}}},
    {"IndexName": "by-status", "KeyConditionExpression": "st = :s",
     "ExpressionAttributeValues": {":s": {"S": "OPEN"}}},
    {"IndexName": "by-status", "KeyConditionExpression": "st = :s AND ts < :t", "ScanIndexForward": False,
     "FilterExpression": "n <> :n", "ExpressionAttributeValues": {":s": {"S": "OPEN"}, ":t": {"N": "40"},
                                                                   ":n": {"N": "1"}}},
]


def _all_pages(client: Any, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    pages = client.get_paginator("query").paginate(TableName=TABLE, **query, PaginationConfig={"PageSize": limit})
    return [item for page in pages for item in page["Items"]]


def test_queries_answer_as_moto_does_without_sorting_the_whole_table(dynamodb: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Query takes its candidates unsorted (one partition for a base-table query) and sorts them itself:
    every reply, page by page, must equal moto's own, and only Scan still asks for the sorted table."""
    from moto.dynamodb.models.table import Table

    from medscribe_local import emulator

    dynamodb.update_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "st", "AttributeType": "S"},
                              {"AttributeName": "ts", "AttributeType": "N"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by-status", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "st", "KeyType": "HASH"}, {"AttributeName": "ts", "KeyType": "RANGE"}]}}],
    )
    for i in range(60):  # out of key order, ties on the index key, some items not in the index
        item = {**key("ABC"[i % 3], f"{(i * 37) % 60:02d}"), "n": {"N": str(i % 4)}}
        if i % 5:
            item |= {"st": {"S": "OPEN" if i % 2 else "DONE"}, "ts": {"N": str((i * 7) % 50)}}
        dynamodb.put_item(TableName=TABLE, Item=item)

    sorted_calls: list[int] = []
    original = emulator._original_all_items
    monkeypatch.setattr(emulator, "_original_all_items", lambda table: sorted_calls.append(1) or original(table))
    ours = {(i, limit): _all_pages(dynamodb, q, limit) for i, q in enumerate(QUERIES) for limit in (1, 3, 100)}
    assert sorted_calls == []
    assert any(len(items) > 3 for items in ours.values())
    state(dynamodb)  # a scan still walks the table in moto's order
    assert sorted_calls == [1]

    monkeypatch.setattr(Table, "query", emulator._original_query)
    monkeypatch.setattr(Table, "all_items", emulator._original_all_items)
    theirs = {(i, limit): _all_pages(dynamodb, q, limit) for i, q in enumerate(QUERIES) for limit in (1, 3, 100)}
    assert ours == theirs


def test_receiving_skips_expired_messages_without_computing_the_queues_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ReceiveMessage's retention check reads the retention period; moto computed every queue
    attribute (three passes over the queue) for each message it handed out."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import Queue, sqs_backends

    emulator = Emulator()
    restore = connect(emulator.start())
    try:
        sqs = aws_clients.client("sqs")
        url = sqs.create_queue(QueueName="retention", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        for body in ("old", "new-1", "new-2"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        queue = sqs_backends[DEFAULT_ACCOUNT_ID][sqs.meta.region_name].get_queue("retention")
        old = next(m for m in queue._messages if m.body == "old")
        old.sent_timestamp -= 61_000  # sent 61 s before the others: past the 60 s retention period

        computed: list[int] = []
        attributes = Queue.attributes
        monkeypatch.setattr(Queue, "attributes", property(lambda q: computed.append(1) or attributes.fget(q)))
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
        assert sorted(m["Body"] for m in received) == ["new-1", "new-2"]
        assert computed == []
    finally:
        emulator.stop()
        restore()


def test_queue_counts_taken_in_one_pass_equal_moto_s(monkeypatch: pytest.MonkeyPatch) -> None:
    from medscribe_local import emulator as emulator_module

    emulator = Emulator()
    restore = connect(emulator.start())
    try:
        sqs = aws_clients.client("sqs")
        url = sqs.create_queue(QueueName="counts")["QueueUrl"]
        for i in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", DelaySeconds=60 if i == 4 else 0)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
                 "ApproximateNumberOfMessagesNotVisible"]
        ours = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert [ours[name] for name in names] == ["2", "1", "2"]
        emulator_module._remove_patches()
        try:
            theirs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        finally:
            emulator_module._install_patches()
        assert ours == theirs
    finally:
        emulator.stop()
        restore()


def test_stopping_puts_moto_back_as_it_was() -> None:
    """moto is process-wide: once the emulator stops, moto used directly (mock_aws) is moto again."""
    from medscribe_local import emulator as emulator_module

    before = [vars(owner).get(name) for owner, name, _ in emulator_module._PATCHES]
    emulator = Emulator()
    emulator.start()
    assert [vars(owner).get(name) for owner, name, _ in emulator_module._PATCHES] == [
        replacement for _, _, replacement in emulator_module._PATCHES]
    emulator.stop()
    assert [vars(owner).get(name) for owner, name, _ in emulator_module._PATCHES] == before
    assert "__deepcopy__" not in vars(emulator_module.Table)
