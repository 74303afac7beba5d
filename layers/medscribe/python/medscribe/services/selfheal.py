"""The self-heal loop: missed words -> a candidate model -> evaluation -> leaderboard -> promotion.

One `tick()` per schedule (EventBridge Scheduler in AWS; a timer or `medscribe selfheal` locally)
moves every model one step; nothing waits inside a tick, so the loop survives restarts:

1. **build** (no model in flight): the missed words of the incumbent's scores (the active model, or
   the baseline) -> candidates among them (words of clinical entities by Amazon Comprehend Medical
   where it supports the language; the offline noun heuristic in the local runtime and for Korean)
   -> learned keywords = the candidates that are clinical terms (`ClinicalTermGate`: on the shipped
   term list of the language or in a keywords file, never shaped like a date or identifier; the
   missed words are mostly where names, dates and numbers end up) + the uploaded keywords files
   (keywords/, comma-separated; each read whole up to ingest's `text_max_bytes`, a file that
   cannot be read or decoded skipped alone) -> vocabulary phrases, repeats dropped, at most
   `selfheal_max_keywords`. The candidate is
   named by its phrases, so the same phrases never build twice. Transcribe creates the custom
   vocabulary; where the language has custom language models (and `selfheal_language_model`), it
   also trains one on the keywords plus Wikipedia text per keyword (fetched politely, cached in S3):
   only those vetted terms are ever sent to Wikipedia.
2. **evaluate** (vocabulary READY, language model COMPLETED): every ground-truth recording the
   incumbent was scored on is transcribed again with the candidate (job `<prefix>-eval-...`,
   output under transcripts/selfheal/).
3. **decide** (every evaluation job finished): each transcript is scored like any other; the
   candidate becomes ACTIVE for new jobs only if its mean error rate on the same files beats the
   incumbent's by `selfheal_margin`; otherwise it stays a CANDIDATE on the leaderboard. Either way
   a CSV report and one email (ids, model names, numbers) go out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.customization import QuotaExceeded, TranscribeCustomization
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.adapters.scores import Model, ScoreStore
from medscribe.adapters.transcribe_jobs import TranscribeJobs, job_is_medical, job_request
from medscribe.adapters.wikipedia import WikipediaCorpus
from medscribe.domain.clinical_terms import ClinicalTermGate
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, utc_now
from medscribe.domain.errors import MedscribeError, PermanentError
from medscribe.domain.scoring import fixed_words, score_language
from medscribe.domain.selfheal import (
    BASELINE,
    CLM_TRAINING_PREFIX,
    ModelStatus,
    Pair,
    Scorer,
    ScoreRow,
    candidate_name,
    decide,
    eval_job_name,
    eval_output_key,
)
from medscribe.domain.transcribe_naming import customization_language
from medscribe.domain.transcript_lines import parse_transcribe_output
from medscribe.domain.validation import KEYWORD_EXTENSIONS, validate_text
from medscribe.domain.vocabulary import (
    keyword_entries,
    select_keywords,
    training_text,
    vocabulary_entries,
    vocabulary_table,
)
from medscribe.metric_names import SELFHEAL_MODELS_FAILED, SELFHEAL_QUOTA_REACHED
from medscribe.observability import logger, metrics
from medscribe.settings import FunctionSettings

VOCABULARY_PREFIX = "selfheal/vocabularies"  # the vocabulary tables Transcribe reads (VocabularyFileUri)
QUOTA_REASON = "quota:"  # a FAILED model's reason when Transcribe's account quota stopped its build
MAX_EVALUATION_FILES = 50  # the ground-truth set re-transcribed per candidate
MAX_WIKIPEDIA_TERMS = 40  # articles fetched per language model (politeness and Lambda time)
# The base model of a language model: clinic recordings are 16 kHz or more (WideBand); telephone audio
# (8 kHz) would want NarrowBand.
BASE_MODEL = "WideBand"

Candidates = Callable[[Sequence[str], str], list[str]]  # (missed words, language) -> candidate keywords


@dataclass
class TickReport:
    built: str | None = None
    evaluating: list[str] = field(default_factory=list)
    decided: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    nothing_to_learn: bool = False
    quota_reached: bool = False


class SelfHealService:
    def __init__(self, repository: EncounterRepository, scores: ScoreStore, scoring: Scorer,
                 artifacts: ArtifactStore, objects: ObjectStore, jobs: TranscribeJobs,
                 customization: TranscribeCustomization, candidates: Candidates, corpus: WikipediaCorpus | None,
                 settings: FunctionSettings) -> None:
        self.repository = repository
        self.scores = scores
        self.scoring = scoring
        self.artifacts = artifacts
        self.objects = objects
        self.jobs = jobs
        self.customization = customization
        self.candidates = candidates
        self.corpus = corpus
        self.settings = settings
        self.pipeline = settings.pipeline

    @property
    def medical(self) -> bool:
        return self.pipeline.transcribe_medical

    @property
    def language(self) -> str:
        return customization_language(self.pipeline.language.value)

    def incumbent(self) -> str:
        active = self.scores.active()
        return active.name if active else BASELINE

    def tick(self) -> TickReport:
        report = TickReport()
        in_flight = False
        for model in self.scores.models():
            try:
                if model.status is ModelStatus.BUILDING:
                    in_flight = True
                    self._check_build(model, report)
                elif model.status is ModelStatus.EVALUATING:
                    in_flight = True
                    self._check_evaluation(model, report)
            except PermanentError as exc:
                self.scores.update_model(model.name, model.status, status=ModelStatus.FAILED, reason=str(exc)[:300])
                report.failed.append(model.name)
                logger.warning("self-heal model failed", extra={"model": model.name})
                metrics.add_metric(name=SELFHEAL_MODELS_FAILED, unit=MetricUnit.Count, value=1)
        report.deleted = self._prune()
        if not in_flight:
            try:
                report.built = self._build()
            except QuotaExceeded:
                report.quota_reached = True
            report.nothing_to_learn = report.built is None and not report.quota_reached
        logger.info("self-heal tick", extra={"built": report.built, "evaluating": len(report.evaluating),
                                             "decided": report.decided, "failed": report.failed,
                                             "deleted": len(report.deleted), "quota_reached": report.quota_reached})
        return report

    # --- 1. build ---------------------------------------------------------------------------------

    def evaluation_set(self, model: str) -> list[ScoreRow]:
        return sorted((row for row in self.scores.all_scores() if row.model == model),
                      key=lambda row: row.encounter_id)[:MAX_EVALUATION_FILES]

    def _keyword_files(self) -> tuple[list[list[str]], int]:
        """The entries of each current keywords file and the number of files skipped. A file is read
        whole up to ingest's limit (`text_max_bytes`) and checked as ingest checks it; one that cannot
        be read or decoded is skipped alone, so a bad file never fails the tick."""
        files: list[list[str]] = []
        skipped = 0
        limit = self.pipeline.text_max_bytes
        for encounter in self.repository.list(EncounterStatus.RECEIVED):
            if encounter.kind is not Kind.KEYWORDS:
                continue
            try:
                current = self.objects.latest(encounter.source_bucket, encounter.source_key)
                if current is None or current.encounter_id != encounter.encounter_id:
                    continue  # deleted, or replaced by a newer revision (which has its own record)
                data = self.objects.read(current, limit) if current.size <= limit else b""
            except MedscribeError as exc:
                reason = f"read failed: {type(exc).__name__} {exc}"
            else:
                verdict = validate_text(current, data, allowed=KEYWORD_EXTENSIONS, max_bytes=limit)
                if verdict.accepted:
                    files.append(keyword_entries(data.decode("utf-8-sig")))
                    continue
                reason = verdict.reason or "rejected"
            skipped += 1
            logger.warning("keywords file skipped", extra={"encounter_id": encounter.encounter_id, "reason": reason})
            metrics.add_metric(name="SelfHealKeywordsFilesSkipped", unit=MetricUnit.Count, value=1)
        return files, skipped

    def _build(self) -> str | None:
        incumbent = self.incumbent()
        rows = self.evaluation_set(incumbent)
        if not rows:
            logger.info("no scored ground truth yet: nothing to learn from")
            return None
        missed = [word for row in rows for word in self.scoring.missed_words(row.encounter_id, incumbent)]
        files, skipped = self._keyword_files()
        gate = ClinicalTermGate(self.language, allowed=(term for entries in files for term in entries))
        vetting = gate.vet(self.candidates(missed, self.language) if missed else [])
        learned = vetting.kept
        # learned first: they come from this clinic's own misses; the cap keeps the given list's tail out
        selection = select_keywords([learned, *files], self.pipeline.selfheal_max_keywords)
        terms = selection.terms
        keywords_files = {"files_read": len(files), "files_skipped": skipped, "terms": sum(map(len, files)),
                          "duplicates_dropped": selection.duplicates, "cut_by_cap": selection.cut}
        logger.info("keywords files read", extra=keywords_files)
        logger.info("learned keywords vetted", extra={"learned": len(learned), "not_clinical": vetting.rejected})
        entries = vocabulary_entries(terms, self.language)
        phrases = [phrase for phrase, _display in entries]
        if not phrases:
            logger.info("no keywords to build a vocabulary from")
            return None
        name = candidate_name(self.pipeline.prefix, self.language, phrases)
        existing = self.scores.model(name)
        retry = existing is not None and existing.status is ModelStatus.FAILED \
            and (existing.reason or "").startswith(QUOTA_REASON)
        if existing is not None and not retry:
            logger.info("this vocabulary was built before", extra={"model": name})
            return None
        self.artifacts.put_json(f"selfheal/models/{name}.json", {
            "name": name, "language": self.language, "incumbent": incumbent, "keywords_files": keywords_files,
            "learned_keywords": learned, "learned_not_clinical": vetting.rejected, "phrases": phrases,
            "medical": self.medical,
        })
        table_key = f"{VOCABULARY_PREFIX}/{name}.txt"
        self.artifacts.put(table_key, vocabulary_table(entries).encode("utf-8"), "text/plain; charset=utf-8")
        model = Model(
            name=name, status=ModelStatus.BUILDING, language=self.language, vocabulary_name=name,
            phrases=len(phrases), digest=hashlib.sha256("\n".join(phrases).encode()).hexdigest()[:16],
            medical=self.medical,
        )
        try:
            self.customization.put_vocabulary(name, self.language, f"s3://{self.settings.artifacts_bucket}/{table_key}",
                                              medical=self.medical)
            language_model = self._language_model(name, terms)
        except QuotaExceeded as exc:
            self._record_quota(model, existing, str(exc))
            raise
        model = Model(**{**model.__dict__, "language_model_name": language_model})
        if retry:
            self.scores.update_model(name, ModelStatus.FAILED, status=ModelStatus.BUILDING, reason="", deleted_at="",
                                     language_model_name=language_model)
        else:
            self.scores.put_model(model)
        logger.info("candidate model building", extra={"model": name, "phrases": len(phrases),
                                                       "learned": len(learned),
                                                       "language_model": bool(language_model)})
        metrics.add_metric(name="SelfHealCandidates", unit=MetricUnit.Count, value=1)
        return name

    def _record_quota(self, model: Model, existing: Model | None, message: str) -> None:
        """A build stopped by an account quota: the model is FAILED with the reason (retried by a later
        tick, after `_prune` has freed what it may), never a message for the dead-letter queue."""
        reason = f"{QUOTA_REASON} {message}; delete unused custom vocabularies / language models in this account"
        if existing is None:
            self.scores.put_model(Model(**{**model.__dict__, "status": ModelStatus.FAILED}))
        self.scores.update_model(model.name, ModelStatus.FAILED, reason=reason)
        logger.warning("self-heal build stopped by a Transcribe quota", extra={"model": model.name})
        metrics.add_metric(name=SELFHEAL_QUOTA_REACHED, unit=MetricUnit.Count, value=1)

    # --- housekeeping -------------------------------------------------------------------------------

    def _prune(self) -> list[str]:
        """Delete the Transcribe resources of models nobody will use again, so the account quotas (100
        vocabularies, a handful of language models) never run out: FAILED and RETIRED models, and
        evaluated CANDIDATEs beyond the newest `selfheal_keep_candidates`. The active model and models
        in flight are kept; every record stays on the leaderboard, marked `deleted_at`."""
        models = [model for model in self.scores.models() if model.deleted_at is None]
        candidates = sorted((m for m in models if m.status is ModelStatus.CANDIDATE),
                            key=lambda m: m.created_at, reverse=True)
        retired = {m.name for m in candidates[self.pipeline.selfheal_keep_candidates:]}
        retired |= {m.name for m in models if m.status in (ModelStatus.FAILED, ModelStatus.RETIRED)}
        deleted = []
        for model in models:
            if model.name not in retired:
                continue
            if model.vocabulary_name:
                self.customization.delete_vocabulary(model.vocabulary_name, medical=model.medical)
            if model.language_model_name:
                self.customization.delete_language_model(model.language_model_name)
            self.scores.update_model(model.name, model.status, deleted_at=utc_now())
            deleted.append(model.name)
        if deleted:
            logger.info("retired self-heal resources deleted", extra={"models": deleted})
        return deleted

    def _language_model(self, name: str, terms: list[str]) -> str | None:
        role = self.settings.clm_role_arn
        if not (self.pipeline.selfheal_language_model and role and self.corpus
                and self.customization.supports_language_model(self.language)
                and not self.pipeline.transcribe_medical):
            return None
        documents = {term: self.corpus.text(term, self.language) for term in terms[:MAX_WIKIPEDIA_TERMS]}
        key = f"{CLM_TRAINING_PREFIX}{name}/train.txt"
        self.artifacts.put(key, training_text(terms, documents).encode("utf-8"), "text/plain; charset=utf-8")
        uri = f"s3://{self.settings.artifacts_bucket}/{CLM_TRAINING_PREFIX}{name}/"
        self.customization.create_language_model(name, self.language, BASE_MODEL, uri, role)
        return name

    # --- 2. evaluate --------------------------------------------------------------------------------

    def _check_build(self, model: Model, report: TickReport) -> None:
        state, reason = self.customization.vocabulary_state(model.vocabulary_name or model.name, medical=model.medical)
        if state == "FAILED":
            raise PermanentError(f"vocabulary failed: {reason or 'no reason given'}")
        ready = state == "READY"
        if model.language_model_name:
            lm_state, lm_reason = self.customization.language_model_state(model.language_model_name)
            if lm_state == "FAILED":
                raise PermanentError(f"language model failed: {lm_reason or 'no reason given'}")
            ready = ready and lm_state == "COMPLETED"
        if not ready:
            return
        evaluations = {}
        for row in self.evaluation_set(self.incumbent()):
            audio = self.repository.get(row.encounter_id)
            if audio is None:
                continue
            name = eval_job_name(self.pipeline.prefix, model.name, audio.encounter_id)
            self.jobs.start(job_request(self.settings, audio, name, eval_output_key(model.name, audio.encounter_id),
                                        vocabulary=model.vocabulary_name, language_model=model.language_model_name))
            evaluations[audio.encounter_id] = name
        self.scores.update_model(model.name, ModelStatus.BUILDING, status=ModelStatus.EVALUATING,
                                 evaluations=evaluations)
        report.evaluating.append(model.name)

    def _check_evaluation(self, model: Model, report: TickReport) -> None:
        scored = {row.encounter_id: row for row in self.scores.all_scores() if row.model == model.name}
        pending = 0
        fixed = 0
        for encounter_id, job in model.evaluations.items():
            if encounter_id in scored:
                continue
            audio = self.repository.get(encounter_id)
            state = self.jobs.get(job, medical=job_is_medical(self.settings, audio) if audio
                                  else self.pipeline.transcribe_medical)
            if not state.finished:
                pending += 1
                continue
            if audio is None or state.status == "FAILED":
                logger.warning("evaluation job failed", extra={"encounter_id": encounter_id, "model": model.name})
                continue
            row, fixed_here = self._score_evaluation(model, audio)
            if row is not None:
                scored[encounter_id] = row
                fixed += fixed_here
        if pending:
            report.evaluating.append(model.name)
            return
        self._decide(model, list(scored.values()), fixed)
        report.decided.append(model.name)

    def _score_evaluation(self, model: Model, audio: Encounter) -> tuple[ScoreRow | None, int]:
        document = self.artifacts.get_json(eval_output_key(model.name, audio.encounter_id))
        hypothesis = "\n".join(line.text for line in parse_transcribe_output(document))
        key = self.scoring.ground_truth_of(audio) or ""
        row = self.scoring.score_pair(Pair(audio, key), model=model.name, hypothesis=hypothesis)
        reference = self.scoring.reference(key)
        if row is None or reference is None or not audio.transcript_key:
            return row, 0
        baseline = self.scoring.hypothesis(audio)
        return row, len(fixed_words(reference, baseline, hypothesis, score_language(audio.language_code)))

    def _decide(self, model: Model, rows: list[ScoreRow], fixed: int) -> None:
        incumbent = self.incumbent()
        theirs = [row for row in self.scores.all_scores() if row.model == incumbent]
        decision = decide(rows, theirs, self.pipeline.selfheal_margin)
        mean = sum(r.error_rate for r in rows) / len(rows) if rows else None
        if decision.promote:
            self.scores.update_model(model.name, ModelStatus.EVALUATING, mean_error_rate=mean, files=len(rows))
            current = self.scores.model(model.name) or model
            self.scores.activate(current, incumbent)
            outcome = f"PROMOTED: {model.name} replaces {incumbent} for new jobs"
        else:
            self.scores.update_model(model.name, ModelStatus.EVALUATING, status=ModelStatus.CANDIDATE,
                                     mean_error_rate=mean, files=len(rows))
            outcome = f"kept {incumbent}: {model.name} is a candidate"
        note = (f"Self-heal decision: {outcome} ({decision.reason}; candidate {decision.candidate:.2%}, "
                f"incumbent {decision.incumbent:.2%}, margin {decision.margin:.2%}). "
                f"Words fixed (missed by the incumbent, recognised by the candidate): {fixed}.")
        self.scoring.report([*rows, *[r for r in theirs if r.encounter_id in {x.encounter_id for x in rows}]],
                            title="medscribe self-heal evaluation", note=note)
        logger.info("self-heal decided", extra={"model": model.name, "promoted": decision.promote,
                                                "files": len(rows), "fixed_words": fixed})
        self.artifacts.put_json(f"selfheal/models/{model.name}-decision.json", {
            "model": model.name, "incumbent": incumbent, "promote": decision.promote, "reason": decision.reason,
            "candidate_error_rate": decision.candidate, "incumbent_error_rate": decision.incumbent,
            "margin": decision.margin, "fixed_words": fixed, "files": len(rows),
        })
        metrics.add_metric(name="SelfHealPromotions", unit=MetricUnit.Count, value=int(decision.promote))
