"""The stack's tables of IAM actions (which are granted on "*", which on which resource type) checked
against the IAM database they restate: a new action added to a table is classified by the database,
not by whoever adds it."""

from __future__ import annotations

import pytest

from stacks.grants import (
    COMPREHEND_MEDICAL_ACTIONS,
    TABLE_INDEX_ACTIONS,
    TRANSCRIBE_CUSTOMIZE_ACTIONS,
    TRANSCRIBE_READ_ACTIONS,
    TRANSCRIBE_START_ACTIONS,
)
from stacks.messaging import STREAM_LIST_ACTIONS, STREAM_READ_ACTIONS
from tests.contract import iam
from tests.contract.stack import ACCOUNT, PARTITION, REGION


def transcribe_arn(resource_type: str) -> str:
    return f"arn:{PARTITION}:transcribe:{REGION}:{ACCOUNT}:{resource_type}/medscribe-dev-x"


@pytest.mark.parametrize("table", [TRANSCRIBE_READ_ACTIONS, TRANSCRIBE_CUSTOMIZE_ACTIONS],
                         ids=["TRANSCRIBE_READ_ACTIONS", "TRANSCRIBE_CUSTOMIZE_ACTIONS"])
def test_transcribe_tables_classify_each_action_as_the_iam_database_does(table: dict[str, str | None]) -> None:
    for name, resource_type in table.items():
        action = iam.action(name)
        assert action is not None, f"IAM has no action {name}"
        if resource_type is None:
            assert action.resourceless, f"{name} is authorized on {action.resource_types}: scope it"
        else:
            assert not action.resourceless, f"{name} has no resource type: it must be granted on '*'"
            assert action.supports(transcribe_arn(resource_type)), f"{name} is not authorized on {resource_type}/"


@pytest.mark.parametrize("names", [TRANSCRIBE_START_ACTIONS, COMPREHEND_MEDICAL_ACTIONS, STREAM_LIST_ACTIONS])
def test_actions_granted_on_star_have_no_resource_type(names: list[str]) -> None:
    for name in names:
        action = iam.action(name)
        assert action is not None, f"IAM has no action {name}"
        assert action.resourceless, f"{name} is authorized on {action.resource_types}: scope it"


def test_scoped_table_and_stream_actions_are_authorized_on_what_they_are_granted_on() -> None:
    table = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/t"
    for name in TABLE_INDEX_ACTIONS:
        assert iam.action(name).supports(f"{table}/index/by-day"), name  # type: ignore[union-attr]
    for name in STREAM_READ_ACTIONS:
        assert iam.action(name).supports(f"{table}/stream/2026-01-01T00:00:00.000"), name  # type: ignore[union-attr]
