"""The one route table: which source feeds which queue and which handler.

Read by `stacks/` (S3 notifications, EventBridge rules, queues with DLQs, event source mappings,
grants) and by `medscribe.local` (the same wiring inside the local AWS emulator). Every trigger goes
through an SQS queue; each route owns one queue, one dead-letter queue and one handler at
`lambdas/<route.name>/handler.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from medscribe.domain.encounter import INPUT_PREFIXES
from medscribe.settings import PipelineSettings


class Access(StrEnum):
    """What a route's function may touch; the stack turns each into scoped IAM grants."""

    TABLE_READ_WRITE = "table-read-write"
    INPUT_READ = "input-read"
    ARTIFACTS_READ_WRITE = "artifacts-read-write"
    TOPIC_PUBLISH = "topic-publish"


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
class Route:
    name: str
    description: str
    trigger: S3Trigger | EventTrigger
    access: frozenset[Access]
    timeout_seconds: int = 60
    memory_mb: int = 512
    # which PipelineSettings field caps this route's concurrent invocations
    concurrency_setting: str = "stage_max_concurrency"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def handler_path(self) -> str:
        return f"lambdas/{self.name}/handler.py"

    def visibility_timeout_seconds(self) -> int:
        # AWS guidance for SQS event sources: at least six times the function timeout.
        return 6 * self.timeout_seconds

    def max_concurrency(self, settings: PipelineSettings) -> int:
        return int(getattr(settings, self.concurrency_setting))


ROUTES: tuple[Route, ...] = (
    Route(
        name="ingest",
        description="Validate uploaded objects and create encounter records",
        trigger=S3Trigger(prefixes=INPUT_PREFIXES),
        access=frozenset({Access.TABLE_READ_WRITE, Access.INPUT_READ}),
        timeout_seconds=30,
        concurrency_setting="max_concurrent_transcriptions",
    ),
)


def route(name: str) -> Route:
    for candidate in ROUTES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no route named {name!r}")
