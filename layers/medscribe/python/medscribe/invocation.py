"""The time left in the current Lambda invocation, for work that must stop before the function times out.

A function killed by its timeout reports nothing: its whole SQS batch comes back after the visibility
timeout and every record counts a receive, without a log line saying why. A call that could outlast
the invocation is therefore not started: `remaining_seconds()` tells how long the current invocation
has left (the Lambda context's remaining time, less `SAFETY_MARGIN_SECONDS` for writing the result),
and the model adapters raise `TransientError` instead of starting an attempt that may not fit, so
the record returns to its queue, is logged as a retry and starts again with a full invocation.

The handler factories (`medscribe.handlers`) and the ask handler enter `invocation(context)` around
each call; outside one (tests, the CLI) there is no limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

SAFETY_MARGIN_SECONDS = 5.0  # left for writing results and reporting batch item failures
_DEADLINE: ContextVar[float | None] = ContextVar("medscribe_invocation_deadline", default=None)


@contextmanager
def invocation(context: Any) -> Iterator[None]:
    """Within the block, `remaining_seconds()` counts down to the invocation's end (minus the margin)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = time.monotonic() + remaining() / 1000 - SAFETY_MARGIN_SECONDS if callable(remaining) else None
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining_seconds() -> float | None:
    """Seconds left for work in the current invocation; None outside one."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()
