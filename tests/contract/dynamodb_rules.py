"""DynamoDB request rules AWS documents and the contract tier checks on every recorded request
("Service, account, and table quotas in Amazon DynamoDB"; "Expression attribute names/values"):
- TransactWriteItems: at most 100 actions, and no two of them on the same item;
- key attribute values: a partition key at most 2,048 bytes, a sort key at most 1,024 bytes (UTF-8);
- every placeholder in ExpressionAttributeNames / ExpressionAttributeValues is used by an expression
  of the same request (DynamoDB rejects unused ones);
- Limit, when given, at least 1.
Keys are the table's `pk` / `sk` (medscribe.adapters.encounters) or an index's key attributes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from medscribe.adapters.encounters import INDEXES, PARTITION_KEY, SORT_KEY

MAX_TRANSACTION_ACTIONS = 100
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
EXPRESSIONS = ("KeyConditionExpression", "FilterExpression", "ConditionExpression", "UpdateExpression",
               "ProjectionExpression")
PARTITION_ATTRIBUTES = {PARTITION_KEY, *(index.partition for index in INDEXES)}
SORT_ATTRIBUTES = {SORT_KEY, *(index.sort for index in INDEXES)}


def _size(value: Mapping[str, Any]) -> int:
    (kind, raw), = value.items()
    return len(str(raw).encode("utf-8")) if kind in ("S", "N") else len(str(raw))


def _key_problems(where: str, attributes: Mapping[str, Any]) -> Iterator[str]:
    for name, value in attributes.items():
        if not isinstance(value, Mapping) or len(value) != 1:
            continue
        if name in (PARTITION_KEY,) and _size(value) > MAX_PARTITION_KEY_BYTES:
            yield f"{where}: partition key {name} over {MAX_PARTITION_KEY_BYTES} bytes"
        if name in (SORT_KEY,) and _size(value) > MAX_SORT_KEY_BYTES:
            yield f"{where}: sort key {name} over {MAX_SORT_KEY_BYTES} bytes"
        if name in PARTITION_ATTRIBUTES - {PARTITION_KEY} and _size(value) > MAX_PARTITION_KEY_BYTES:
            yield f"{where}: index partition key {name} over {MAX_PARTITION_KEY_BYTES} bytes"
        if name in SORT_ATTRIBUTES - {SORT_KEY} and _size(value) > MAX_SORT_KEY_BYTES:
            yield f"{where}: index sort key {name} over {MAX_SORT_KEY_BYTES} bytes"


def _expression_problems(where: str, body: Mapping[str, Any]) -> Iterator[str]:
    text = " ".join(str(body[name]) for name in EXPRESSIONS if name in body)
    used = set(re.findall(r"[#:][A-Za-z0-9_]+", text))
    for placeholder in (*body.get("ExpressionAttributeNames", {}), *body.get("ExpressionAttributeValues", {})):
        if placeholder not in used:
            yield f"{where}: {placeholder} is given but used in no expression"


def _request_problems(where: str, body: Mapping[str, Any]) -> Iterator[str]:
    yield from _expression_problems(where, body)
    for member in ("Key", "Item", "ExclusiveStartKey"):
        if isinstance(body.get(member), Mapping):
            yield from _key_problems(f"{where}.{member}", body[member])
    if "Limit" in body and int(body["Limit"]) < 1:
        yield f"{where}: Limit must be at least 1"


def dynamodb_problems(operation: str, params: Mapping[str, Any]) -> list[str]:
    """What AWS would reject in this DynamoDB request (empty when nothing)."""
    if operation != "TransactWriteItems":
        return list(_request_problems(operation, params))
    actions = params.get("TransactItems", [])
    problems = []
    if len(actions) > MAX_TRANSACTION_ACTIONS:
        problems.append(f"TransactWriteItems: {len(actions)} actions, at most {MAX_TRANSACTION_ACTIONS}")
    seen: set[str] = set()
    for index, action in enumerate(actions):
        (kind, body), = action.items()
        problems += _request_problems(f"TransactWriteItems[{index}].{kind}", body)
        item = body.get("Key") or body.get("Item") or {}
        key = json.dumps([body.get("TableName"), item.get(PARTITION_KEY), item.get(SORT_KEY)], sort_keys=True)
        if key in seen:
            problems.append(f"TransactWriteItems[{index}]: a second action on the same item")
        seen.add(key)
    return problems
