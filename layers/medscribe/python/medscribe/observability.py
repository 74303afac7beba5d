"""One observability module: Powertools logger, tracer and metrics for every handler.

PHI rule: log ids, sizes, counts, statuses and durations only; never event bodies, object keys,
transcript or note text. Hence handlers never log events (log_event is off) and the tracer never
captures responses.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "medscribe")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "medscribe")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
