"""Route tables that would fail at deploy time are rejected at synth."""

from __future__ import annotations

import dataclasses

import pytest

from medscribe.messages import ReconcileTick
from medscribe.routes import ENDPOINTS, ROUTES, Access, Endpoint, Route, S3Trigger, ScheduleTrigger
from stacks.medscribe_stack import check_routes
from stacks.naming import construct_id

pytestmark = pytest.mark.infra


def s3_route(name: str, *prefixes: str) -> Route:
    return Route(name=name, description=name, trigger=S3Trigger(prefixes), access=frozenset({Access.INPUT_READ}))


def test_the_real_route_table_passes() -> None:
    check_routes(ROUTES, ENDPOINTS)


def test_overlapping_prefixes_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        check_routes([s3_route("a", "audio/"), s3_route("b", "audio/raw/")])


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        check_routes([s3_route("a", "x/"), s3_route("a", "y/")])


def test_an_endpoint_may_not_share_a_route_name() -> None:
    # The name makes the function and log group names: a clash would fail at deploy time.
    endpoint = Endpoint(name="a", description="a", access=frozenset({Access.TABLE_READ}))
    with pytest.raises(ValueError, match=r"duplicate route or endpoint names: \['a'\]"):
        check_routes([s3_route("a", "x/")], [endpoint])
    with pytest.raises(ValueError, match="collide"):
        check_routes([s3_route("a-b", "x/")], [Endpoint(name="a_b", description="", access=frozenset())])


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown setting 'no_such_cap'"):
        check_routes([dataclasses.replace(s3_route("a", "x/"), concurrency_setting="no_such_cap")])
    schedule = ScheduleTrigger(
        interval_setting="no_such_interval", local_interval_setting="local_reconcile_interval_seconds",
        message=ReconcileTick(task="reconcile"),
    )
    with pytest.raises(ValueError, match="unknown setting 'no_such_interval'"):
        check_routes([dataclasses.replace(s3_route("a", "x/"), trigger=schedule)])


def test_construct_ids_are_pascal_case() -> None:
    assert construct_id("ground-truth") == "GroundTruth"
    assert construct_id("ingest") == "Ingest"
