"""One observability module: Powertools logger, tracer and metrics for every handler.

PHI rule: log ids, sizes, counts, statuses and durations only; never event bodies, object keys,
transcript or note text. Hence no `log_event=True` and tracer `capture_response=False` everywhere.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "medscribe")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "medscribe")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
