"""Construct ids and runtime names derived from names in routes.py, shared by the stack's construct modules."""

from __future__ import annotations

import re

# The CloudWatch namespace of the handlers' metrics (Powertools POWERTOOLS_METRICS_NAMESPACE).
METRICS_NAMESPACE = "medscribe"


def construct_id(name: str) -> str:
    """`ground-truth` -> `GroundTruth`: stable construct ids (and logical ids) per route or layer."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def service_name(handler_name: str) -> str:
    """A function's Powertools service (POWERTOOLS_SERVICE_NAME): the `service` dimension of its metrics."""
    return f"medscribe-{handler_name}"
