"""Scores and the model registry, in the encounter table (see README "Data model").

Items:
  score    pk=ENC#<encounter_id>  sk=SCORE#<model>   numbers, model, metric, timestamp, the ground
           truth's encounter id and `details_key` (missed words live in the artifacts bucket, not
           here); never an uploader's key. One per (encounter, model), overwritten by a re-score
  model    pk=MODELS              sk=MODEL#<name>    status, language, vocabulary / language model
           names, phrases digest, evaluation progress, mean error rate, reason
  active   pk=MODELS              sk=ACTIVE          the model new transcription jobs use

All models live in one partition (a handful of items), so the leaderboard is one Query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import from_item, to_item
from medscribe.adapters.errors import classify, error_code
from medscribe.domain.encounter import utc_now
from medscribe.domain.selfheal import BASELINE, ModelStatus, ScoreRow

MODELS_PK = "MODELS"
ACTIVE_SK = "ACTIVE"
SCORE_PREFIX = "SCORE#"
MODEL_PREFIX = "MODEL#"


@dataclass(frozen=True)
class Model:
    name: str
    status: ModelStatus
    language: str
    vocabulary_name: str | None = None
    language_model_name: str | None = None
    phrases: int = 0
    digest: str = ""
    created_at: str = ""
    updated_at: str = ""
    reason: str | None = None
    mean_error_rate: float | None = None
    files: int | None = None
    # encounter id -> evaluation job name, for the jobs re-transcribing the ground-truth set
    evaluations: dict[str, str] = field(default_factory=dict)
    medical: bool = False  # its vocabulary is a medical vocabulary (Transcribe Medical deployments)
    deleted_at: str | None = None  # when its Transcribe resources were deleted (the record stays)


def _model(data: dict[str, Any]) -> Model:
    return Model(
        name=data["name"], status=ModelStatus(data["status"]), language=data.get("language", ""),
        vocabulary_name=data.get("vocabulary_name"), language_model_name=data.get("language_model_name"),
        phrases=int(data.get("phrases", 0)), digest=data.get("digest", ""), created_at=data.get("created_at", ""),
        updated_at=data.get("updated_at", ""), reason=data.get("reason"),
        mean_error_rate=float(data["mean_error_rate"]) if data.get("mean_error_rate") is not None else None,
        files=int(data["files"]) if data.get("files") is not None else None,
        evaluations=dict(data.get("evaluations") or {}),
        medical=bool(data.get("medical", False)), deleted_at=data.get("deleted_at") or None,
    )


def _score(data: dict[str, Any]) -> ScoreRow:
    return ScoreRow(
        encounter_id=data["encounter_id"], model=data["model"], metric=data["metric"],
        error_rate=float(data["error_rate"]), wer=float(data["wer"]), mer=float(data["mer"]),
        substitutions=int(data["substitutions"]), deletions=int(data["deletions"]),
        insertions=int(data["insertions"]), hits=int(data["hits"]), reference_words=int(data["reference_words"]),
        timestamp=data["timestamp"],
    )


class ScoreStore(aws_clients.TableClient):
    def _call(self, method: str, **params: Any) -> Any:
        try:
            return getattr(self.client, method)(TableName=self.table_name, **params)
        except ClientError as exc:
            raise classify(exc) from exc

    # --- scores ----------------------------------------------------------------------------------

    def put_score(self, row: ScoreRow, *, ground_truth_encounter_id: str, details_key: str) -> None:
        self._call("put_item", Item=to_item({
            "pk": f"ENC#{row.encounter_id}", "sk": f"{SCORE_PREFIX}{row.model}",
            "encounter_id": row.encounter_id, "model": row.model, "metric": row.metric,
            "error_rate": row.error_rate, "accuracy": row.accuracy, "wer": row.wer, "mer": row.mer,
            "substitutions": row.substitutions, "deletions": row.deletions, "insertions": row.insertions,
            "hits": row.hits, "reference_words": row.reference_words, "timestamp": row.timestamp,
            "ground_truth_encounter_id": ground_truth_encounter_id, "details_key": details_key,
        }))

    def scores_of(self, encounter_id: str) -> list[ScoreRow]:
        response = self._call(
            "query", KeyConditionExpression="pk = :pk AND begins_with(sk, :score)",
            ExpressionAttributeValues=to_item({":pk": f"ENC#{encounter_id}", ":score": SCORE_PREFIX}),
        )
        return [_score(from_item(item)) for item in response.get("Items", [])]

    def all_scores(self) -> list[ScoreRow]:
        """Every score (a filtered scan: scores are few — one per ground-truth file and model)."""
        found: list[ScoreRow] = []
        try:
            for page in self.client.get_paginator("scan").paginate(
                TableName=self.table_name, FilterExpression="begins_with(sk, :score)",
                ExpressionAttributeValues=to_item({":score": SCORE_PREFIX}),
            ):
                found += [_score(from_item(item)) for item in page.get("Items", [])]
        except ClientError as exc:
            raise classify(exc) from exc
        return found

    # --- models ----------------------------------------------------------------------------------

    def put_model(self, model: Model) -> bool:
        """Register a new model; False when one with this name exists (the same phrases again)."""
        now = utc_now()
        try:
            self.client.put_item(
                TableName=self.table_name, ConditionExpression="attribute_not_exists(pk)",
                Item=to_item({
                    "pk": MODELS_PK, "sk": f"{MODEL_PREFIX}{model.name}", "name": model.name,
                    "status": model.status.value, "language": model.language,
                    "vocabulary_name": model.vocabulary_name, "language_model_name": model.language_model_name,
                    "phrases": model.phrases, "digest": model.digest, "created_at": now, "updated_at": now,
                    "medical": model.medical,
                }),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise classify(exc) from exc
        return True

    def update_model(self, name: str, expected: ModelStatus, **fields: Any) -> bool:
        """Set `fields` (status included, if given) on a model still in `expected`; False otherwise."""
        present = {k: (v.value if isinstance(v, ModelStatus) else v)
                   for k, v in sorted(fields.items()) if v is not None}
        names = {"#s": "status", **{f"#f_{k}": k for k in present}}
        sets = ["updated_at = :now", *(f"#f_{k} = :f_{k}" for k in present)]
        try:
            self.client.update_item(
                TableName=self.table_name, Key=to_item({"pk": MODELS_PK, "sk": f"{MODEL_PREFIX}{name}"}),
                UpdateExpression="SET " + ", ".join(sets), ConditionExpression="#s = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item({":now": utc_now(), ":expected": expected.value,
                                                   **{f":f_{k}": v for k, v in present.items()}}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise classify(exc) from exc
        return True

    def models(self) -> list[Model]:
        response = self._call(
            "query", KeyConditionExpression="pk = :pk AND begins_with(sk, :model)", ConsistentRead=True,
            ExpressionAttributeValues=to_item({":pk": MODELS_PK, ":model": MODEL_PREFIX}),
        )
        return [_model(from_item(item)) for item in response.get("Items", [])]

    def model(self, name: str) -> Model | None:
        response = self._call("get_item", Key=to_item({"pk": MODELS_PK, "sk": f"{MODEL_PREFIX}{name}"}),
                              ConsistentRead=True)
        item = response.get("Item")
        return _model(from_item(item)) if item else None

    def forget_evaluations(self, encounter_id: str) -> int:
        """Remove an encounter from every model's evaluation map (erasure); returns how many models
        named it. The model's aggregate figures (mean error rate, file count) stay."""
        forgotten = 0
        for model in self.models():
            if encounter_id not in model.evaluations:
                continue
            try:
                self.client.update_item(
                    TableName=self.table_name, Key=to_item({"pk": MODELS_PK, "sk": f"{MODEL_PREFIX}{model.name}"}),
                    UpdateExpression="REMOVE evaluations.#e", ConditionExpression="attribute_exists(evaluations.#e)",
                    ExpressionAttributeNames={"#e": encounter_id},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue
                raise classify(exc) from exc
            forgotten += 1
        return forgotten

    def active(self) -> Model | None:
        """The model new jobs use; None: the deployment's settings (the baseline unless configured)."""
        response = self._call("get_item", Key=to_item({"pk": MODELS_PK, "sk": ACTIVE_SK}), ConsistentRead=True)
        name = from_item(response.get("Item", {})).get("name")
        return self.model(name) if name and name != BASELINE else None

    def activate(self, model: Model, previous: str | None) -> None:
        """Make `model` the one new jobs use (and mark it and the one it replaces)."""
        self._call("put_item", Item=to_item({
            "pk": MODELS_PK, "sk": ACTIVE_SK, "name": model.name, "vocabulary_name": model.vocabulary_name,
            "language_model_name": model.language_model_name, "promoted_at": utc_now(),
        }))
        self.update_model(model.name, ModelStatus.EVALUATING, status=ModelStatus.ACTIVE)
        if previous and previous != BASELINE:
            self.update_model(previous, ModelStatus.ACTIVE, status=ModelStatus.RETIRED)
