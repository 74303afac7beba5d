"""The local run report: an HTML index of a run's encounters beside each encounter's review page.

Review pages are copied out of the emulated artifacts bucket into the run folder, so the report opens
from disk (file://) with no server, and stays after the runtime stops. The report names encounters by
id and kind, never by the uploader's key (`medscribe erase` rewrites it without an erased encounter).
"""

from __future__ import annotations

from pathlib import Path

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.scores import ScoreStore
from medscribe.domain.selfheal import leaderboard
from medscribe.review.page import IndexEntry, render_index_page


def write_report(folder: Path, encounter_ids: list[str], repository: EncounterRepository,
                 artifacts: ArtifactStore, *, title: str, scores: ScoreStore | None = None) -> Path:
    """The run's report.html (and a copy of each review page); with `scores`, the accuracy table and
    the model leaderboard too."""
    pages = folder / "encounters"
    pages.mkdir(parents=True, exist_ok=True)
    entries = []
    for encounter_id in encounter_ids:
        encounter = repository.get(encounter_id)
        if encounter is None:
            continue
        href = ""
        if encounter.review_key:
            page = artifacts.get_text(encounter.review_key)
            if page is not None:
                (pages / f"{encounter_id}.html").write_text(page, encoding="utf-8")
                href = f"encounters/{encounter_id}.html"
        entries.append(IndexEntry(
            encounter_id=encounter_id, href=href, status=encounter.status.value,
            # the kind, not the file name: uploaders' keys often name the patient, and this page stays on disk
            engine=encounter.note_engine or "", label=encounter.kind.value if encounter.kind else "",
        ))
    rows, standings, active = [], [], ""
    if scores is not None:
        rows = scores.all_scores()
        statuses = {model.name: model.status.value for model in scores.models()}
        standings = leaderboard(rows, statuses)
        current = scores.active()
        active = current.name if current else "baseline"
    index = folder / "report.html"
    index.write_text(render_index_page(entries, title=title, scores=rows, standings=standings, active=active),
                     encoding="utf-8")
    return index
