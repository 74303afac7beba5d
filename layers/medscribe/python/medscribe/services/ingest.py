"""Ingest: turn one uploaded object into an encounter record (RECEIVED or REJECTED with a reason).

Idempotent: the encounter id is derived from bucket, key and revision, and the record is created
with a conditional write, so a repeated event changes nothing. Events older than one already
processed for the same key (by S3 sequencer) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.encounters import EncounterRepository, EventOrder
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef, kind_of
from medscribe.domain.errors import PermanentError
from medscribe.domain.validation import HEADER_BYTES, MP4_FORMATS, NO_AUDIO_STREAM, Verdict, mp4_has_audio, validate
from medscribe.observability import logger, metrics
from medscribe.settings import PipelineSettings


class Outcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    encounter_id: str | None = None
    status: EncounterStatus | None = None


class IngestService:
    def __init__(self, repository: EncounterRepository, objects: ObjectStore, settings: PipelineSettings,
                 on_audio_received: Callable[[Encounter], object] | None = None,
                 on_text_received: Callable[[Encounter], object] | None = None,
                 on_ground_truth_received: Callable[[Encounter], object] | None = None) -> None:
        self.repository = repository
        self.objects = objects
        self.settings = settings
        self.on_audio_received = on_audio_received
        self.on_text_received = on_text_received
        self.on_ground_truth_received = on_ground_truth_received

    def ingest(self, ref: ObjectRef) -> IngestResult:
        if ref.is_folder_marker:
            logger.info("ignored folder marker", extra={"size": ref.size})
            metrics.add_metric(name="IgnoredObjects", unit=MetricUnit.Count, value=1)
            return IngestResult(Outcome.IGNORED)

        order = self.repository.order_event(ref)
        if order is EventOrder.STALE:
            logger.info("ignored stale event", extra={"encounter_id": ref.encounter_id})
            metrics.add_metric(name="StaleEvents", unit=MetricUnit.Count, value=1)
            return IngestResult(Outcome.STALE, ref.encounter_id)

        existing = self.repository.get(ref.encounter_id) if order is EventOrder.REPEAT else None
        encounter = existing or self._evaluate(ref)
        created = existing is None and self.repository.create(encounter)
        outcome = Outcome.CREATED if created else Outcome.DUPLICATE
        logger.info(
            "ingested",
            extra={"encounter_id": encounter.encounter_id, "kind": encounter.kind, "status": encounter.status,
                   "outcome": outcome, "size": ref.size},
        )
        if created:
            metrics.add_metric(name=f"Encounters{encounter.status.title()}", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
        # also on duplicates: a crash between the record and the job start is healed by redelivery
        if encounter.status is EncounterStatus.RECEIVED:
            if encounter.kind is Kind.AUDIO and self.on_audio_received:
                self.on_audio_received(encounter)
            elif encounter.kind is Kind.TEXT and self.on_text_received:
                self.on_text_received(encounter)
            elif encounter.kind is Kind.GROUND_TRUTH and self.on_ground_truth_received:
                self.on_ground_truth_received(encounter)
        return IngestResult(outcome, encounter.encounter_id, encounter.status)

    def _evaluate(self, ref: ObjectRef) -> Encounter:
        kind = kind_of(ref.key)
        if kind is None:
            return Encounter.from_ref(ref, None, EncounterStatus.REJECTED, reason="key is outside the input prefixes")
        if ref.size == 0:
            return Encounter.from_ref(ref, kind, EncounterStatus.REJECTED, reason="object is empty (0 bytes)")
        limit = HEADER_BYTES if kind is Kind.AUDIO else self.settings.text_max_bytes
        try:
            data = self.objects.read(ref, limit) if ref.size <= self._size_limit(kind) else b""
        except PermanentError as exc:
            return Encounter.from_ref(ref, kind, EncounterStatus.REJECTED, reason=str(exc))
        verdict = validate(
            ref, kind, data, audio_max_bytes=self.settings.audio_max_bytes,
            audio_min_seconds=self.settings.audio_min_seconds, text_max_bytes=self.settings.text_max_bytes,
        )
        if verdict.accepted and verdict.media_format in MP4_FORMATS:
            try:  # a video-only recording: rejected with the real reason, not a later format failure
                if mp4_has_audio(lambda start, length: self.objects.read(ref, length, start), ref.size) is False:
                    verdict = Verdict.reject(NO_AUDIO_STREAM)
            except PermanentError as exc:
                verdict = Verdict.reject(str(exc))
        status = EncounterStatus.RECEIVED if verdict.accepted else EncounterStatus.REJECTED
        return Encounter.from_ref(
            ref, kind, status, reason=verdict.reason, media_format=verdict.media_format,
            duration_seconds=verdict.duration_seconds,
        )

    def _size_limit(self, kind: Kind) -> int:
        return self.settings.audio_max_bytes if kind is Kind.AUDIO else self.settings.text_max_bytes
