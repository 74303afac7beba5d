"""SQLite FTS5 search index (the local runtime's stand-in for OpenSearch).

The trigram tokenizer indexes every 3-character window, so substrings match in any language —
Korean included — without a morphological analyser. Query terms of three or more characters use the
index (MATCH, ranked by bm25); shorter terms (two-syllable Korean words such as 두통) fall back to
LIKE on the same table. Upserts replace the encounter's row, so indexing the same record twice changes
nothing. An encounter's codes (the entities stage's "system:code" strings) live in a plain side table,
`encounter_codes`, which a search filters by (`code=`); an index file made before it gets it on open.
Several processes or threads may write one file (WAL journal, busy timeout); `apply` writes a
whole batch in one transaction.

Query text is data: `%`, `_` and the escape character in a short term are escaped for LIKE (they
match themselves, not every document), every term is quoted for MATCH, and a query of more than
`MAX_QUERY_TERMS` distinct words is refused with `QueryTooLong` (SQLite's expression tree has a
depth limit that a thousand LIKE terms exceed). NUL characters are indexed as spaces (FTS5 stops
reading a value at the first one).

A file that is not an index (truncated, overwritten, not SQLite) is `IndexUnreadable` at open or on
the first query, never a bare sqlite3 error; a file deleted or replaced while open (the CLI rebuilds a
damaged index into a new file) is reopened at the next use, so no write goes to an unlinked file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from medscribe.domain.search import SearchDocument, SearchHit

_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS encounters USING fts5(
    encounter_id UNINDEXED, status UNINDEXED, kind UNINDEXED, updated_at UNINDEXED, folder UNINDEXED,
    transcript, note, tokenize = 'trigram'
);
CREATE TABLE IF NOT EXISTS encounter_codes (encounter_id TEXT NOT NULL, code TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS encounter_codes_by_code ON encounter_codes (code, encounter_id);
"""
BUSY_TIMEOUT_SECONDS = 30.0
MAX_QUERY_TERMS = 32
SNIPPET_CHARS = 60  # a code-only search's snippet: the opening of the text
LIKE_ESCAPE = "\\"


class QueryTooLong(ValueError):
    """More distinct words than a query may have."""


class IndexUnreadable(RuntimeError):
    """The index file is not a readable search index (corrupt, truncated, or not SQLite)."""


def _indexable(text: str) -> str:
    """FTS5 reads a value up to its first NUL character: NULs become spaces, so the rest is indexed."""
    return text.replace("\x00", " ")


def _like(term: str) -> str:
    """`%term%` with LIKE's wildcards in `term` matching themselves (ESCAPE LIKE_ESCAPE)."""
    escaped = term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")
    return f"%{escaped}%"


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class SqliteSearchIndex:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._path = str(path)
        self._db, self._inode = self._open()

    def _open(self) -> tuple[sqlite3.Connection, int | None]:
        db = sqlite3.connect(self._path, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            db.execute("PRAGMA secure_delete = ON")  # a deleted document leaves no text in free pages
            if self._path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM encounters").fetchone()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise IndexUnreadable(f"{self._path} is not a readable search index ({exc})") from exc
        return db, self._file_inode()

    def _file_inode(self) -> int | None:
        if self._path == ":memory:":
            return None
        try:
            return os.stat(self._path).st_ino
        except FileNotFoundError:
            return None

    def _current(self) -> sqlite3.Connection:
        """The connection, reopened when the file was deleted or replaced since it was opened.
        Called with the lock held."""
        if self._path != ":memory:" and self._file_inode() != self._inode:
            self._db.close()
            self._db, self._inode = self._open()
        return self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def upsert(self, document: SearchDocument) -> None:
        self.apply([document], [])

    def delete(self, encounter_id: str) -> None:
        self.apply([], [encounter_id])

    def apply(self, upserts: Sequence[SearchDocument], deletes: Sequence[str]) -> set[str]:
        """Deletes, then upserts, in one transaction. An upsert older than the indexed copy (its record's
        updated_at is earlier) is skipped: a stale read by a racing indexer never replaces a newer one."""
        with self._lock, _unreadable():
            db = self._current()
            with db:
                self._write(db, upserts, deletes)
        return set()  # one transaction: all written, or an exception for the whole batch

    @staticmethod
    def _write(db: sqlite3.Connection, upserts: Sequence[SearchDocument], deletes: Sequence[str]) -> None:
        db.execute("BEGIN IMMEDIATE")  # the version check and the write see the same rows
        for encounter_id in deletes:
            db.execute("DELETE FROM encounters WHERE encounter_id = ?", (encounter_id,))
            db.execute("DELETE FROM encounter_codes WHERE encounter_id = ?", (encounter_id,))
        for d in upserts:
            row = db.execute("SELECT max(updated_at) FROM encounters WHERE encounter_id = ?",
                             (d.encounter_id,)).fetchone()
            if row[0] is not None and row[0] > d.updated_at:
                continue
            db.execute("DELETE FROM encounters WHERE encounter_id = ?", (d.encounter_id,))
            db.execute("INSERT INTO encounters VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (d.encounter_id, d.status, d.kind, d.updated_at, d.folder,
                        _indexable(d.transcript), _indexable(d.note)))
            db.execute("DELETE FROM encounter_codes WHERE encounter_id = ?", (d.encounter_id,))
            db.executemany("INSERT INTO encounter_codes VALUES (?, ?)", [(d.encounter_id, c) for c in d.codes])

    def versions(self) -> dict[str, str]:
        """encounter id -> the record's updated_at as indexed (how far the index has caught up)."""
        with self._lock, _unreadable():
            return dict(self._current().execute("SELECT encounter_id, updated_at FROM encounters").fetchall())

    def count(self) -> int:
        with self._lock, _unreadable():
            return int(self._current().execute("SELECT count(*) FROM encounters").fetchone()[0])

    def search(self, text: str, *, status: str | None = None, since: str | None = None,
               limit: int = 20, code: str | None = None) -> list[SearchHit]:
        terms = list(dict.fromkeys(term for term in text.split() if term))
        if not terms and not code:
            return []
        if len(terms) > MAX_QUERY_TERMS:
            raise QueryTooLong(f"a search may have at most {MAX_QUERY_TERMS} different words ({len(terms)} given)")
        long_terms = [t for t in terms if len(t) >= 3]
        short_terms = [t for t in terms if len(t) < 3]
        where, params = [], []
        if long_terms:
            where.append("encounters MATCH ?")
            params.append(" AND ".join(_quote(t) for t in long_terms))
        for term in short_terms:
            where.append(f"(transcript LIKE ? ESCAPE '{LIKE_ESCAPE}' OR note LIKE ? ESCAPE '{LIKE_ESCAPE}')")
            params += [_like(term), _like(term)]
        if status:
            where.append("status = ?")
            params.append(status)
        if since:
            where.append("updated_at >= ?")
            params.append(since)
        if code:
            where.append("encounter_id IN (SELECT encounter_id FROM encounter_codes WHERE code = ?)")
            params.append(code)
        rank = "bm25(encounters)" if long_terms else "0.0"
        snippet = ("coalesce(nullif(snippet(encounters, 5, '[', ']', '…', 48), ''), "
                   "snippet(encounters, 6, '[', ']', '…', 48))") if long_terms else "transcript || char(10) || note"
        sql = (f"SELECT encounter_id, status, updated_at, {rank}, {snippet} FROM encounters "  # noqa: S608 (fixed SQL)  # nosec B608
               f"WHERE {' AND '.join(where)} ORDER BY {rank}, updated_at DESC LIMIT ?")
        with self._lock, _unreadable():
            rows = self._current().execute(sql, [*params, limit]).fetchall()
        return [SearchHit(encounter_id=r[0], status=r[1], updated_at=r[2], score=-float(r[3]) or 0.0,
                          snippet=r[4] if long_terms else like_snippet(r[4], short_terms[0]) if short_terms
                          else r[4][:SNIPPET_CHARS])
                for r in rows]


@contextlib.contextmanager
def _unreadable() -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise  # busy beyond the timeout: not damage
        raise IndexUnreadable(f"the search index is damaged ({exc})") from exc


def like_snippet(text: str, term: str, width: int = SNIPPET_CHARS) -> str:
    """A window of `text` around the first `term`, marked like FTS5's snippets: …before [term] after…"""
    at = text.find(term)
    if at < 0:
        return text[:width]
    start, end = max(0, at - width // 2), min(len(text), at + len(term) + width // 2)
    before, after = text[start:at], text[at + len(term):end]
    return ("…" if start else "") + f"{before}[{term}]{after}" + ("…" if end < len(text) else "")
