"""The deterministic offline entity extractor (issue 17): same output shape as Comprehend Medical.

PLACEHOLDER while it is being written: `extract` raises. Do not land this file as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from medscribe.domain.clinical_entities import EntitySet
from medscribe.domain.transcript_lines import Line


def extract(encounter_id: str, lines: Sequence[Line], language: str) -> EntitySet:
    """Entities with traits, attributes, ICD-10-CM codes where found, and their line spans."""
    raise NotImplementedError("the offline entity extractor is not written yet")
