"""Ingest: turn one uploaded object into an encounter record (RECEIVED or REJECTED with a reason).

Idempotent: the encounter id is derived from bucket, key and revision, and the record is created
with a conditional write, so a repeated event changes nothing. Events older than one already
processed for the same key (by S3 sequencer) are ignored.

The same bytes uploaded again under the same key (a folder run twice) make a new S3 version but
not a new encounter: the content's fingerprint (a checksum S3 keeps, else the ETag; see
ObjectStore.fingerprint) is claimed per key in the table (EncounterRepository.claim_content), and a
revision whose content is already claimed is the claiming encounter (Outcome.SAME_CONTENT): no new
record, job or note. Different bytes under the same key are a new encounter. A deliberate re-run
is `medscribe reprocess <encounter-id>` (services/reprocess.py).

An accepted recording or text note records the note template it asks for (its `medscribe-template`
tag, read with GetObjectTagging, else a `template=<NAME>` key segment; domain.template_choice); a
template name no template can have rejects it. It also records its language (the `medscribe-language`
tag, else the key: `audio/ko-KR/...`, `language=<code>`; domain.language_choice), from the same tag
read; a recording that names none takes the deployment's `language`, a text note keeps None (its text
decides); a language the pipeline does not transcribe rejects it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.encounters import CONTENT_CLAIM_GRACE_SECONDS, EncounterRepository, EventOrder
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef, kind_of
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.domain.language_choice import LanguageChoiceError, choose_language
from medscribe.domain.template_choice import TEMPLATE_KINDS, TemplateChoiceError, choose_template
from medscribe.domain.validation import HEADER_BYTES, MP4_FORMATS, NO_AUDIO_STREAM, Verdict, mp4_has_audio, validate
from medscribe.observability import logger, metrics
from medscribe.settings import PipelineSettings


class Outcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    SAME_CONTENT = "same-content"  # a new revision with the bytes of an earlier one: that encounter
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
        if existing is None:
            earlier = self._same_content(ref)
            if earlier is not None:
                logger.info("same content as an earlier upload of this key", extra={
                    "encounter_id": earlier.encounter_id, "status": earlier.status,
                    "outcome": Outcome.SAME_CONTENT, "size": ref.size})
                metrics.add_metric(name="IdenticalReuploads", unit=MetricUnit.Count, value=1)
                self._continue(earlier)
                return IngestResult(Outcome.SAME_CONTENT, earlier.encounter_id, earlier.status)
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
        self._continue(encounter)
        return IngestResult(outcome, encounter.encounter_id, encounter.status)

    def _continue(self, encounter: Encounter) -> None:
        """Hand a RECEIVED encounter to its next stage. Also on duplicates: a crash between the record
        and the job start is healed by redelivery (each next step is idempotent)."""
        if encounter.status is EncounterStatus.RECEIVED:
            if encounter.kind is Kind.AUDIO and self.on_audio_received:
                self.on_audio_received(encounter)
            elif encounter.kind is Kind.TEXT and self.on_text_received:
                self.on_text_received(encounter)
            elif encounter.kind is Kind.GROUND_TRUTH and self.on_ground_truth_received:
                self.on_ground_truth_received(encounter)

    def _same_content(self, ref: ObjectRef) -> Encounter | None:
        """The earlier encounter of this key holding the same bytes as `ref`, or None when `ref`'s own
        encounter is (or becomes, by this claim) the holder."""
        if kind_of(ref.key) is None:
            return None  # rejected whatever its content
        try:
            fingerprint = self.objects.fingerprint(ref)
        except PermanentError:
            fingerprint = None
        if fingerprint is None:
            return None  # gone or unreadable: _evaluate reads it and rejects it with the reason
        claim = self.repository.claim_content(ref, fingerprint)
        for _ in range(2):
            if claim.encounter_id == ref.encounter_id:
                return None
            earlier = self.repository.get(claim.encounter_id)
            if earlier is not None:
                return earlier
            if _age_seconds(claim.claimed_at) < CONTENT_CLAIM_GRACE_SECONDS:
                # the first upload of these bytes is being ingested right now: ask again later
                raise TransientError("an identical upload of this key is still being ingested")
            # its encounter was erased (or its ingest died for good): this revision takes over
            claim = self.repository.claim_content(ref, fingerprint, replacing=claim.encounter_id)
        raise TransientError("the content claim changed hands while it was read")

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
        template = language = None
        if verdict.accepted and kind in TEMPLATE_KINDS:
            try:  # one GetObjectTagging for both choices
                tags = self.objects.tags(ref)
                template = choose_template(ref.key, tags).name
                language = choose_language(ref.key, tags).language
            except (TemplateChoiceError, LanguageChoiceError, PermanentError) as exc:
                verdict = Verdict.reject(str(exc))
            if kind is Kind.AUDIO and language is None:
                language = self.settings.language.value
        status = EncounterStatus.RECEIVED if verdict.accepted else EncounterStatus.REJECTED
        return Encounter.from_ref(
            ref, kind, status, reason=verdict.reason, media_format=verdict.media_format,
            duration_seconds=verdict.duration_seconds, note_template=template,
            language=language if verdict.accepted else None,
        )

    def _size_limit(self, kind: Kind) -> int:
        return self.settings.audio_max_bytes if kind is Kind.AUDIO else self.settings.text_max_bytes


def _age_seconds(timestamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
