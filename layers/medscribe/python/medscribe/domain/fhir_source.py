"""FHIR R4 export (issue 17): what one export reads, turned into domain.fhir's `ExportSource`. Pure.

The workspace service (`WorkspaceService.export_fhir`, audited) picks the version (the signed one,
else the current one as preliminary) and reads the note, the lines and the coded entities; this module
turns those stored documents into the export's input. The coded entities are `entities/<id>.json` in the
artifacts bucket (domain.clinical_entities' `EntitySet.as_dict`), written by the entity stage; when it is
absent or unreadable the bundle holds no clinical resources and its entities section says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medscribe.domain.clinical_entities import entity_set_from_dict
from medscribe.domain.encounter import Encounter
from medscribe.domain.fhir import ExportClaim, ExportSection, ExportSource, s3_uri
from medscribe.domain.note_versions import NoteVersion, VersionState


def entities_key(encounter_id: str) -> str:
    """Where the entity stage stores an encounter's coded entities."""
    return f"entities/{encounter_id}.json"


def _claim_sections(note: Mapping[str, Any]) -> tuple[ExportSection, ...]:
    return tuple(ExportSection(str(s["name"]), tuple(ExportClaim(str(c["text"]), tuple(int(n) for n in c["lines"]))
                                                     for c in s["items"])) for s in note["sections"])


def _record_sections(emr: Mapping[str, Any]) -> tuple[ExportSection, ...]:
    """An EMR record's non-empty fields as sections (a list field: one item per value)."""
    sections = []
    for name, value in (emr.get("record") or {}).items():
        values = [str(v) for v in value] if isinstance(value, list) else [str(value)] if value else []
        if values:
            sections.append(ExportSection(str(name), tuple(ExportClaim(v, ()) for v in values)))
    return tuple(sections)


def export_source(encounter: Encounter, version: NoteVersion, note: Mapping[str, Any], *, clinical: bool,
                  entities: Mapping[str, Any] | None, entities_error: str | None,
                  artifacts_bucket: str, summary: Mapping[str, Any] | None = None) -> ExportSource:
    """`note` is the exported version's clinical note (`clinical`) or the EMR record document (emr.json);
    `summary` the after-visit summary the documentation stage wrote (notes/<id>/summary.json), if any."""
    signed = version.state is VersionState.SIGNED
    author = version.signed_by if signed else (version.actor_id if version.version > 0 else None)
    if encounter.transcript_key:
        transcript_uri: str | None = s3_uri(artifacts_bucket, encounter.transcript_key)
    else:  # a text upload: the uploaded note (a dialogue's lines are numbered from it)
        transcript_uri = s3_uri(encounter.source_bucket, encounter.source_key) if encounter.source_key else None
    entity_set = None
    why = entities_error
    if entities is not None and why is None:
        try:
            entity_set = entity_set_from_dict(entities)
        except (KeyError, ValueError, TypeError) as exc:
            why = f"the stored coded entities could not be read ({type(exc).__name__})"
    if entity_set is None and why is None:
        why = (f"No coded entities: the entity stage has not stored {entities_key(encounter.encounter_id)} "
               "for this encounter, so the bundle holds no clinical resources.")
    return ExportSource(
        encounter=encounter, version=version.version, signed=signed,
        at=(version.signed_at if signed and version.signed_at else version.created_at) or encounter.updated_at,
        author_id=author, template=str(note.get("template")) if clinical and note.get("template") else None,
        engine=str(note.get("engine") or encounter.note_engine or "unknown"),
        sections=_claim_sections(note) if clinical else _record_sections(note),
        lines=tuple(note.get("lines") or ()) if clinical else (), cited=clinical,
        transcript_uri=transcript_uri, entities=entity_set, entities_note=why, summary=summary)
