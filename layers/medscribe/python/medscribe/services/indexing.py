"""The search indexer: keeps the search index in step with the encounter records.

Fed by the table's stream (an EventBridge Pipe into the index queue in AWS, a stream poller in the
local runtime); each message names an encounter, by its record or by its note head (the workspace
moves the head on every save and signature). The indexer reads the encounter's *current* record
and artifacts and upserts one document, or deletes it when the record is gone, so a repeated or
reordered message changes nothing. One batch is one bulk request; an encounter whose write fails is
reported back and retried by SQS without redoing the others.

Document text:
- transcript: the numbered transcript lines (audio), or the note as uploaded (text encounters);
- note: every claim of the clinical note and every value of the EMR record; once a clinician has
  saved a version, the claims of the current version (the head's), so a word an edit removed is no
  longer found and one it added is.
Text stays inside the PHI stores (table, buckets, index); logs carry ids and counts only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository, source_folder
from medscribe.adapters.objects import ObjectStore
from medscribe.adapters.workspace_store import WorkspaceStore
from medscribe.domain.encounter import Encounter, Kind, ObjectRef
from medscribe.domain.errors import PermanentError
from medscribe.domain.note_versions import HEAD_SORT_KEY
from medscribe.domain.search import SearchDocument, SearchIndex
from medscribe.observability import logger, metrics
from medscribe.settings import PipelineSettings

ENCOUNTER_PREFIX = "ENC#"
INDEXED_ITEMS = ("ENC", HEAD_SORT_KEY)  # the encounter record and its note head
# note/EMR fields that are bookkeeping, not clinical text
_NOT_TEXT = frozenset({"lines", "problems", "status", "engine", "template", "repairs", "language", "n"})


def encounter_id_of(message: dict[str, Any]) -> str | None:
    """The encounter a stream message is about (see medscribe.routes.stream_message)."""
    pk = str(message.get("pk", ""))
    indexed = pk.startswith(ENCOUNTER_PREFIX) and message.get("sk") in INDEXED_ITEMS
    return pk.removeprefix(ENCOUNTER_PREFIX) if indexed else None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value.strip()
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _NOT_TEXT:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def note_text(note: dict[str, Any] | None) -> str:
    """The clinical text of a note.json (section claims) or emr.json (record values)."""
    if not note:
        return ""
    return "\n".join(_strings(note.get("sections") or note.get("record") or {}))


class IndexingService:
    def __init__(self, repository: EncounterRepository, notes: WorkspaceStore, artifacts: ArtifactStore,
                 objects: ObjectStore, index: SearchIndex, settings: PipelineSettings) -> None:
        self.repository = repository
        self.notes = notes
        self.artifacts = artifacts
        self.objects = objects
        self.index = index
        self.settings = settings

    def sync(self, encounter_ids: Iterable[str]) -> set[str]:
        """Bring the index in line with these encounters' records; returns the ids that failed."""
        upserts: list[SearchDocument] = []
        deletes: list[str] = []
        failed: set[str] = set()
        for encounter_id in dict.fromkeys(encounter_ids):
            try:
                encounter = self.repository.get(encounter_id)
                if encounter is None:
                    deletes.append(encounter_id)
                else:
                    upserts.append(self.document(encounter))
            except Exception:
                logger.exception("could not build the search document", extra={"encounter_id": encounter_id})
                failed.add(encounter_id)
        rejected = self.index.apply(upserts, deletes) if upserts or deletes else set()
        failed |= rejected
        metrics.add_metric(name="SearchDocumentsIndexed", unit=MetricUnit.Count,
                           value=len(upserts) + len(deletes) - len(rejected))
        if failed:
            metrics.add_metric(name="SearchIndexFailures", unit=MetricUnit.Count, value=len(failed))
        logger.info("indexed", extra={"upserts": len(upserts), "deletes": len(deletes), "failed": len(failed)})
        return failed

    def document(self, encounter: Encounter) -> SearchDocument:
        return SearchDocument(
            encounter_id=encounter.encounter_id,
            status=encounter.status.value,
            kind=encounter.kind.value if encounter.kind else "",
            updated_at=encounter.updated_at,
            folder=source_folder(encounter.source_key),
            language=(encounter.language_code or "")[:2].lower(),
            transcript=self._transcript(encounter),
            note=note_text(self._json(self._current_note_key(encounter))),
            codes=encounter.entity_codes or (),
        )

    def _current_note_key(self, encounter: Encounter) -> str | None:
        """The current version's note object: a clinician's saved version when the head names one, else
        the pipeline's note (version 0, or a version that points at it)."""
        if not encounter.note_key:
            return None
        head = self.notes.head(encounter.encounter_id)
        version = self.notes.version(encounter.encounter_id, head.current) if head.current else None
        return version.note_key if version is not None else encounter.note_key

    def _json(self, key: str | None) -> dict[str, Any] | None:
        text = self.artifacts.get_text(key) if key else None
        if key and text is None:  # gone (e.g. deleted by hand): index what is left
            logger.warning("artifact missing; indexed without it", extra={"artifact": key.rsplit("/", 1)[-1]})
        return json.loads(text) if text else None

    def _transcript(self, encounter: Encounter) -> str:
        if encounter.kind is Kind.AUDIO:
            lines = (self._json(encounter.transcript_key) or {}).get("lines", [])
            return "\n".join(str(line.get("text", "")) for line in lines)
        if encounter.kind is Kind.TEXT and encounter.reason is None:
            ref = ObjectRef(bucket=encounter.source_bucket, key=encounter.source_key, size=encounter.size,
                            version_id=None if encounter.revision == "unversioned" else encounter.revision)
            try:
                return self.objects.read(ref, self.settings.text_max_bytes).decode("utf-8-sig", errors="replace")
            except PermanentError:
                logger.warning("source text missing; indexed without it")
        return ""
