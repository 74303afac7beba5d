"""Rebuild the local search index from the runtime's encounter records (`medscribe search`,
`medscribe local run`), when the index file is missing or damaged.

The index only mirrors the table and the artifacts, so nothing is lost: every encounter's document
is rebuilt the way the indexer builds it (IndexingService.document), into a new file that then
replaces the old one in one rename. The runtime's indexer notices the new file and reopens it
(SqliteSearchIndex reopens a file replaced under it). A damaged file is kept beside it for a look.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from medscribe.adapters.search_sqlite import IndexUnreadable, SqliteSearchIndex
from medscribe.services.wiring import indexing_service
from medscribe.settings import load_settings
from medscribe_local.state import RuntimeInfo

_SIDECARS = ("-wal", "-shm")


def open_or_problem(db: Path) -> tuple[SqliteSearchIndex | None, str | None]:
    """The index at `db`, or None and what is wrong with it ("missing", "damaged (...)")."""
    if not db.is_file():
        return None, "missing"
    try:
        return SqliteSearchIndex(db), None
    except IndexUnreadable as exc:
        return None, f"damaged ({exc.__cause__ or exc})"


def rebuild(db: Path, info: RuntimeInfo) -> tuple[SqliteSearchIndex, int, Path | None]:
    """A new index at `db` holding every encounter of the running runtime `info` (clients already
    pointed at it); returns it, the number of documents, and where a damaged old file was kept."""
    # the service only builds the documents: they go into a new file below, so its own index is a throwaway
    service = indexing_service(info.resources.function_settings(load_settings()), index=SqliteSearchIndex())
    documents = [service.document(encounter) for encounter in service.repository.list()]
    fresh = db.with_name(f".{db.name}.{os.getpid()}.rebuild")
    _remove(fresh)
    index = SqliteSearchIndex(fresh)
    index.apply(documents, [])
    index.close()
    kept = None
    if db.is_file():
        kept = db.with_name(f"{db.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        os.replace(db, kept)
    for suffix in _SIDECARS:  # the old file's journal must not be applied to the new one
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.replace(fresh, db)
    for suffix in _SIDECARS:
        Path(f"{fresh}{suffix}").unlink(missing_ok=True)
    return SqliteSearchIndex(db), len(documents), kept


def _remove(path: Path) -> None:
    for name in (str(path), *(f"{path}{suffix}" for suffix in _SIDECARS)):
        Path(name).unlink(missing_ok=True)
