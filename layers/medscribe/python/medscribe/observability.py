"""One observability module: Powertools logger, tracer and metrics for every handler.

PHI rule: log ids, sizes, counts, statuses and durations only; never event bodies, object keys,
transcript or note text. Hence handlers never log events (log_event is off) and the tracer never
captures responses.

Tracing (active on every function) patches botocore at init, and requests where an adapter imports
it (`trace_library`): the AWS and HTTP calls X-Ray's `patch_all` would trace, without `patch_all`
importing requests, sqlite3 and every other library it supports at each cold start, in functions
that never use them (bench/coldstart.py).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "medscribe")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "medscribe")

TRACED_MODULES = ("botocore",)

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE, patch_modules=TRACED_MODULES)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def trace_library(module: str) -> None:
    """Trace the calls of a library (an X-Ray patch name, e.g. "requests") that an adapter has just
    imported; nothing when tracing is off (outside Lambda)."""
    tracer.patch(modules=[module])
