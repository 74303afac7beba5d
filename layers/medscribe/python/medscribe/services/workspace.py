"""The clinician workspace: list and open encounters, edit and sign notes, the audit trail, erasure.

Every front end (the web app, the CLI) calls this service with an `Actor` (an id and a role,
clinician or admin); the role checks live here, not in the front ends. Errors are typed for them:
NotFound (404), BadRequest (400), Conflict (409: StaleVersion, NoteSigned, an encounter still in
flight), Forbidden (403). Messages hold ids and numbers, never note or transcript text.

Versions (domain.note_versions): version 0 is the pipeline's note (notes/<id>/note.json); a save
writes the edited sections with their problems to notes/<id>/versions/<n>-<event id>.json (KMS, like
the pipeline's note) and then, in one transaction, the version item, the head and the audit event
(adapters.workspace_store); a save whose transaction loses the race deletes the object version it
wrote (by version id: the bucket is versioned), so a lost save leaves nothing behind. Only the
current version can be signed; a signed version is never changed: editing it needs an amendment
reason and makes a new DRAFT. `export` hands out the signed version (`signed_note`), never a draft;
`export_fhir` the signed version, else the current one marked preliminary.

Audit (domain.audit): view, edit, amend, sign, export (both kinds) and erase are recorded here; front
ends record upload, play and search with `record`. Events hold no PHI and expire
`audit_retention_days` after they are made (the table's TTL). An EMR record (a text note that is not
a dialogue) can be signed, not edited: it has no claims.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import date
from typing import Any, Protocol

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.scores import ScoreStore
from medscribe.adapters.workspace_store import BadCursor, NoteHead, Page, WorkspaceStore
from medscribe.domain.after_visit import summary_key
from medscribe.domain.audit import Actor, AuditEvent, InvalidAuditEvent, audit_csv, is_encounter_id
from medscribe.domain.clinical_entities import EntitySet, claims_with_entities, entity_set_from_dict
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, utc_now
from medscribe.domain.errors import PermanentError
from medscribe.domain.fhir import ExportSource, document_bundle
from medscribe.domain.fhir_source import entities_key, export_source
from medscribe.domain.note_versions import (
    InvalidEdit,
    NoteVersion,
    VersionState,
    check_amend_reason,
    diff,
    parse_edit,
    pipeline_stub,
    verify,
    version_key,
)
from medscribe.domain.notes import Claim, NoteStatus, Section
from medscribe.domain.transcript_lines import lines_from_json
from medscribe.observability import logger
from medscribe.settings import PipelineSettings

__all__ = ["Actor", "BadRequest", "Conflict", "Forbidden", "NotFound", "NoteSigned", "Page", "StaleVersion",
           "WorkspaceError", "WorkspaceService"]

MAX_PAGE = 200
MAX_CSV_EVENTS = 100_000
# The IAM actions the workspace's own calls need (tests/contract/test_workspace_calls.py maps every call
# the service makes to them and checks them against IAM's action database): table reads and
# transactional writes (the table's key: kms:Decrypt; IAM authorizes each item of a TransactWriteItems
# by its PutItem/UpdateItem action), note objects read and written under SSE-KMS, and s3:ListBucket on
# the artifacts bucket: the FHIR export reads entities/<id>.json, which may not exist, and S3 answers a
# missing key with 404 only to callers that may list the bucket (403 otherwise); s3:DeleteObjectVersion:
# a save that loses the race deletes the object version it wrote (the grant erasure has). `erase` runs the
# erasure service with the same identity, which then also needs erasure.OPERATOR_ACTIONS.
WORKSPACE_ACTIONS = frozenset({
    "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
    "s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObjectVersion", "kms:Decrypt", "kms:GenerateDataKey",
})


class ErasureReport(Protocol):
    erased: list[str]

    def to_json(self) -> dict[str, Any]: ...


class Eraser(Protocol):
    """services.erasure.ErasureService, injected by services/wiring.py."""

    def erase(self, encounter_id: str, today: date, settings: PipelineSettings) -> ErasureReport: ...


class WorkspaceError(Exception):
    """Base of the errors a front end turns into a response."""


class NotFound(WorkspaceError):
    """No such encounter (or no such version)."""


class BadRequest(WorkspaceError):
    """The request is malformed (a bad cursor, date, note or action)."""


class Conflict(WorkspaceError):
    """The request conflicts with the encounter's state."""


class StaleVersion(Conflict):
    def __init__(self, current: int) -> None:
        super().__init__(f"the note is at version {current}; reload and edit that version")
        self.current = current


class NoteSigned(Conflict):
    """A signed version is immutable: edit it with an amendment reason."""


class Forbidden(WorkspaceError):
    """The actor's role may not do this."""


def _checked_since(since: str | None) -> str | None:
    if since is None or since == "":
        return None
    try:
        date.fromisoformat(since[:10])
    except ValueError as exc:
        raise BadRequest("since must be a date (YYYY-MM-DD) or an ISO-8601 UTC time") from exc
    return since if len(since) > 10 else f"{since}T00:00:00.000Z"


def _checked_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def _summary(encounter: Encounter) -> dict[str, Any]:
    return {"encounter_id": encounter.encounter_id, "kind": encounter.kind.value if encounter.kind else None,
            "status": encounter.status.value, "reason": encounter.reason, "source_key": encounter.source_key,
            "created_at": encounter.created_at, "updated_at": encounter.updated_at,
            "duration_seconds": encounter.duration_seconds, "language_code": encounter.language_code,
            "note_engine": encounter.note_engine, "problem_count": encounter.problem_count}


class WorkspaceService:
    def __init__(self, repository: EncounterRepository, store: WorkspaceStore, artifacts: ArtifactStore,
                 scores: ScoreStore, erasure: Callable[[], Eraser], settings: PipelineSettings,
                 *, clock: Callable[[], str] = utc_now) -> None:
        self.repository = repository
        self.store = store
        self.artifacts = artifacts
        self.scores = scores
        self.erasure = erasure  # built on first use: it opens the search index
        self.settings = settings
        self.clock = clock

    # --- reading ----------------------------------------------------------------------------------

    def list_encounters(self, actor: Actor, *, status: str | None = None, since: str | None = None,
                        folder: str | None = None, kind: str | None = None, limit: int = 50,
                        cursor: str | None = None) -> Page:
        """Newest first (see WorkspaceStore.encounters); `since` is a date or an ISO time."""
        try:
            found, after = self.store.encounters(
                status=EncounterStatus(status) if status else None, since=_checked_since(since),
                folder=folder or None, kind=Kind(kind) if kind else None, limit=_checked_limit(limit),
                cursor=cursor or None)
        except BadCursor as exc:
            raise BadRequest(str(exc)) from exc
        except ValueError as exc:  # an unknown status or kind
            raise BadRequest("status or kind is not one of the known values") from exc
        return Page([_summary(e) for e in found], after)

    def encounter(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        """The record, transcript lines (with times where the transcript has them), the current note
        version with its problems, the EMR record, every version, scores, the after-visit summary (None
        before documentation); audited as a view."""
        encounter = self._encounter(encounter_id)
        head = self.store.head(encounter_id)
        base = self._base_note(encounter)
        versions = self._versions(encounter, head) if base is not None else []
        current = next((v for v in versions if v.version == head.current), None)
        note = self._note(base, current) if base is not None and self._is_clinical(encounter) else None
        emr = self._emr(encounter, base)
        entities = self._entities(encounter)
        self._audit(actor, "view", encounter_id, current.version if current else None)
        return {
            "record": asdict(encounter), "lines": self._lines(encounter, base),
            "note": note, "emr": emr, "version": current.to_dict() if current else None,
            "entities": entities.as_dict() if entities is not None else None,
            "claim_entities": claims_with_entities(note, entities),
            "problems": (note or emr or {}).get("problems", []), "signed_version": head.signed,
            "versions": [v.to_dict() for v in versions],
            "scores": [asdict(score) for score in self.scores.scores_of(encounter_id)],
            "summary": self._json(summary_key(encounter_id)),  # the after-visit summary (domain.after_visit)
        }

    def signed_note(self, encounter_id: str) -> dict[str, Any] | None:
        """The signed version (what exports use): its metadata and its note (or EMR record); None when
        no version is signed."""
        encounter = self._encounter(encounter_id)
        head = self.store.head(encounter_id)
        base = self._base_note(encounter)
        if head.signed is None or base is None:
            return None
        version = next(v for v in self._versions(encounter, head) if v.version == head.signed)
        note = self._note(base, version) if self._is_clinical(encounter) else base
        return {"version": version.to_dict(), "note": note}

    def export(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        """The signed version with its note (or EMR record), for a download; Conflict when no version is
        signed. Audited as an export of that version."""
        signed = self.signed_note(encounter_id)
        if signed is None:
            raise Conflict(f"encounter {encounter_id} has no signed version to export: sign a version first")
        version = int(signed["version"]["version"])
        self._audit(actor, "export", encounter_id, version)
        logger.info("signed note exported", extra={"encounter_id": encounter_id, "version": version})
        return {"encounter_id": encounter_id, **signed}

    # --- export -----------------------------------------------------------------------------------

    def export_fhir(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        """The FHIR R4 document Bundle (domain.fhir) of the signed version, else of the current version
        marked preliminary; audited as an export of the version it holds."""
        source = self._export_source(encounter_id)
        self._audit(actor, "export", encounter_id, source.version)
        return document_bundle(source)

    def _export_source(self, encounter_id: str) -> ExportSource:
        encounter = self._encounter(encounter_id)
        base = self._base_note(encounter)
        if base is None:
            raise Conflict(f"encounter {encounter_id} has no note to export yet")
        head = self.store.head(encounter_id)
        number = head.current if head.signed is None else head.signed
        version = next(v for v in self._versions(encounter, head) if v.version == number)
        clinical = self._is_clinical(encounter)
        entities, error = None, None
        try:
            entities = self._json(entities_key(encounter_id))
        except ValueError as exc:  # not JSON
            error = f"the stored coded entities could not be read ({type(exc).__name__})"
        return export_source(encounter, version, self._note(base, version) if clinical else base, clinical=clinical,
                             entities=entities, entities_error=error, artifacts_bucket=self.artifacts.bucket,
                             summary=self._json(summary_key(encounter_id)))

    # --- editing and signing ----------------------------------------------------------------------

    def save_note(self, actor: Actor, encounter_id: str, *, base_version: int, note: dict[str, Any],
                  amend_reason: str | None = None) -> dict[str, Any]:
        """A new version from `base_version` (the current one): parsed against the note's sections,
        compared with the base, its claims verified against the transcript lines; audited as an edit,
        or an amendment when the base is signed."""
        encounter = self._settled(encounter_id)
        base = self._base_note(encounter)
        if base is None or not self._is_clinical(encounter):
            raise Conflict(f"encounter {encounter_id} has no clinical note to edit")
        head = self.store.head(encounter_id)
        if base_version != head.current:
            raise StaleVersion(head.current)
        amending = head.signed == base_version
        try:
            reason = check_amend_reason(amend_reason)
            sections = parse_edit(note, [str(s["name"]) for s in base["sections"]])
        except InvalidEdit as exc:
            raise BadRequest(str(exc)) from exc
        if amending and reason is None:
            raise NoteSigned(f"version {base_version} is signed: an edit needs an amendment reason")
        previous = next(v for v in self._versions(encounter, head) if v.version == base_version)
        lines = {int(line["n"]): str(line["text"]) for line in base["lines"]}
        problems = verify(sections, lines)
        event = self._event(actor, "amend" if amending else "edit", encounter_id, base_version + 1)
        key = version_key(encounter_id, base_version + 1, event.event_id)
        written = self.artifacts.put_json_version(key, {
            "version": base_version + 1, "base_version": base_version, "amend_reason": reason,
            "sections": [s.to_dict() for s in sections], "problems": [p.to_dict() for p in problems],
        })
        version = NoteVersion(
            encounter_id=encounter_id, version=base_version + 1, state=VersionState.DRAFT, actor_id=actor.actor_id,
            role=actor.role, created_at=event.at, base_version=base_version, note_key=key,
            changes=tuple(diff(self._sections(base, previous), sections)), problem_count=len(problems),
            amended=amending)
        if not self.store.add_version(version, event, amending=amending):
            self._discard(key, written, encounter_id)
            self._lost(encounter_id, base_version)
        logger.info("note version saved", extra={"encounter_id": encounter_id, "version": version.version,
                                                  "action": event.action, "problems": len(problems)})
        return {**version.to_dict(), "note": self._note(base, version),
                "problems": [p.to_dict() for p in problems]}

    def sign(self, actor: Actor, encounter_id: str, *, version: int) -> dict[str, Any]:
        """DRAFT -> SIGNED for the current version; audited as a sign."""
        encounter = self._settled(encounter_id)
        base = self._base_note(encounter)
        if base is None:
            raise Conflict(f"encounter {encounter_id} has no note to sign")
        head = self.store.head(encounter_id)
        if version != head.current:
            raise StaleVersion(head.current)
        if head.signed == version:
            raise NoteSigned(f"version {version} is signed already")
        draft = next(v for v in self._versions(encounter, head) if v.version == version)
        event = self._event(actor, "sign", encounter_id, version)
        if not self.store.sign(draft, event):
            self._lost(encounter_id, version)
        logger.info("note version signed", extra={"encounter_id": encounter_id, "version": version})
        signed = self.store.version(encounter_id, version)
        return signed.to_dict() if signed else {}

    def _discard(self, key: str, version_id: str | None, encounter_id: str) -> None:
        """Delete the object a lost save wrote (only after a failed condition: a transaction that may have
        committed keeps its object); should that fail, erasure of the encounter still takes it."""
        try:
            self.artifacts.delete_version(key, version_id)
        except Exception:
            logger.exception("the lost save's note object was not deleted", extra={"encounter_id": encounter_id})

    def _lost(self, encounter_id: str, expected: int) -> None:
        """A write whose condition failed: say why, from the head as it is now."""
        head = self.store.head(encounter_id)
        if head.current == expected and head.signed == expected:
            raise NoteSigned(f"version {expected} was signed meanwhile")
        raise StaleVersion(head.current)

    # --- audit ------------------------------------------------------------------------------------

    def record(self, actor: Actor, action: str, encounter_id: str | None, version: int | None = None) -> None:
        """Record an action a front end performs (upload, play, search)."""
        try:
            self._audit(actor, action, encounter_id, version)
        except InvalidAuditEvent as exc:
            raise BadRequest(str(exc)) from exc

    def audit_for_encounter(self, actor: Actor, encounter_id: str, *, limit: int = 100,
                            cursor: str | None = None) -> Page:
        """The encounter's events, newest first (also after it was erased: the trail stays)."""
        if not is_encounter_id(encounter_id):
            raise NotFound("not an encounter id")
        try:
            return self.store.audit_of_encounter(encounter_id, limit=_checked_limit(limit), cursor=cursor)
        except BadCursor as exc:
            raise BadRequest(str(exc)) from exc

    def audit(self, actor: Actor, *, actor_id: str | None = None, since: str | None = None, limit: int = 100,
              cursor: str | None = None) -> Page:
        """Events newest first, of one actor or of everyone (admins only)."""
        self._admin(actor)
        try:
            if actor_id:
                Actor(actor_id, "clinician")  # the id's pattern
                return self.store.audit_of_actor(actor_id, since=_checked_since(since),
                                                 limit=_checked_limit(limit), cursor=cursor)
            return self.store.audit_of_days(today=date.fromisoformat(self.clock()[:10]), since=_checked_since(since),
                                            limit=_checked_limit(limit), cursor=cursor)
        except (BadCursor, InvalidAuditEvent) as exc:
            raise BadRequest(str(exc)) from exc

    def audit_csv(self, actor: Actor, *, actor_id: str | None = None, since: str | None = None) -> str:
        """Every matching event as CSV (admins only; at most MAX_CSV_EVENTS); audited as an export."""
        self._admin(actor)
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(events) < MAX_CSV_EVENTS:
            page = self.audit(actor, actor_id=actor_id, since=since, limit=MAX_PAGE, cursor=cursor)
            events += page.items
            if page.next is None:
                break
            cursor = page.next
        self._audit(actor, "export", None, None)
        return audit_csv(events[:MAX_CSV_EVENTS])

    # --- erasure ----------------------------------------------------------------------------------

    def erase(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        """The erasure service (admins only): the encounter, its versions and everything it pairs with;
        each erased encounter gets an `erase` event (the trail itself stays: it holds no PHI)."""
        self._admin(actor)
        self._encounter(encounter_id)
        try:
            report = self.erasure().erase(encounter_id, date.fromisoformat(self.clock()[:10]), self.settings)
        except PermanentError as exc:  # refused (one of the family is in flight) or failed for good
            raise Conflict(str(exc)) from exc
        for erased in report.erased:
            self._audit(actor, "erase", erased, None)
        return report.to_json()

    # --- helpers ----------------------------------------------------------------------------------

    def _admin(self, actor: Actor) -> None:
        if not actor.is_admin:
            raise Forbidden("this needs the admin role")

    def _event(self, actor: Actor, action: str, encounter_id: str | None, version: int | None) -> AuditEvent:
        return AuditEvent(at=self.clock(), event_id=uuid.uuid4().hex[:16], actor_id=actor.actor_id, role=actor.role,
                          action=action, encounter_id=encounter_id, version=version)

    def _audit(self, actor: Actor, action: str, encounter_id: str | None, version: int | None) -> None:
        self.store.record(self._event(actor, action, encounter_id, version))

    def _encounter(self, encounter_id: str) -> Encounter:
        encounter = self.repository.get(encounter_id) if is_encounter_id(encounter_id) else None
        if encounter is None:
            raise NotFound("no such encounter")
        return encounter

    def _settled(self, encounter_id: str) -> Encounter:
        """The encounter, when the pipeline is done with it: a note being written again (`medscribe
        reprocess`) is neither edited nor signed until the re-run has finished."""
        encounter = self._encounter(encounter_id)
        if not encounter.is_terminal:
            raise Conflict(f"encounter {encounter_id} is being processed ({encounter.status.value}); "
                           "edit or sign it once it has finished")
        return encounter

    @staticmethod
    def _is_clinical(encounter: Encounter) -> bool:
        return bool(encounter.note_key and encounter.note_key.endswith("/note.json"))

    def _json(self, key: str) -> dict[str, Any] | None:
        text = self.artifacts.get_text(key)
        return json.loads(text) if text is not None else None

    def _entities(self, encounter: Encounter) -> EntitySet | None:
        """The entities stage's coded entities; None before it ran (or when what it stored is unreadable)."""
        if not encounter.entities_key:
            return None
        try:
            stored = self._json(encounter.entities_key)
            return entity_set_from_dict(stored) if stored is not None else None
        except (ValueError, KeyError, TypeError):
            logger.warning("coded entities unreadable", extra={"encounter_id": encounter.encounter_id})
            return None

    def _base_note(self, encounter: Encounter) -> dict[str, Any] | None:
        """Version 0: the note (or EMR record) the pipeline wrote; None before documentation."""
        return self._json(encounter.note_key) if encounter.note_key else None

    def _emr(self, encounter: Encounter, base: dict[str, Any] | None) -> dict[str, Any] | None:
        """The EMR record: the text note's record itself, or a Korean transcript's (written beside its note)."""
        if base is not None and not self._is_clinical(encounter):
            return base
        if encounter.note_key and (encounter.language_code or "").startswith("ko"):
            return self._json(encounter.note_key.rsplit("/", 1)[0] + "/emr.json")
        return None

    def _versions(self, encounter: Encounter, head: NoteHead) -> list[NoteVersion]:
        note_key, problems = encounter.note_key or "", encounter.problem_count or 0
        # the pipeline's live note (version 0, or a re-run's draft, written before its note): the record's problems
        stored = [replace(v, problem_count=problems) if v.note_key == note_key else v
                  for v in self.store.versions(encounter.encounter_id)]
        if stored and stored[0].version == 0:
            return stored
        return [pipeline_stub(encounter.encounter_id, note_key, encounter.updated_at, problems), *stored]

    def _stored(self, version: NoteVersion) -> dict[str, Any]:
        stored = self._json(version.note_key)
        if stored is None:
            raise PermanentError(f"version {version.version} of {version.encounter_id} is missing its note object")
        return stored

    def _sections(self, base: dict[str, Any], version: NoteVersion) -> tuple[Section, ...]:
        data = base if version.version == 0 else self._stored(version)
        return tuple(Section(str(s["name"]), tuple(Claim(str(c["text"]), tuple(int(n) for n in c["lines"]))
                                                   for c in s["items"])) for s in data["sections"])

    def _note(self, base: dict[str, Any], version: NoteVersion | None) -> dict[str, Any]:
        """The note as of `version`: the pipeline's note with that version's sections and problems."""
        if version is None or version.version == 0:
            return {**base, "version": 0}
        stored = self._stored(version)
        status = NoteStatus.NEEDS_REVIEW if stored["problems"] else NoteStatus.DOCUMENTED
        return {**base, "sections": stored["sections"], "problems": stored["problems"], "status": status.value,
                "version": version.version, "amend_reason": stored.get("amend_reason")}

    def _lines(self, encounter: Encounter, base: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The numbered lines with speaker roles (from the note) and start/end times (from the transcript)."""
        timed = {}
        if encounter.transcript_key:
            document = self._json(encounter.transcript_key)
            timed = {line.n: line for line in lines_from_json(document)} if document else {}
        if base is not None and base.get("lines"):
            return [{**line, "start": timed[line["n"]].start if line["n"] in timed else None,
                     "end": timed[line["n"]].end if line["n"] in timed else None} for line in base["lines"]]
        return [{"n": line.n, "speaker": line.speaker, "role": None, "text": line.text, "start": line.start,
                 "end": line.end} for line in timed.values()]
