"""A deliberate re-run of one encounter (`medscribe reprocess <encounter-id> [--discard-edits]`).

An identical re-upload is the existing encounter (services/ingest.py), so running the pipeline
again for the same bytes is asked for by id: the record goes back to RECEIVED with its run number
raised by one (conditionally on the status read, so a second reprocess racing the first changes
nothing), and the encounter is handed to its first stage again:
- audio waits at RECEIVED for a transcription slot: the reconciler's next tick starts its job
  (named `<prefix>-<encounter-id>.run<n>`: job names are unique per account);
- a text note gets a ready-for-documentation event, a ground truth a ready-for-scoring event;
- keywords rest at RECEIVED (self-heal reads them at its next run).
Only finished encounters can be re-run; a REJECTED one cannot (its object was refused: upload a
corrected file instead). Ids only reach logs and events.

Clinician work (domain.note_versions.clinician_work: a version a clinician saved, or a signature) is
never replaced silently: without `discard_edits` the re-run is refused (`ClinicianWork`). With it, once
the record is restarted (from then on the workspace neither edits nor signs it until the re-run has
finished), the work is superseded, not deleted: the pipeline's previous note is copied to its own
version object (the re-run overwrites the note's key), the re-run's note becomes a new unsigned DRAFT
after every existing version, the head loses its signature, and the actor's `reprocess` event is in the
audit trail; every earlier version, signed ones included, stays in the history.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.events import EventPublisher
from medscribe.adapters.workspace_store import WorkspaceStore
from medscribe.domain.audit import Actor, AuditEvent
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, is_terminal, utc_now
from medscribe.domain.errors import PermanentError
from medscribe.domain.note_versions import (
    clinician_work,
    pipeline_stub,
    pipeline_version,
    superseding,
    version_key,
)
from medscribe.observability import logger

# `medscribe reprocess [--aws]` is an operator action (no function runs it): the IAM actions the operator's
# identity needs (README "PHI: where it lives, and erasure" lists them beside erasure's);
# tests/contract/test_reprocess_operator.py maps every call the service makes to one of them and checks
# each against IAM's action database. The table (records, the note head, versions, audit items: a
# TransactWriteItems is authorized per item as PutItem/UpdateItem), the previous note copied under SSE-KMS
# (a copy that loses the race deleted by version id), and the default bus's ready events.
OPERATOR_ACTIONS = frozenset({
    "cloudformation:DescribeStacks",
    "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
    "s3:GetObject", "s3:PutObject", "s3:DeleteObjectVersion", "kms:Decrypt", "kms:GenerateDataKey",
    "events:PutEvents",
})
SUPERSEDE_ATTEMPTS = 3  # a save that read the head before the restart may still land once


class ReprocessRefused(Exception):
    """The encounter cannot be re-run (unknown, still in progress, or rejected); the message says why."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


class ClinicianWork(ReprocessRefused):
    """A clinician saved or signed a version of the note: a re-run needs `discard_edits`."""


class ReprocessService:
    def __init__(self, repository: EncounterRepository, events: EventPublisher, notes: WorkspaceStore,
                 artifacts: ArtifactStore, *, clock: Callable[[], str] = utc_now) -> None:
        self.repository = repository
        self.events = events
        self.notes = notes
        self.artifacts = artifacts
        self.clock = clock

    def reprocess(self, encounter_id: str, actor: Actor, *, discard_edits: bool = False) -> Encounter:
        """Start the pipeline again for `encounter_id` on behalf of `actor`; returns the record as restarted."""
        encounter = self.repository.get(encounter_id)
        if encounter is None:
            raise ReprocessRefused(f"no encounter with id {encounter_id!r}", unknown=True)
        if encounter.status is EncounterStatus.REJECTED:
            raise ReprocessRefused(f"{encounter_id} was REJECTED ({encounter.reason}); its object cannot be "
                                   "processed: upload a corrected file instead")
        if not is_terminal(encounter.status, encounter.kind):
            raise ReprocessRefused(f"{encounter_id} is still in progress ({encounter.status.value}); "
                                   "reprocess it once it has finished")
        work = self._work(encounter)
        if work is not None and not discard_edits:
            raise ClinicianWork(f"{encounter_id} has clinician work on its note ({work}); a re-run would replace "
                                "that note: pass --discard-edits to re-run it anyway (the versions stay in the "
                                "history, the re-run's note becomes a new unsigned draft)")
        restarted = self.repository.restart(encounter)
        if restarted is None:
            raise ReprocessRefused(f"{encounter_id} changed while it was being restarted; try again")
        superseded = self._supersede(encounter, actor)
        if restarted.kind is Kind.TEXT:
            self.events.ready_for_documentation(encounter_id)
        elif restarted.kind is Kind.GROUND_TRUTH:
            self.events.ready_for_scoring(encounter_id)
        logger.info("reprocess requested", extra={"encounter_id": encounter_id, "run": restarted.run,
                                                  "kind": restarted.kind, "superseded_version": superseded})
        return restarted

    def _work(self, encounter: Encounter) -> str | None:
        if not encounter.note_key:
            return None
        head = self.notes.head(encounter.encounter_id)
        if head.current == 0 and head.signed is None:
            return None
        return clinician_work(self.notes.versions(encounter.encounter_id), head.current, head.signed,
                              encounter.note_key)

    def _supersede(self, encounter: Encounter, actor: Actor) -> int | None:
        """Supersede whatever clinician work the head names now (a save may have landed since the check:
        nothing is lost either way); the version that was current, or None when there was no work."""
        note_key = encounter.note_key
        if not note_key:
            return None
        for _ in range(SUPERSEDE_ATTEMPTS):
            head = self.notes.head(encounter.encounter_id)
            versions = self.notes.versions(encounter.encounter_id)
            if clinician_work(versions, head.current, head.signed, note_key) is None:
                return None
            if not versions or versions[0].version != 0:
                versions = [pipeline_stub(encounter.encounter_id, note_key, encounter.updated_at,
                                          encounter.problem_count or 0), *versions]
            event = AuditEvent(at=self.clock(), event_id=uuid.uuid4().hex[:16], actor_id=actor.actor_id,
                               role=actor.role, action="reprocess", encounter_id=encounter.encounter_id,
                               version=head.current + 1)
            archive_key = version_key(encounter.encounter_id, pipeline_version(versions, note_key), event.event_id)
            records = superseding(versions, head.current, note_key, archive_key=archive_key, at=event.at)
            previous = self.artifacts.get_text(note_key)
            if previous is None:
                raise PermanentError(f"the note of {encounter.encounter_id} is missing: nothing was superseded")
            written = self.artifacts.put_version(archive_key, previous.encode("utf-8"), "application/json")
            if self.notes.supersede(head, records.archived, records.draft, event):
                logger.info("clinician work superseded", extra={
                    "encounter_id": encounter.encounter_id, "version": head.current, "draft": records.draft.version})
                return head.current
            self.artifacts.delete_version(archive_key, written)  # the head moved: read it again
        raise ReprocessRefused(f"{encounter.encounter_id} was restarted, but its note kept changing; run "
                               "`medscribe reprocess` again once it has finished")

