"""The scoring stage: a transcript against its human ground truth, whichever of the two arrives last.

Triggered by "Encounter Ready For Scoring" events (after a transcription completes, and when a
ground truth is received). For an audio encounter it looks for ground-truth/<same path>.txt; for a
ground truth, for the current revision of every audio/<same path>.<ext>. A new revision of either
side is a new encounter and a new event, so it is scored again; a score is one record per
(encounter, model), so a repeated event rewrites the same record.

Per pair: WER (CER for Korean) and the counts into the table (numbers and encounter ids only); the
missed words into scores/<encounter>/<model>.json in the artifacts bucket (they are transcript words:
PHI). Per run (one batch of events): a CSV report reports/scores/<timestamp>.csv and one email with
ids, the model, numbers and the leaderboard. Neither the score item, the details, the report nor the
email names an uploader's key (keys often hold patient names): they refer to the audio encounter and
the ground-truth encounter by id, so the key stays in the encounter items alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.notifications import Notifier
from medscribe.adapters.objects import ObjectStore
from medscribe.adapters.scores import ScoreStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, utc_now
from medscribe.domain.errors import PermanentError
from medscribe.domain.scoring import EmptyReferenceError, Score, score, score_language
from medscribe.domain.selfheal import (
    BASELINE,
    Pair,
    ScoreRow,
    audio_key_prefix,
    ground_truth_key,
    leaderboard,
    report_csv,
    report_message,
    spellings,
)
from medscribe.observability import logger, metrics

TRANSCRIBED = frozenset({EncounterStatus.TRANSCRIBED, EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW})
GROUND_TRUTH_MAX_BYTES = 1024**2
EMPTY_GROUND_TRUTH = "ground truth has no words to score against"


def details_key(encounter_id: str, model: str) -> str:
    return f"scores/{encounter_id}/{model}.json"


def row_of(encounter: Encounter, model: str, result: Score) -> ScoreRow:
    return ScoreRow(
        encounter_id=encounter.encounter_id, model=model, metric=result.metric, error_rate=result.error_rate,
        wer=result.wer, mer=result.mer, substitutions=result.substitutions, deletions=result.deletions,
        insertions=result.insertions, hits=result.hits, reference_words=result.reference_words,
        timestamp=utc_now(),
    )


class ScoringService:
    def __init__(self, repository: EncounterRepository, scores: ScoreStore, artifacts: ArtifactStore,
                 objects: ObjectStore, notifier: Notifier, input_bucket: str) -> None:
        self.repository = repository
        self.scores = scores
        self.artifacts = artifacts
        self.objects = objects
        self.notifier = notifier
        self.input_bucket = input_bucket

    def score_encounters(self, encounter_ids: Iterable[str]) -> tuple[list[ScoreRow], set[str]]:
        """Score every complete pair these encounters belong to, then report the run. Returns the rows and
        the encounter ids to retry (a transient error); one encounter's error never holds up the others,
        and a permanent one (e.g. its transcript is gone) is logged and not retried: there is no score."""
        rows: list[ScoreRow] = []
        retry: set[str] = set()
        for encounter_id in dict.fromkeys(encounter_ids):
            try:
                rows += [row for pair in self.pairs(encounter_id) if (row := self.score_pair(pair)) is not None]
            except PermanentError as exc:
                logger.warning("not scored", extra={"encounter_id": encounter_id, "reason": type(exc).__name__})
                metrics.add_metric(name="ScoringFailed", unit=MetricUnit.Count, value=1)
            except Exception:  # transient: SQS delivers this one again
                logger.exception("scoring failed; will retry", extra={"encounter_id": encounter_id})
                retry.add(encounter_id)
        if rows:
            self.report(rows, title="medscribe scoring run")
        return rows, retry

    def pairs(self, encounter_id: str) -> list[Pair]:
        encounter = self.repository.get(encounter_id)
        if encounter is None or encounter.status is EncounterStatus.REJECTED:
            return []
        if encounter.kind is Kind.AUDIO:
            key = self.ground_truth_of(encounter)
            return [Pair(encounter, key)] if key else []
        if encounter.kind is Kind.GROUND_TRUTH:
            prefix = audio_key_prefix(encounter.source_key)
            if prefix is None:
                return []
            pairs = []
            for spelling in spellings(prefix):
                for key in self.objects.keys_with_prefix(self.input_bucket, spelling):
                    if "/" in key[len(spelling):]:
                        continue  # audio/a.b/c.mp3 is not audio/a.<ext>
                    current = self.objects.latest(self.input_bucket, key)
                    audio = self.repository.get(current.encounter_id) if current else None
                    if audio is not None:
                        pairs.append(Pair(audio, encounter.source_key))
            return pairs
        return []

    def ground_truth_of(self, audio: Encounter) -> str | None:
        """The key of the recording's ground truth: as named, else under another Unicode spelling of
        the same name (`spellings`), else as named (it is scored when it arrives); None outside audio/."""
        key = ground_truth_key(audio.source_key)
        if key is None:
            return None
        return next((candidate for candidate in spellings(key)
                     if self.objects.latest(self.input_bucket, candidate) is not None), key)

    def _reject_empty_ground_truth(self, key: str) -> None:
        """A ground truth with no words can never be scored: its encounter ends REJECTED with the reason
        (a corrected upload is a new revision, scored as usual)."""
        current = self.objects.latest(self.input_bucket, key)
        if current is not None and self.repository.transition(
                current.encounter_id, EncounterStatus.RECEIVED, EncounterStatus.REJECTED, reason=EMPTY_GROUND_TRUTH):
            logger.warning("ground truth has no words: rejected", extra={"encounter_id": current.encounter_id})

    def hypothesis(self, encounter: Encounter) -> str:
        lines = (self.artifacts.get_json(encounter.transcript_key or "") or {}).get("lines", [])
        return "\n".join(str(line.get("text", "")) for line in lines)

    def reference(self, key: str) -> str | None:
        found = self._reference(key)
        return found[1] if found else None

    def _reference(self, key: str) -> tuple[str, str] | None:
        """(the ground truth's encounter id, its text) for the current revision of `key`."""
        current = self.objects.latest(self.input_bucket, key)
        if current is None:
            return None
        try:
            text = self.objects.read(current, GROUND_TRUTH_MAX_BYTES).decode("utf-8-sig", errors="replace")
        except PermanentError:
            return None
        return current.encounter_id, text

    def score_pair(self, pair: Pair, *, model: str | None = None, hypothesis: str | None = None) -> ScoreRow | None:
        """Score one audio encounter's transcript (or `hypothesis`, for an evaluation job) against its
        ground truth; None when either half is missing (it is scored when that half arrives)."""
        audio = pair.audio
        if hypothesis is None and (audio.status not in TRANSCRIBED or not audio.transcript_key):
            logger.info("transcript not ready; scored when it is", extra={"encounter_id": audio.encounter_id})
            return None
        found = self._reference(pair.ground_truth_key)
        if found is None:
            logger.info("no ground truth for this recording yet", extra={"encounter_id": audio.encounter_id})
            return None
        truth_id, reference = found
        model = model or audio.model or BASELINE
        language = score_language(audio.language_code)
        try:
            result = score(reference, hypothesis if hypothesis is not None else self.hypothesis(audio),
                           language=language)
        except EmptyReferenceError:
            self._reject_empty_ground_truth(pair.ground_truth_key)
            return None
        row = row_of(audio, model, result)
        key = details_key(audio.encounter_id, model)
        self.artifacts.put_json(key, {"encounter_id": audio.encounter_id, "model": model,
                                      "ground_truth_encounter_id": truth_id, **result.to_json()})
        self.scores.put_score(row, ground_truth_encounter_id=truth_id, details_key=key)
        logger.info("scored", extra={"encounter_id": audio.encounter_id, "model": model, "metric": row.metric,
                                     "error_rate": round(row.error_rate, 4)})
        metrics.add_metric(name="EncountersScored", unit=MetricUnit.Count, value=1)
        return row

    def missed_words(self, encounter_id: str, model: str) -> list[str]:
        data: Any = json.loads(self.artifacts.get_text(details_key(encounter_id, model)) or "{}")
        return [str(word) for word in data.get("missed_words", [])]

    def report(self, rows: list[ScoreRow], *, title: str, note: str = "") -> str:
        """The CSV report in the artifacts bucket and the email: returns the report's key."""
        stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
        key = f"reports/scores/{stamp}.csv"
        self.artifacts.put(key, report_csv(rows).encode("utf-8"), "text/csv")
        statuses = {model.name: model.status.value for model in self.scores.models()}
        standings = leaderboard(self.scores.all_scores(), statuses)
        subject, body = report_message(title, rows, standings, key, note)
        self.notifier.publish(subject, body.splitlines(), {"files": len(rows), "report_key": key})
        logger.info("score report", extra={"files": len(rows), "report_key": key})
        return key
