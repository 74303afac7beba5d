"""Search over encounters: the documents indexed and the hits returned. Pure.

Adapters: SQLite FTS5 with the trigram tokenizer (local; works for Korean, which has no spaces
between many morphemes) and, in AWS, Amazon OpenSearch Service (English analyser plus the Korean
`nori` analyser on every text field).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# The one index every encounter is a document of (the OpenSearch adapter's default; stacks/grants.py scopes the
# workspace's search permission to its `_search` path).
DEFAULT_INDEX = "encounters"


@dataclass(frozen=True)
class SearchDocument:
    encounter_id: str
    status: str
    kind: str
    updated_at: str  # ISO-8601 UTC, sorts as text
    folder: str  # the source key's folder (e.g. "audio/clinic-a"), for by-folder filters
    language: str = ""  # "en", "ko" or "" (unknown)
    transcript: str = ""
    note: str = ""
    codes: tuple[str, ...] = ()  # the entities stage's codes, "system:code" (e.g. "ICD-10-CM:R50.9")


@dataclass(frozen=True)
class SearchHit:
    encounter_id: str
    status: str
    updated_at: str
    score: float  # higher is better
    snippet: str


class SearchIndex(Protocol):
    def upsert(self, document: SearchDocument) -> None: ...

    def delete(self, encounter_id: str) -> None: ...

    def apply(self, upserts: Sequence[SearchDocument], deletes: Sequence[str]) -> set[str]:
        """Many upserts and deletes in one request; returns the encounter ids that failed."""
        ...

    def search(self, text: str, *, status: str | None = None, since: str | None = None,
               limit: int = 20, code: str | None = None) -> list[SearchHit]:
        """Encounters matching every word of `text` (all of them when `text` is blank and a `code` is
        given), with the status, updated since, and carrying the code ("system:code") when given."""
        ...
