"""Transcription: start jobs within the slot cap, complete them, and recover stuck ones.

State machine (audio):  RECEIVED --slot--> TRANSCRIBING --job COMPLETED--> TRANSCRIBED
                                                        --job FAILED / bad request--> FAILED
A slot is held exactly while an encounter is TRANSCRIBING (medscribe.adapters.encounters), so
concurrent jobs never exceed `max_concurrent_transcriptions`. Work that finds every slot taken stays
RECEIVED (nothing is lost, nothing is retried into a dead-letter queue) and is started when a
slot is released (`start_waiting`) or by the reconciler.

Idempotent: job names derive from the encounter id; a start that conflicts reads the existing job;
completing an encounter that is no longer TRANSCRIBING changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import Acquire, EncounterRepository
from medscribe.adapters.events import EventPublisher
from medscribe.adapters.notifications import Notifier
from medscribe.adapters.transcribe_jobs import JobRequest, JobState, TranscribeJobs, job_is_medical, job_request
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind
from medscribe.domain.errors import PermanentError
from medscribe.domain.selfheal import model_name
from medscribe.domain.transcribe_naming import TranscriptKeys, encounter_of_job, job_name, safe_reason
from medscribe.domain.transcript_lines import parse_transcribe_output
from medscribe.metric_names import TRANSCRIPTIONS_FAILED
from medscribe.observability import logger, metrics
from medscribe.settings import FunctionSettings


@dataclass
class ReconcileReport:
    checked: int = 0
    completed: int = 0
    restarted: int = 0
    started_waiting: int = 0
    redelivered: int = 0
    entities_redelivered: int = 0
    errors: int = 0
    still_running: list[str] = field(default_factory=list)


class TranscriptionService:
    def __init__(self, repository: EncounterRepository, jobs: TranscribeJobs, artifacts: ArtifactStore,
                 notifier: Notifier, settings: FunctionSettings, events: EventPublisher,
                 active_model: Callable[[], tuple[str | None, str | None] | None] | None = None) -> None:
        self.events = events
        # (vocabulary, language model) the self-heal loop promoted; None: the settings' names
        self.active_model = active_model
        self.repository = repository
        self.jobs = jobs
        self.artifacts = artifacts
        self.notifier = notifier
        self.settings = settings
        self.pipeline = settings.pipeline

    # -- starting -------------------------------------------------------------------------------

    def request(self, encounter: Encounter) -> Acquire:
        """Take a slot and start the job, or leave the encounter RECEIVED when every slot is taken."""
        name = job_name(self.pipeline.prefix, encounter.encounter_id, encounter.run)
        outcome = self.repository.acquire_slot(
            encounter.encounter_id, cap=self.pipeline.max_concurrent_transcriptions, job_name=name,
        )
        if outcome is Acquire.AT_CAPACITY:
            logger.info("transcription slots full; encounter waits", extra={"encounter_id": encounter.encounter_id})
            metrics.add_metric(name="TranscriptionsWaiting", unit=MetricUnit.Count, value=1)
        elif outcome is Acquire.ACQUIRED:
            self._start(encounter, name)
        else:
            current = self.repository.get(encounter.encounter_id)
            if current is not None and current.status is EncounterStatus.TRANSCRIBING:
                self._start(current, current.job_name or name)  # e.g. a crash after the slot was taken
        return outcome

    def _request_for(self, encounter: Encounter, name: str) -> JobRequest:
        active = self.active_model() if self.active_model else None
        vocabulary, language_model = active or (self.pipeline.vocabulary_name, self.pipeline.language_model_name)
        return job_request(self.settings, encounter, name, TranscriptKeys(encounter.encounter_id).transcribe_output,
                           vocabulary=vocabulary, language_model=language_model)

    def _start(self, encounter: Encounter, name: str) -> None:
        try:
            state = self.jobs.start(self._request_for(encounter, name))
        except PermanentError as exc:
            self._fail(encounter.encounter_id, f"transcription request rejected: {exc}")
            return
        logger.info("transcription job started", extra={"encounter_id": encounter.encounter_id,
                                                          "job_name": name, "job_status": state.status})
        metrics.add_metric(name="TranscriptionsStarted", unit=MetricUnit.Count, value=1)
        # A conflicting job that had already finished was (or will be) completed by its state-change
        # event or by the reconciler; ingest does not carry the artifact libraries to do it here.

    def start_waiting(self, limit: int = 10) -> int:
        """Start RECEIVED audio encounters, oldest first, until the slots are full."""
        started = 0
        for encounter in self.repository.oldest(EncounterStatus.RECEIVED, kind=Kind.AUDIO, limit=limit):
            outcome = self.request(encounter)
            if outcome is Acquire.AT_CAPACITY:
                break
            started += outcome is Acquire.ACQUIRED
        return started

    # -- completing -----------------------------------------------------------------------------

    def complete_job(self, name: str) -> bool:
        """Handle a job state change for `name`; False when the job is not one of this stage's."""
        encounter_id = encounter_of_job(self.pipeline.prefix, name)
        if encounter_id is None:
            logger.info("ignored job of another stage or system")
            return False
        encounter = self.repository.get(encounter_id)
        if encounter is None or encounter.status is not EncounterStatus.TRANSCRIBING:
            logger.info("job already handled", extra={"encounter_id": encounter_id})  # a repeated event
        else:
            state = self.jobs.get(name, medical=job_is_medical(self.settings, encounter))
            if state.finished:
                self._finish(encounter_id, state)
        self.start_waiting()
        return True

    def _finish(self, encounter_id: str, state: JobState) -> None:
        encounter = self.repository.get(encounter_id)
        if encounter is None or encounter.status is not EncounterStatus.TRANSCRIBING:
            logger.info("job already handled", extra={"encounter_id": encounter_id})
            return
        if state.status == "FAILED":
            self._fail(encounter_id, state.failure_reason or "transcription job failed")
            return
        keys = TranscriptKeys(encounter_id)
        try:
            document = self.artifacts.get_json(keys.transcribe_output)
            lines = parse_transcribe_output(document)
        except (PermanentError, ValueError) as exc:
            self._fail(encounter_id, f"transcript unreadable: {exc}")
            return
        self.artifacts.put_json(keys.lines, {
            "encounter_id": encounter_id, "job_name": state.name, "language_code": state.language_code,
            "attribution": document.get("results", {}).get("medscribe_attribution", "amazon-transcribe"),
            "lines": [line.as_dict() for line in lines],
        })
        from medscribe.adapters import tscribe_files  # heavy (pandas): only this path needs it

        rendered = tscribe_files.render(document)
        artifacts = {"transcribe": keys.transcribe_output, "lines": keys.lines, "csv": keys.csv}
        self.artifacts.put(keys.csv, rendered["csv"], "text/csv")
        if "docx" in rendered:
            self.artifacts.put(keys.docx, rendered["docx"],
                               "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
            artifacts["docx"] = keys.docx
        finished = self.repository.finish_transcription(
            encounter_id, EncounterStatus.TRANSCRIBED,
            transcript_key=keys.lines,
            artifacts=artifacts,
            line_count=len(lines), speakers=len({line.speaker for line in lines}),
            language_code=state.language_code,
            model=model_name(state.vocabulary_name, state.language_model_name),
        )
        if finished:
            logger.info("transcribed", extra={"encounter_id": encounter_id, "lines": len(lines)})
            metrics.add_metric(name="EncountersTranscribed", unit=MetricUnit.Count, value=1)
            self.events.ready_for_documentation(encounter_id)
            self.events.ready_for_scoring(encounter_id)

    def _fail(self, encounter_id: str, reason: str) -> None:
        if not self.repository.finish_transcription(encounter_id, EncounterStatus.FAILED, reason=reason):
            return
        logger.warning("transcription failed", extra={"encounter_id": encounter_id, "reason": safe_reason(reason)})
        metrics.add_metric(name=TRANSCRIPTIONS_FAILED, unit=MetricUnit.Count, value=1)
        self.notifier.publish(
            f"medscribe {self.pipeline.stage}: transcription FAILED for {encounter_id}",
            [f"Encounter {encounter_id} could not be transcribed.", f"Reason: {safe_reason(reason)}",
             "Inspect it with `medscribe show <encounter-id>` or the encounters table."],
            {"encounter_id": encounter_id, "status": EncounterStatus.FAILED.value, "stage": self.pipeline.stage},
        )

    # -- reconciling ----------------------------------------------------------------------------

    def _reconcile_one(self, encounter: Encounter, report: ReconcileReport) -> None:
        name = encounter.job_name or job_name(self.pipeline.prefix, encounter.encounter_id, encounter.run)
        state = self.jobs.get(name, medical=job_is_medical(self.settings, encounter))
        if state.finished:
            self._finish(encounter.encounter_id, state)
            report.completed += 1
        elif state.status == "NOT_FOUND":
            self._start(encounter, name)
            report.restarted += 1
        else:
            report.still_running.append(encounter.encounter_id)

    def reconcile(self, now: datetime | None = None, *, stuck_after_seconds: int | None = None) -> ReconcileReport:
        """Drive encounters stuck in TRANSCRIBING (lost completion events, crashed starts)."""
        report = ReconcileReport()
        age = stuck_after_seconds if stuck_after_seconds is not None else self.pipeline.stuck_after_seconds
        cutoff = ((now or datetime.now(UTC)) - timedelta(seconds=age)).isoformat(timespec="milliseconds")
        cutoff = cutoff.replace("+00:00", "Z")
        for encounter in self.repository.oldest(EncounterStatus.TRANSCRIBING, updated_before=cutoff, limit=100):
            report.checked += 1
            try:
                self._reconcile_one(encounter, report)
            except Exception:  # one bad encounter must not stall the others; it is retried next run
                report.errors += 1
                logger.exception("reconciling an encounter failed", extra={"encounter_id": encounter.encounter_id})
        report.started_waiting = self.start_waiting()
        # lost "ready for documentation" events: transcribed audio and received text notes that waited
        for status, kind in ((EncounterStatus.TRANSCRIBED, Kind.AUDIO), (EncounterStatus.RECEIVED, Kind.TEXT)):
            for encounter in self.repository.oldest(status, updated_before=cutoff, kind=kind, limit=100):
                self.events.ready_for_documentation(encounter.encounter_id)
                report.redelivered += 1
        self._redeliver_entities(now, cutoff, report)
        logger.info("reconciled", extra={"checked": report.checked, "completed": report.completed,
                                         "restarted": report.restarted, "started_waiting": report.started_waiting,
                                         "redelivered": report.redelivered, "errors": report.errors,
                                         "entities_redelivered": report.entities_redelivered})
        if report.completed:
            metrics.add_metric(name="ReconciledEncounters", unit=MetricUnit.Count, value=report.completed)
        return report

    def _redeliver_entities(self, now: datetime | None, cutoff: str, report: ReconcileReport) -> None:
        """Lost "ready for entities" events: documented encounters without entities that were documented
        longer ago than the stuck age, within `entities_reconcile_hours` (nothing when entities are off)."""
        if self.pipeline.entity_engine == "off":
            return
        since = (now or datetime.now(UTC)) - timedelta(hours=self.pipeline.entities_reconcile_hours)
        window_start = since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW):
            for encounter in self.repository.oldest(status, updated_after=window_start, updated_before=cutoff,
                                                    without_entities=True, limit=100):
                self.events.ready_for_entities(encounter.encounter_id)
                report.entities_redelivered += 1
