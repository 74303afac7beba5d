"""The local runtime's own files after an erasure (`medscribe erase` without --aws).

Besides the emulated stores (erased by medscribe.services.erasure like AWS's), the runtime keeps files
that can name an encounter: the outbox (the emails the topic would have sent: encounter ids and
scores), the run folders (results.json with the uploaded keys, report.html, a copy of each review
page) and the SQLite search index, whose deleted text must not stay in free pages or the WAL. The
local Transcribe's job files go with DeleteTranscriptionJob (medscribe_local.transcribe_service).
"""

from __future__ import annotations

import email
import email.policy
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from medscribe_local.state import write_atomically

# (run folder, encounter ids still listed, the report's title) -> writes report.html again
Rerender = Callable[[Path, list[str], str], object]


def scrub_outbox(folder: Path, erased: set[str]) -> int:
    """Drop every line naming an erased encounter from the outbox's emails; returns the emails changed."""
    changed = 0
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        part = message.get_body(("plain",))
        body = part.get_content() if part is not None else ""
        subject = str(message["Subject"] or "")
        if not any(i in body or i in subject for i in erased):
            continue
        kept = [line for line in body.splitlines() if not any(i in line for i in erased)]
        message.set_content("\n".join(kept) + "\n")
        if any(i in subject for i in erased):
            del message["Subject"]
            message["Subject"] = "medscribe notification (an erased encounter removed)"
        write_atomically(path, message.as_string())
        changed += 1
    return changed


def scrub_runs(runs: Path, erased: set[str], rerender: Rerender) -> int:
    """Remove the erased encounters from every run folder: their rows in results.json, their review page
    copies, and the report (written again from what is left). Returns the run folders changed."""
    changed = 0
    for results_file in sorted(runs.glob("*/results.json")):
        folder = results_file.parent
        results = json.loads(results_file.read_text(encoding="utf-8"))
        rows = results.get("encounters", [])
        pages = [folder / "encounters" / f"{i}.html" for i in erased]
        report = folder / "report.html"
        if not any(row.get("encounter_id") in erased for row in rows) and not any(p.exists() for p in pages):
            continue
        results["encounters"] = [row for row in rows if row.get("encounter_id") not in erased]
        results["pending"] = [i for i in results.get("pending", []) if i not in erased]
        write_atomically(results_file, json.dumps(results, indent=2, ensure_ascii=False))
        for page in pages:
            page.unlink(missing_ok=True)
        if report.exists():
            title = f"medscribe {'demo' if 'medscribe demo' in report.read_text(encoding='utf-8') else 'run'} "
            rerender(folder, [row["encounter_id"] for row in results["encounters"] if row.get("encounter_id")],
                     title + folder.name)
        changed += 1
    return changed


def compact_search_index(path: Path) -> None:
    """Leave no trace of deleted documents in the SQLite index: every index connection runs with
    `secure_delete` (freed pages are zeroed when a row goes), FTS5 merges its segments ('optimize', so
    the segments that held the erased text are freed, and zeroed), and the WAL is checkpointed and
    truncated. No VACUUM: the running runtime keeps the file open, and the index is rewritten in place."""
    if not path.is_file():
        return
    db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    try:
        db.execute("PRAGMA secure_delete = ON")
        db.execute("INSERT INTO encounters(encounters) VALUES ('optimize')")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
