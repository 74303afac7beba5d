"""The emulator's transaction snapshot: it copies only what a transaction names, so its rollback must
still restore every item the transaction changed and leave every other item as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.local.emulator import Emulator
from medscribe.local.environment import connect

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

    from medscribe.local.emulator import _CachedDispatcher

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

    from medscribe.local import emulator

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
