"""A deliberate re-run of one encounter (`medscribe reprocess <encounter-id>`).

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
"""

from __future__ import annotations

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.events import EventPublisher
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, is_terminal
from medscribe.observability import logger


class ReprocessRefused(Exception):
    """The encounter cannot be re-run (unknown, still in progress, or rejected); the message says why."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


class ReprocessService:
    def __init__(self, repository: EncounterRepository, events: EventPublisher) -> None:
        self.repository = repository
        self.events = events

    def reprocess(self, encounter_id: str) -> Encounter:
        """Start the pipeline again for `encounter_id`; returns the record as restarted."""
        encounter = self.repository.get(encounter_id)
        if encounter is None:
            raise ReprocessRefused(f"no encounter with id {encounter_id!r}", unknown=True)
        if encounter.status is EncounterStatus.REJECTED:
            raise ReprocessRefused(f"{encounter_id} was REJECTED ({encounter.reason}); its object cannot be "
                                   "processed: upload a corrected file instead")
        if not is_terminal(encounter.status, encounter.kind):
            raise ReprocessRefused(f"{encounter_id} is still in progress ({encounter.status.value}); "
                                   "reprocess it once it has finished")
        restarted = self.repository.restart(encounter)
        if restarted is None:
            raise ReprocessRefused(f"{encounter_id} changed while it was being restarted; try again")
        if restarted.kind is Kind.TEXT:
            self.events.ready_for_documentation(encounter_id)
        elif restarted.kind is Kind.GROUND_TRUTH:
            self.events.ready_for_scoring(encounter_id)
        logger.info("reprocess requested", extra={"encounter_id": encounter_id, "run": restarted.run,
                                                  "kind": restarted.kind})
        return restarted
