"""tscribe renderings of a Transcribe output: its CSV and DOCX (with the confidence chart).

tscribe pulls pandas and matplotlib and is slow on long transcripts, so it is imported only here,
only by the routes whose dependency layer carries it, and never on the parsing path. Text cells of
the CSV are neutralised (`text_safety.csv_cell`): spoken words can look like spreadsheet formulas.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from medscribe.domain.text_safety import csv_cell

# matplotlib (tscribe's confidence chart) is not thread-safe; Lambda runs one invocation per
# process, the local runtime runs several in threads.
_LOCK = threading.Lock()
EMPTY_CSV = b",start_time,end_time,speaker,comment\n"


def render(document: dict[str, Any]) -> dict[str, bytes]:
    """{"csv": ..., "docx": ...} for a COMPLETED Transcribe output document.

    A transcript without words (silence) gets tscribe's CSV header and no DOCX: tscribe cannot
    render an empty transcript."""
    items = document.get("results", {}).get("items") or []
    if not any(item.get("type") == "pronunciation" for item in items):
        return {"csv": EMPTY_CSV}
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("MPLCONFIGDIR", tempfile.gettempdir())
    import tscribe  # heavy: imported only where artifacts are written

    with _LOCK, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame = tscribe.decode_transcript(document)
        for column in frame.columns:  # spoken text is data: no cell may run as a formula in a spreadsheet
            frame[column] = frame[column].map(csv_cell)
        frame.to_csv(folder / "transcript.csv")
        tscribe.write_docx(document, str(folder / "transcript.docx"))
        return {"csv": (folder / "transcript.csv").read_bytes(), "docx": (folder / "transcript.docx").read_bytes()}
