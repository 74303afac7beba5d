"""The deletes erasure needs: every S3 version of a key, table items by key, Transcribe jobs.

S3: a versioned bucket keeps every version and delete marker of a key until each is deleted by its
version id (a plain DeleteObject only adds a delete marker). `ObjectVersions` lists them with
ListObjectVersions and removes them with DeleteObjects, at most 1,000 keys per request (the S3 limit).
Table: `TableItems` reads a partition and deletes items by key. Transcribe: `JobDeleter` deletes a
standard or Medical job by name; a job that does not exist is not an error (it may never have been
started, or was deleted already).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import from_item, to_item
from medscribe.adapters.errors import classify, error_code
from medscribe.domain.errors import PermanentError, TransientError

DELETE_OBJECTS_MAX_KEYS = 1000  # S3 DeleteObjects: at most 1,000 keys per request
RETRIABLE_DELETE_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"})


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str  # "null" for an object written before versioning was enabled
    delete_marker: bool = False


class ObjectVersions:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("s3")

    def under(self, bucket: str, prefix: str, *, exact: bool = False) -> list[ObjectVersion]:
        """Every version and delete marker of the keys starting with `prefix` (with `exact`, of that key
        alone: a prefix listing also returns longer keys)."""
        found: list[ObjectVersion] = []
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
                found += [ObjectVersion(v["Key"], v.get("VersionId") or "null") for v in page.get("Versions", [])]
                found += [ObjectVersion(m["Key"], m.get("VersionId") or "null", delete_marker=True)
                          for m in page.get("DeleteMarkers", [])]
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc) from exc
        return [v for v in found if not exact or v.key == prefix]

    def delete(self, bucket: str, versions: Sequence[ObjectVersion]) -> int:
        """Delete these versions for good, 1,000 per request; returns how many were deleted. A version
        S3 could not delete raises (TransientError for throttling and 5xx, else PermanentError)."""
        deleted = 0
        for start in range(0, len(versions), DELETE_OBJECTS_MAX_KEYS):
            batch = versions[start:start + DELETE_OBJECTS_MAX_KEYS]
            try:
                response = self.client.delete_objects(Bucket=bucket, Delete={
                    "Objects": [{"Key": v.key, "VersionId": v.version_id} for v in batch], "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise classify(exc) from exc
            problems = response.get("Errors", [])
            if problems:
                codes = sorted({str(problem.get("Code", "")) for problem in problems})
                error = TransientError if set(codes) <= RETRIABLE_DELETE_CODES else PermanentError
                raise error(f"S3 did not delete {len(problems)} object version(s): {', '.join(codes)}")
            deleted += len(batch)
        return deleted

    def read(self, bucket: str, key: str, version_id: str | None = None) -> bytes | None:
        """The bytes of the current version (or of `version_id`), or None when there is none."""
        params = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        try:
            return bytes(self.client.get_object(**params)["Body"].read())
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchVersion", "404"):
                return None
            raise classify(exc) from exc


class TableItems(aws_clients.TableClient):
    def partition(self, pk: str) -> list[dict[str, Any]]:
        """Every item with this partition key (consistent read)."""
        found: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("query").paginate(
                TableName=self.table_name, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                ExpressionAttributeValues=to_item({":pk": pk}),
            ):
                found += [from_item(item) for item in page.get("Items", [])]
        except ClientError as exc:
            raise classify(exc) from exc
        return found

    def delete(self, keys: Iterable[tuple[str, str]]) -> int:
        """Delete the items with these (pk, sk); returns how many existed."""
        deleted = 0
        for pk, sk in keys:
            try:
                response = self.client.delete_item(TableName=self.table_name, Key=to_item({"pk": pk, "sk": sk}),
                                                   ReturnValues="ALL_OLD")
            except ClientError as exc:
                raise classify(exc) from exc
            deleted += bool(response.get("Attributes"))
        return deleted


JOB_NOT_FOUND_CODES = frozenset({"BadRequestException", "NotFoundException"})


class JobDeleter:
    def __init__(self, client: Any | None = None, *, medical_first: bool = False) -> None:
        self._client = client
        self.medical_first = medical_first

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("transcribe")

    def delete(self, name: str) -> bool:
        """Delete the job called `name`, standard or Medical (the configured kind first); False when
        neither exists."""
        kinds = (True, False) if self.medical_first else (False, True)
        for medical in kinds:
            try:
                if medical:
                    self.client.delete_medical_transcription_job(MedicalTranscriptionJobName=name)
                else:
                    self.client.delete_transcription_job(TranscriptionJobName=name)
            except ClientError as exc:
                # BadRequestException also means "not finished yet": only a job that does not exist is skipped
                if error_code(exc) in JOB_NOT_FOUND_CODES and any(w in str(exc).lower() for w in ("found", "exist")):
                    continue
                raise classify(exc) from exc
            return True
        return False
