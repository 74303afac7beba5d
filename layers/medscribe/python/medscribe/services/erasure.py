"""Erasure: delete one encounter everywhere the project controls, and say what only ages out.

An operator action (`medscribe erase <encounter-id> [--aws]`), run with the operator's credentials, or an
admin's in the clinician workspace (`WorkspaceService.erase`, which audits it); no pipeline function
runs it (README "PHI: where it lives, and erasure").

What one erasure takes (`ErasureService.family`): the encounter, every other revision of the same
input key (erasure deletes every S3 version of the key, so their inputs are gone too), and the
recording or ground truth it pairs with for scoring (audio/<path>.<ext> <-> ground-truth/<path>.txt,
any Unicode spelling): a ground truth is a human transcript of that recording, the same visit.
An encounter still in flight (not terminal) is refused: a running stage would write its outputs again.

Per encounter: the table's items of its partition (the encounter, its scores, the workspace's note
versions and note head) and its entry in the self-heal models' evaluation maps; its Transcribe jobs (the
transcription job and self-heal evaluation jobs, standard or Medical); every version and delete marker
of its artifacts (transcripts/<id>/, notes/<id>/ with the workspace's note versions, scores/<id>/,
redacted/<id>/ (the de-identified copies), entities/<id>.json, transcripts/selfheal/<model>/<id>.json);
its search document. Per input key: every version and delete marker in the input bucket and its source-
ordering item. Score reports (reports/scores/*.csv) that list it are rewritten without its rows, and
their earlier versions deleted. The report counts per store; it holds encounter ids and numbers, never a
key or text, and so do the logs. The workspace's audit trail (AUDIT# items) is not the encounter's
partition and stays: it holds ids only, and the workspace records the erasure in it.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository, content_id, source_folder
from medscribe.adapters.erasure import JobDeleter, ObjectVersion, ObjectVersions, TableItems
from medscribe.adapters.objects import ObjectStore
from medscribe.adapters.scores import ScoreStore
from medscribe.domain.clinical_entities import entities_key
from medscribe.domain.encounter import Encounter, Kind, ObjectRef, is_terminal
from medscribe.domain.errors import PermanentError
from medscribe.domain.redacted_copies import REDACTED_FOLDER
from medscribe.domain.search import SearchIndex
from medscribe.domain.selfheal import audio_key_prefix, eval_output_key, ground_truth_key, spellings
from medscribe.observability import logger
from medscribe.settings import PipelineSettings

REPORTS_PREFIX = "reports/scores/"
ARTIFACT_FOLDERS = ("transcripts", "notes", "scores", REDACTED_FOLDER)  # <folder>/<encounter id>/...

# Retention the stack configures (stacks/storage.py, stacks/search.py; tests/infra/test_erasure_retention.py
# checks these against the synthesized template) and AWS's own for what the stack cannot configure.
PITR_DAYS = 35  # DynamoDB point-in-time recovery: the stack leaves RecoveryPeriodInDays at its default, 35
BACKUP_RETENTION_DAYS = 35  # the daily AWS Backup plan's DeleteAfterDays (stacks/storage.py)
OPENSEARCH_SNAPSHOT_DAYS = 14  # OpenSearch Service keeps its hourly automated snapshots 14 days (not configurable)
DLQ_RETENTION_DAYS = 14  # stacks/messaging.py DLQ_RETENTION: dead letters carry ids only


# The IAM actions the operator's identity needs for `medscribe erase --aws` (no function runs erasure):
# tests/contract/test_erasure_operator.py maps every call the service makes to one of them and checks
# each against IAM's action database. Objects are SSE-KMS with the project key (kms:Decrypt to read a
# report, kms:GenerateDataKey to write it again); the search document is deleted with a bulk request.
OPERATOR_ACTIONS = frozenset({
    "cloudformation:DescribeStacks",
    "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:UpdateItem",
    "s3:ListBucketVersions", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObjectVersion",
    "kms:Decrypt", "kms:GenerateDataKey",
    "transcribe:DeleteTranscriptionJob", "transcribe:DeleteMedicalTranscriptionJob",
    "es:ESHttpPost",
})


class UnknownEncounter(PermanentError):
    """No encounter has this id."""


class EncounterInProgress(PermanentError):
    """The encounter (or one erased with it) is not terminal yet."""


@dataclass(frozen=True)
class AgesOut:
    store: str
    holds: str
    gone_by: date | None  # None: not aged out by the project (outside its control)

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "holds": self.holds,
                "gone_by": self.gone_by.isoformat() if self.gone_by else None}


@dataclass
class ErasureReport:
    encounter_id: str
    erased: list[str] = field(default_factory=list)  # every encounter id erased (the family)
    deleted: Counter[str] = field(default_factory=Counter)  # store -> items deleted
    ages_out: list[AgesOut] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"encounter_id": self.encounter_id, "erased": self.erased, "deleted": dict(sorted(self.deleted.items())),
                "ages_out": [item.to_json() for item in self.ages_out]}


def retention(settings: PipelineSettings, today: date) -> list[AgesOut]:
    """What a deployed stack still holds after an erasure, and the date it is gone (upper bounds)."""
    days = timedelta
    return [
        AgesOut("DynamoDB point-in-time recovery", "the table as it was (encounter and score items)",
                today + days(PITR_DAYS)),
        AgesOut("AWS Backup daily recovery points", "the table as it was at each backup",
                today + days(BACKUP_RETENTION_DAYS)),
        AgesOut("OpenSearch automated snapshots", "the search document (transcript and note text)",
                today + days(OPENSEARCH_SNAPSHOT_DAYS)),
        # an expired access log becomes a non-current version (the bucket is versioned), kept a while more
        AgesOut("S3 server access logs", "request lines naming the input and artifact keys",
                today + days(settings.access_log_days + settings.noncurrent_version_days)),
        AgesOut("CloudWatch Logs (functions, search domain)", "encounter ids; search slow logs: query text",
                today + days(settings.log_retention_days)),
        AgesOut("SQS dead-letter queues", "encounter ids in dead letters", today + days(DLQ_RETENTION_DAYS)),
        AgesOut("emails already sent (SNS)", "encounter ids and scores, no keys or text", None),
    ]


class ErasureService:
    def __init__(self, repository: EncounterRepository, scores: ScoreStore, items: TableItems,
                 versions: ObjectVersions, jobs: JobDeleter, search: SearchIndex | None, artifacts: ArtifactStore,
                 *, input_bucket: str, objects: ObjectStore | None = None) -> None:
        self.repository = repository
        self.objects = objects or ObjectStore()  # fingerprints name the content claims (CON# items)
        self.scores = scores
        self.items = items
        self.versions = versions
        self.jobs = jobs
        self.search = search
        self.artifacts = artifacts
        self.input_bucket = input_bucket
        self.artifacts_bucket = artifacts.bucket

    # --- what one erasure takes -------------------------------------------------------------------

    def family(self, encounter_id: str) -> list[Encounter]:
        """The encounter, the other revisions of its key and the recording / ground truth it pairs with."""
        target = self.repository.get(encounter_id)
        if target is None:
            raise UnknownEncounter(f"no encounter with id {encounter_id!r}")
        found: dict[str, Encounter] = {target.encounter_id: target}
        for encounter in self._same_key(target.source_bucket, target.source_key):
            found.setdefault(encounter.encounter_id, encounter)
        for encounter in list(found.values()):
            for paired in self._paired(encounter):
                found.setdefault(paired.encounter_id, paired)
        busy = [e for e in found.values() if not is_terminal(e.status, e.kind)]
        if busy:
            raise EncounterInProgress(f"encounter {busy[0].encounter_id} is {busy[0].status.value}; "
                                      "erase it once it is terminal")
        return sorted(found.values(), key=lambda e: e.encounter_id != encounter_id)

    def _in_folder(self, folder: str) -> list[Encounter]:
        return self.repository.in_folder(folder) if folder else self.repository.list()

    def _same_key(self, bucket: str, key: str) -> list[Encounter]:
        return [e for e in self._in_folder(source_folder(key)) if e.source_key == key and e.source_bucket == bucket]

    def _paired(self, encounter: Encounter) -> list[Encounter]:
        if encounter.kind is Kind.AUDIO:
            truth = ground_truth_key(encounter.source_key)
            return [e for key in (spellings(truth) if truth else []) for e in self._same_key(self.input_bucket, key)]
        if encounter.kind is Kind.GROUND_TRUTH:
            prefix = audio_key_prefix(encounter.source_key)
            found = []
            for spelling in spellings(prefix) if prefix else []:
                found += [e for e in self._in_folder(source_folder(spelling))
                          if e.kind is Kind.AUDIO and e.source_key.startswith(spelling)
                          and "/" not in e.source_key[len(spelling):]]
            return found
        return []

    # --- the erasure ------------------------------------------------------------------------------

    def erase(self, encounter_id: str, today: date, settings: PipelineSettings) -> ErasureReport:
        """Erase the encounter's family. The encounter items go last, the named one at the very end: an
        erasure cut short (a crash, an expired session) is finished by running it again."""
        family = self.family(encounter_id)
        report = ErasureReport(encounter_id, erased=[e.encounter_id for e in family])
        models = self.scores.models()
        for encounter in family:
            eid = encounter.encounter_id
            jobs = {encounter.job_name} if encounter.job_name else set()
            jobs |= {job for model in models for e, job in model.evaluations.items() if e == eid}
            report.deleted["transcription jobs"] += sum(self.jobs.delete(name) for name in sorted(jobs))
            report.deleted["model evaluation entries"] += self.scores.forget_evaluations(eid)
            artifacts = [v for folder in ARTIFACT_FOLDERS
                         for v in self.versions.under(self.artifacts_bucket, f"{folder}/{eid}/")]
            artifacts += [v for model in models
                          for v in self.versions.under(self.artifacts_bucket, eval_output_key(model.name, eid),
                                                       exact=True)]
            artifacts += self.versions.under(self.artifacts_bucket, entities_key(eid), exact=True)
            report.deleted["artifact object versions"] += self.versions.delete(self.artifacts_bucket, artifacts)
            if self.search is not None:  # the items' stream REMOVE deletes it again: harmless
                self.search.delete(eid)
                report.deleted["search documents"] += 1
        for bucket, key in dict.fromkeys((e.source_bucket, e.source_key) for e in family):
            inputs = self.versions.under(bucket, key, exact=True)
            report.deleted["content claims"] += self._forget_contents(bucket, key, inputs)
            report.deleted["input object versions"] += self.versions.delete(bucket, inputs)
            source_id = ObjectRef(bucket=bucket, key=key, size=0).source_id
            report.deleted["source ordering items"] += self.items.delete([(f"SRC#{source_id}", "SRC")])
        report.deleted["score reports rewritten"] += self._rewrite_reports(set(report.erased))
        for encounter in reversed(family):  # the named encounter (first in the family) last
            partition = self.items.partition(f"ENC#{encounter.encounter_id}")
            report.deleted["table items"] += self.items.delete(
                sorted(((item["pk"], item["sk"]) for item in partition), key=lambda k: k[1] == "ENC"))
        report.ages_out = retention(settings, today)
        logger.info("encounter erased", extra={"encounter_id": encounter_id, "erased": report.erased,
                                               "deleted": dict(report.deleted)})
        return report

    def _forget_contents(self, bucket: str, key: str, versions: Iterable[ObjectVersion]) -> int:
        """Delete the content claims of the key's versions (read before the versions go), so an identical
        upload after the erasure is a new encounter at once."""
        keys = []
        for version in versions:
            if version.delete_marker:
                continue
            ref = ObjectRef(bucket=bucket, key=key, size=0,
                            version_id=None if version.version_id == "null" else version.version_id)
            fingerprint = self.objects.fingerprint(ref)
            if fingerprint is not None:
                keys.append((f"CON#{content_id(ref, fingerprint)}", "CON"))
        return self.items.delete(keys) if keys else 0

    def _rewrite_reports(self, erased: set[str]) -> int:
        """Every score report listing an erased encounter, written again without its rows; every earlier
        version of such a report (which still lists it) deleted."""
        rewritten = 0
        by_key: dict[str, list[Any]] = {}
        for version in self.versions.under(self.artifacts_bucket, REPORTS_PREFIX):
            by_key.setdefault(version.key, []).append(version)
        for key, versions in sorted(by_key.items()):
            current = self.versions.read(self.artifacts_bucket, key)
            text = current.decode("utf-8", errors="replace") if current is not None else ""
            if not _names_any(text, erased) and not self._any_version_names(key, versions, erased):
                continue
            if current is not None:
                self.artifacts.put(key, _without_rows(text, erased).encode("utf-8"), "text/csv")
            self.versions.delete(self.artifacts_bucket, versions)  # every version but the one just written
            rewritten += 1
        return rewritten

    def _any_version_names(self, key: str, versions: Iterable[ObjectVersion], erased: set[str]) -> bool:
        for version in versions:
            body = None if version.delete_marker else self.versions.read(self.artifacts_bucket, key, version.version_id)
            if body is not None and _names_any(body.decode("utf-8", errors="replace"), erased):
                return True
        return False


def _names_any(text: str, ids: set[str]) -> bool:
    return any(encounter_id in text for encounter_id in ids)


def _without_rows(text: str, erased: set[str]) -> str:
    """A score report without the rows of the erased encounters (header and other rows unchanged)."""
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(row for row in rows if not any(cell in erased for cell in row))
    return out.getvalue()
