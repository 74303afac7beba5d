"""Scores, the model leaderboard and the self-heal loop's decisions. Pure.

Pairing: ground truth is uploaded under ground-truth/ with the same relative path as its audio and
the extension .txt: audio/clinic-a/visit-7.mp3 <-> ground-truth/clinic-a/visit-7.txt.

Models: "baseline" is Transcribe with neither a custom vocabulary nor a custom language model; a
candidate built by the self-heal loop is named `<prefix>-sh-<digest>` and is both its vocabulary's
and (where the language supports one) its language model's name. A transcript's model is read from
the job that produced it, so a score always names what really ran.

Evaluation jobs and their transcripts are named here (`eval_job_name`, `eval_output_key`): the loop
starts and reads them, erasure deletes them. `Scorer` is the port through which the loop uses the
scoring stage, which `services.wiring` hands it.

Reports and messages carry encounter ids, model names, pipeline-made artifact keys and numbers only:
never transcript text, missed words or the uploader's object keys (which may hold names).
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import fmean
from typing import Protocol

from medscribe.domain.encounter import Encounter
from medscribe.domain.text_safety import csv_cell

BASELINE = "baseline"
CLM_TRAINING_PREFIX = "selfheal/clm/"  # language model training text in the artifacts bucket
EVAL_OUTPUT_PREFIX = "transcripts/selfheal"  # evaluation transcripts in the artifacts bucket
AUDIO_PREFIX = "audio/"
GROUND_TRUTH_PREFIX = "ground-truth/"
# The scoring seed's columns (Filename, Accuracy, Index, Timestamp) first, then ours.
REPORT_COLUMNS = (
    "Filename", "Accuracy", "Index", "Timestamp", "EncounterId", "Model", "Metric", "ErrorRate", "WER", "MER",
    "Substitutions", "Deletions", "Insertions", "Hits", "ReferenceWords",
)


def ground_truth_key(audio_key: str) -> str | None:
    """ground-truth/<same relative path>.txt for an audio key; None for keys outside audio/."""
    if not audio_key.startswith(AUDIO_PREFIX):
        return None
    relative = audio_key[len(AUDIO_PREFIX):]
    stem = relative.rsplit(".", 1)[0] if "." in relative.rsplit("/", 1)[-1] else relative
    return f"{GROUND_TRUTH_PREFIX}{stem}.txt"


def spellings(key: str) -> list[str]:
    """`key` as uploaded, then in Unicode NFC and NFD, each once: the same Korean (or accented) name
    arrives composed from one system and decomposed from another (macOS file names are NFD), and S3
    keys are compared byte for byte, so a recording and its ground truth are paired by any spelling."""
    return list(dict.fromkeys([key, unicodedata.normalize("NFC", key), unicodedata.normalize("NFD", key)]))


def eval_job_name(prefix: str, model: str, encounter_id: str) -> str:
    """The Transcribe job that re-transcribes an encounter with a candidate model (ids only, no PHI)."""
    return f"{prefix}-eval-{hashlib.sha256(model.encode()).hexdigest()[:8]}-{encounter_id}"


def eval_output_key(model: str, encounter_id: str) -> str:
    """Where that evaluation job writes its transcript (the self-heal loop reads it, erasure deletes it)."""
    return f"{EVAL_OUTPUT_PREFIX}/{model}/{encounter_id}.json"


def audio_key_prefix(ground_truth: str) -> str | None:
    """audio/<same relative path>. — the prefix of the audio keys a ground-truth key pairs with."""
    if not ground_truth.startswith(GROUND_TRUTH_PREFIX) or not ground_truth.lower().endswith(".txt"):
        return None
    return f"{AUDIO_PREFIX}{ground_truth[len(GROUND_TRUTH_PREFIX):-4]}."


def model_name(vocabulary_name: str | None, language_model_name: str | None) -> str:
    """The model a job ran with: its language model's or vocabulary's name, else the baseline."""
    return language_model_name or vocabulary_name or BASELINE


def candidate_name(prefix: str, language: str, phrases: Iterable[str]) -> str:
    """A stable name for the candidate built from these phrases: the same phrases, the same model."""
    digest = hashlib.sha256("\n".join([language, *sorted(phrases)]).encode("utf-8")).hexdigest()[:10]
    return f"{prefix}-sh-{digest}"


class ModelStatus(StrEnum):
    BUILDING = "BUILDING"  # the vocabulary (and language model) is being created by Transcribe
    EVALUATING = "EVALUATING"  # the ground-truth set is being re-transcribed with it
    ACTIVE = "ACTIVE"  # new jobs use it
    CANDIDATE = "CANDIDATE"  # evaluated; did not beat the incumbent by the margin
    RETIRED = "RETIRED"  # was active; replaced by a better model
    FAILED = "FAILED"  # Transcribe could not build it; `reason` says why


@dataclass(frozen=True)
class ScoreRow:
    """One (encounter, model) score: what the scores record, the CSV and the leaderboard use."""

    encounter_id: str
    model: str
    metric: str  # wer | cer
    error_rate: float
    wer: float
    mer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference_words: int
    timestamp: str

    @property
    def accuracy(self) -> float:
        return max(0.0, 1.0 - self.error_rate)


@dataclass(frozen=True)
class Pair:
    """An audio encounter and the key of the ground truth it is scored against."""

    audio: Encounter
    ground_truth_key: str


class Scorer(Protocol):
    """What the self-heal loop needs of the scoring stage (`services.scoring.ScoringService`, given by
    `services.wiring`): its scores, references and reports, without the loop importing that stage."""

    def missed_words(self, encounter_id: str, model: str) -> list[str]: ...

    def ground_truth_of(self, audio: Encounter) -> str | None: ...

    def reference(self, key: str) -> str | None: ...

    def hypothesis(self, encounter: Encounter) -> str: ...

    def score_pair(self, pair: Pair, *, model: str | None = None,
                   hypothesis: str | None = None) -> ScoreRow | None: ...

    def report(self, rows: list[ScoreRow], *, title: str, note: str = "") -> str: ...


@dataclass(frozen=True)
class Standing:
    model: str
    files: int
    mean_error_rate: float
    status: str = ""


def leaderboard(rows: Iterable[ScoreRow], statuses: Mapping[str, str] | None = None,
                files: Iterable[str] | None = None) -> list[Standing]:
    """Mean error rate per model, best first. With `files`, only those encounters count, and only
    models scored on all of them are ranked (so every model is compared on the same set)."""
    wanted = set(files) if files is not None else None
    by_model: dict[str, dict[str, float]] = {}
    for row in rows:
        if wanted is None or row.encounter_id in wanted:
            by_model.setdefault(row.model, {})[row.encounter_id] = row.error_rate
    standings = [
        Standing(model, len(scores), fmean(scores.values()), (statuses or {}).get(model, ""))
        for model, scores in by_model.items()
        if scores and (wanted is None or set(scores) == wanted)
    ]
    return sorted(standings, key=lambda s: (s.mean_error_rate, s.model != BASELINE, s.model))


@dataclass(frozen=True)
class Promotion:
    promote: bool
    candidate: float
    incumbent: float
    margin: float
    reason: str = field(default="")


def decide(candidate: Sequence[ScoreRow], incumbent: Sequence[ScoreRow], margin: float) -> Promotion:
    """Promote only when the candidate beats the incumbent on the same files by at least `margin`
    (absolute error rate)."""
    mine = {row.encounter_id: row.error_rate for row in candidate}
    theirs = {row.encounter_id: row.error_rate for row in incumbent}
    shared = sorted(set(mine) & set(theirs))
    if not shared:
        return Promotion(False, float("nan"), float("nan"), margin, "no file scored with both models")
    ours, best = fmean(mine[i] for i in shared), fmean(theirs[i] for i in shared)
    if best - ours >= margin:
        return Promotion(True, ours, best, margin, f"better by {best - ours:.4f} on {len(shared)} file(s)")
    return Promotion(False, ours, best, margin, f"not better by the margin on {len(shared)} file(s)")


def report_csv(rows: Sequence[ScoreRow]) -> str:
    """The scoring seed's CSV (Filename, Accuracy, Index, Timestamp) with our columns after it. Filename
    holds the encounter id: a report mixes many patients, and uploaders' keys often name them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for index, row in enumerate(rows, 1):
        writer.writerow([
            csv_cell(row.encounter_id), f"{row.accuracy:.4f}", index, row.timestamp, row.encounter_id, row.model,
            row.metric,
            f"{row.error_rate:.4f}", f"{row.wer:.4f}", f"{row.mer:.4f}", row.substitutions, row.deletions,
            row.insertions, row.hits, row.reference_words,
        ])
    return out.getvalue()


def report_message(title: str, rows: Sequence[ScoreRow], standings: Sequence[Standing], report_key: str,
                   note: str = "") -> tuple[str, str]:
    """(subject, body) of the score email: ids, model names, the report's key and numbers only."""
    lines = [title, "", f"Files scored: {len(rows)}", ""]
    lines += ["Per file (encounter id, model, metric, error rate):"]
    lines += [f"  {r.encounter_id}  {r.model}  {r.metric.upper()} {r.error_rate:.2%}" for r in rows]
    per_model: dict[str, list[float]] = {}
    for row in rows:
        per_model.setdefault(row.model, []).append(row.error_rate)
    lines += ["", "Mean error rate per model (this run):"]
    lines += [f"  {model}  {fmean(rates):.2%} over {len(rates)} file(s)" for model, rates in sorted(per_model.items())]
    lines += ["", "Leaderboard (all ground-truth files, best first):"]
    lines += [f"  {n}. {s.model}  {s.mean_error_rate:.2%} over {s.files} file(s)"
              + (f"  [{s.status}]" if s.status else "") for n, s in enumerate(standings, 1)]
    if note:
        lines += ["", note]
    lines += ["", f"CSV report: {report_key} (artifacts bucket)"]
    mean = fmean(r.error_rate for r in rows) if rows else 0.0
    subject = f"medscribe scores: {len(rows)} file(s), mean error rate {mean:.1%}"
    return subject, "\n".join(lines) + "\n"
