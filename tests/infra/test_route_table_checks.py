"""Route tables that would fail at deploy time are rejected at synth."""

from __future__ import annotations

import pytest

from medscribe.routes import ROUTES, Access, Route, S3Trigger
from stacks.medscribe_stack import check_routes, construct_id

pytestmark = pytest.mark.infra


def s3_route(name: str, *prefixes: str) -> Route:
    return Route(name=name, description=name, trigger=S3Trigger(prefixes), access=frozenset({Access.INPUT_READ}))


def test_the_real_route_table_passes() -> None:
    check_routes(ROUTES)


def test_overlapping_prefixes_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        check_routes([s3_route("a", "audio/"), s3_route("b", "audio/raw/")])


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        check_routes([s3_route("a", "x/"), s3_route("a", "y/")])


def test_construct_ids_are_pascal_case() -> None:
    assert construct_id("ground-truth") == "GroundTruth"
    assert construct_id("ingest") == "Ingest"
