"""Construct ids derived from names in routes.py, shared by the stack's construct modules."""

from __future__ import annotations

import re


def construct_id(name: str) -> str:
    """`ground-truth` -> `GroundTruth`: stable construct ids (and logical ids) per route or layer."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)
