"""Bounded retries with exponential backoff and jitter for model calls (both LLM adapters).

An adapter raises `Retryable` for throttling, 5xx, timeouts and broken streams; after `attempts`
tries the last one becomes `TransientError` (the message returns to its queue and is retried later).
Inside a Lambda invocation an attempt (or a backoff before one) that may not finish before the
invocation ends (`attempt_seconds`, the adapter's worst case for one call, against
`invocation.remaining_seconds()`) is not started: `TransientError` too, so a timeout is handled and
logged instead of killing the invocation.
A server's own hint (HTTP Retry-After) replaces the computed delay. The sleep function is injectable,
so tests see every delay without waiting. One `RetryPolicy` per adapter instance.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from medscribe.domain.errors import TransientError
from medscribe.invocation import remaining_seconds
from medscribe.observability import logger

T = TypeVar("T")


class Retryable(Exception):
    """This attempt failed in a way a later attempt may not (code: e.g. ThrottlingException, HTTP 503)."""

    def __init__(self, code: str, retry_after: float | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after


def backoff_delay(attempt: int, base_delay: float, max_delay: float) -> float:
    """base * 2^(attempt-1), capped at max_delay, times a random factor in [0.5, 1) (jitter)."""
    delay: float = min(max_delay, base_delay * 2.0 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography  # nosec B311


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    attempt_seconds: float | None = None  # the longest one attempt may take (the client's timeouts)

    def run(self, operation: Callable[[], T], *, engine: str) -> T:
        """`operation()`, retried on `Retryable` with backoff; TransientError when attempts run out or
        the invocation has no time left for another attempt."""
        for attempt in range(1, self.attempts + 1):
            self._check_time(engine, 0.0)
            try:
                return operation()
            except Retryable as exc:
                if attempt == self.attempts:
                    raise TransientError(f"{engine}: {exc.code} after {attempt} attempts") from exc
                delay = (exc.retry_after if exc.retry_after is not None
                         else backoff_delay(attempt, self.base_delay, self.max_delay))
                logger.warning("model call failed; backing off", extra={
                    "engine": engine, "code": exc.code, "attempt": attempt, "delay_s": round(delay, 3)})
                self._check_time(engine, delay)
                self.sleep(delay)
        raise ValueError("attempts must be at least 1")

    def _check_time(self, engine: str, wait: float) -> None:
        left = remaining_seconds()
        if left is None or self.attempt_seconds is None or left >= wait + self.attempt_seconds:
            return
        logger.warning("not enough of the invocation left for a model call; the message will be retried",
                       extra={"engine": engine, "left_s": round(left, 1), "attempt_s": self.attempt_seconds})
        raise TransientError(f"{engine}: {max(left, 0):.0f} s left in this invocation, a call may take "
                             f"{self.attempt_seconds:.0f} s")
