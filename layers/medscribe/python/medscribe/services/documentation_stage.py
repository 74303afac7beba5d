"""The documentation stage: an encounter ready for documentation becomes a note or an EMR record.

- audio, TRANSCRIBED: the numbered lines -> a clinical note (the upload's template) with verified
  citations; Korean transcripts are also structured into the EMR schema.
- text, RECEIVED: a speaker-prefixed dialogue -> a clinical note; any other note -> the EMR schema.
Both end DOCUMENTED, or NEEDS_REVIEW with the problems listed; the transcript is always kept. Then
"Encounter Ready For Entities" goes to the entities stage (unless `entity_engine` is off).
Outputs in the artifacts bucket: notes/<id>/note.json (or emr.json), notes/<id>/summary.json (the
after-visit summary, domain.after_visit) and notes/<id>/review.html.

The after-visit summary is written after the note, in the encounter's language (the transcript's
language code; a text upload's detected language), by the note's model (one more forced-tool Converse
request with Bedrock) or offline. It never decides the encounter's status: its problems make the
summary NEEDS_REVIEW (its own `status`), and a summary that cannot be written at all (a model error,
even after the adapter's retries) is stored as a NEEDS_REVIEW summary saying so, while the note is
recorded as it would have been; `medscribe reprocess` writes both again.

The language is the transcript's (the job's language code) for a recording, and for a text note the
one the upload chose (its key or tag, recorded by ingest), else the text's own: the EMR prompt and a
model's note prompt follow it (items in Korean for Korean, field and section names as given).
The note template is the one the upload chose (recorded by ingest), else `note_template`. Prompts and
templates are read from the artifacts bucket's config/ prefix when present (config/prompts/<name>.txt,
config/templates/<name>.json, which may also be a custom template of a new name), so they change
without a redeploy. A template that is neither in the catalogue nor in config/templates/, or that is
not valid template JSON, ends the encounter FAILED with the reason `template_unknown: ...` or
`template_invalid: ...` (what is wrong, never transcript text); fix it and `medscribe reprocess`.
Idempotent: only an encounter in the expected status moves (conditional transition); outputs are
written to fixed keys before the transition, so a retry rewrites the same objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.events import EventPublisher
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.after_visit import AfterVisitSummary, failed_summary, write_summary
from medscribe.domain.claim_judge import with_judgement
from medscribe.domain.dialogue import dialogue_lines, looks_like_dialogue
from medscribe.domain.emr_structuring import note_language, structure_note
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.domain.llm import LanguageModel
from medscribe.domain.note_writing import PROMPT_NAMES, write_note
from medscribe.domain.notes import Note, NoteStatus, TemplateError, catalogue_name, note_keys, override_names
from medscribe.domain.transcript_lines import Line, lines_from_json, note_text_lines
from medscribe.metric_names import DOCUMENTATION_FAILED, outcome_metric
from medscribe.observability import logger, metrics
from medscribe.review.page import emr_only_note, render_review_page
from medscribe.settings import PipelineSettings

TEMPLATE_CONFIG_PREFIX = "config/templates/"
# Reason codes of an encounter whose note template cannot be used (FAILED: retrying cannot help).
TEMPLATE_UNKNOWN = "template_unknown"
TEMPLATE_INVALID = "template_invalid"


class DocumentationStage:
    def __init__(self, repository: EncounterRepository, artifacts: ArtifactStore, objects: ObjectStore,
                 model: Callable[[], LanguageModel | None], settings: PipelineSettings,
                 repair_model: Callable[[], LanguageModel | None] | None = None,
                 judge_model: Callable[[], LanguageModel | None] | None = None,
                 events: EventPublisher | None = None) -> None:
        self.repository = repository
        self.artifacts = artifacts
        self.objects = objects
        self.model = model  # None: the offline engines
        # the repair attempt's model (Bedrock: the long tier, bedrock_long_model_id); default `model`
        self.repair_model = repair_model or model
        self.judge_model = judge_model or (lambda: None)  # the optional model judge (`claim_judge`)
        self.settings = settings
        self.events = events  # "ready for entities" after a note is written (None: no entities stage)

    def document(self, encounter_id: str) -> EncounterStatus | None:
        encounter = self.repository.get(encounter_id)
        if encounter is None:
            logger.info("ignored unknown encounter")
            return None
        waiting = (encounter.kind is Kind.AUDIO and encounter.status is EncounterStatus.TRANSCRIBED) or (
            encounter.kind is Kind.TEXT and encounter.status is EncounterStatus.RECEIVED)
        if waiting:
            try:
                if encounter.kind is Kind.AUDIO:
                    return self._document_transcript(encounter)
                return self._document_text(encounter)
            except PermanentError as exc:  # retrying cannot help: end with a clear status, not in a DLQ
                reason = f"documentation failed: {exc}"
                if self.repository.transition(encounter_id, encounter.status, EncounterStatus.FAILED, reason=reason):
                    logger.warning("documentation failed", extra={"encounter_id": encounter_id})
                    metrics.add_metric(name=DOCUMENTATION_FAILED, unit=MetricUnit.Count, value=1)
                return EncounterStatus.FAILED
        logger.info("encounter not waiting for documentation", extra={"encounter_id": encounter_id,
                                                                      "status": encounter.status})
        return None

    def _prompt_overrides(self) -> dict[str, str]:
        return {name: text for name in PROMPT_NAMES
                if (text := self.artifacts.get_text(f"config/prompts/{name}.txt")) is not None}

    def _template_override(self, template: str) -> tuple[str, str | None]:
        """The key and JSON of the config/templates/ file for `template` (or one of its other names), no
        JSON when the catalogue's own applies; raises PermanentError for a name that is neither."""
        for name in override_names(template):
            key = f"{TEMPLATE_CONFIG_PREFIX}{name}.json"
            text = self.artifacts.get_text(key)
            if text is not None:
                return key, text
        if catalogue_name(template) is None:
            raise PermanentError(f"{TEMPLATE_UNKNOWN}: no note template {template!r} in the catalogue or in "
                                 f"{TEMPLATE_CONFIG_PREFIX}")
        return f"templates/{catalogue_name(template)}.json (shipped)", None

    def _document_transcript(self, encounter: Encounter) -> EncounterStatus | None:
        lines = lines_from_json(self.artifacts.get_json(encounter.transcript_key or ""))
        emr = None
        if (encounter.language_code or "").startswith("ko"):
            emr = structure_note("\n".join(line.text for line in lines), "ko", self.model(),
                                 repair_model=self.repair_model())
        return self._write(encounter, EncounterStatus.TRANSCRIBED, lines, emr, language=encounter.language_code or "")

    def _document_text(self, encounter: Encounter) -> EncounterStatus | None:
        ref = ObjectRef(bucket=encounter.source_bucket, key=encounter.source_key, size=encounter.size,
                        version_id=None if encounter.revision == "unversioned" else encounter.revision)
        text = self.objects.read(ref, self.settings.text_max_bytes).decode("utf-8-sig")
        language = note_language(text, encounter.language)  # the upload's choice, else the text's own
        if looks_like_dialogue(text):
            return self._write(encounter, EncounterStatus.RECEIVED, dialogue_lines(text), None, language=language)
        emr = structure_note(text, language, self.model(), repair_model=self.repair_model())
        return self._write(encounter, EncounterStatus.RECEIVED, None, emr, language=language,
                           text_lines=note_text_lines(text))

    def _summary(self, encounter_id: str, lines: list[Line], language: str, note: Note | None,
                 emr_json: dict[str, Any] | None) -> AfterVisitSummary:
        """The after-visit summary; a summary that cannot be written is one for review, never a failed note."""
        model = self.model()
        try:
            return write_summary(lines, language, note=note, model=model,
                                 emr_record=(emr_json or {}).get("record") if note is None else None)
        except (PermanentError, TransientError, TemplateError) as exc:
            logger.warning("after-visit summary not written", extra={"encounter_id": encounter_id,
                                                                     "error": type(exc).__name__})
            return failed_summary(language, model.engine if model else "offline", type(exc).__name__)

    def _write(self, encounter: Encounter, from_status: EncounterStatus, lines: list[Line] | None,
               emr: Any, *, language: str, text_lines: list[Line] | None = None) -> EncounterStatus | None:
        keys = note_keys(encounter.encounter_id)
        note_json: dict[str, Any] = {"template": None, "engine": emr.engine if emr else "offline",
                                     "lines": [], "sections": [], "problems": [], "status": "DOCUMENTED"}
        statuses: list[str] = []
        engine = None
        note: Note | None = None
        if lines is not None:
            template = encounter.note_template or self.settings.note_template
            template_source, template_override = self._template_override(template)
            model = self.model()
            try:
                note = write_note(lines, template=template, engine=model, repair_engine=self.repair_model(),
                                  template_override=template_override, prompt_overrides=self._prompt_overrides(),
                                  language=language)
            except TemplateError as exc:  # a custom template that is not template JSON: fix it, then reprocess
                raise PermanentError(f"{TEMPLATE_INVALID}: {template_source}: {exc}") from exc
            note = with_judgement(note, self.judge_model())
            note_json = note.to_dict()
            self.artifacts.put_json(keys["note"], note_json)
            statuses.append(str(note.status))
            engine = note.engine
        emr_json = None
        if emr is not None:
            emr_json = emr.to_dict()
            self.artifacts.put_json(keys["emr"], emr_json)
            statuses.append(str(emr.status))
            engine = engine or emr.engine
            if lines is None:
                note_json = emr_only_note(emr_json)
        summary = self._summary(encounter.encounter_id, lines if lines is not None else text_lines or [], language,
                                note, emr_json).to_dict()
        self.artifacts.put_json(keys["summary"], summary)
        page = render_review_page(note_json, encounter_id=encounter.encounter_id,
                                  title=f"Encounter {encounter.encounter_id}", emr=emr_json, summary=summary)
        self.artifacts.put(keys["review"], page.encode("utf-8"), "text/html; charset=utf-8")
        status = (EncounterStatus.NEEDS_REVIEW if NoteStatus.NEEDS_REVIEW.value in statuses
                  else EncounterStatus.DOCUMENTED)
        problems = len(note_json.get("problems", [])) + (len(emr_json.get("problems", [])) if emr_json and lines else 0)
        moved = self.repository.transition(
            encounter.encounter_id, from_status, status,
            note_key=keys["note"] if lines is not None else keys["emr"], review_key=keys["review"],
            note_engine=engine, problem_count=problems,
        )
        if not moved:
            logger.info("documentation already recorded", extra={"encounter_id": encounter.encounter_id})
            return None
        logger.info("documented", extra={"encounter_id": encounter.encounter_id, "status": status,
                                         "engine": engine, "problems": problems, "summary": summary["status"],
                                         "summary_problems": len(summary["problems"])})
        metrics.add_metric(name=outcome_metric(status), unit=MetricUnit.Count, value=1)
        if self.events is not None and self.settings.entity_engine != "off":
            # after the transition: if this put fails, the retry finds the note recorded and the
            # reconciler re-sends the event for documented encounters without entities
            self.events.ready_for_entities(encounter.encounter_id)
        return status
