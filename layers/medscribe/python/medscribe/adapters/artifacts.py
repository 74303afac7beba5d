"""The artifacts bucket: transcripts, numbered lines and their CSV/DOCX renderings."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify, error_code
from medscribe.domain.errors import PermanentError


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8")


class ArtifactStore:
    def __init__(self, bucket: str, kms_key_arn: str | None, client: Any | None = None) -> None:
        self.bucket = bucket
        self.kms_key_arn = kms_key_arn
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("s3")

    def _put(self, key: str, body: bytes, content_type: str) -> dict[str, Any]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body, "ContentType": content_type}
        if self.kms_key_arn:
            params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_arn)
        try:
            return dict(self.client.put_object(**params))
        except ClientError as exc:
            raise classify(exc) from exc

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self._put(key, body, content_type)
        return key

    def put_json(self, key: str, value: Any) -> str:
        return self.put(key, _json_bytes(value), "application/json")

    def put_version(self, key: str, body: bytes, content_type: str) -> str | None:
        """Write the object; the S3 version id of what was written (None in an unversioned bucket)."""
        version_id = self._put(key, body, content_type).get("VersionId")
        return str(version_id) if version_id and version_id != "null" else None

    def put_json_version(self, key: str, value: Any) -> str | None:
        """Write `value` as JSON; the S3 version id of the object written (None in an unversioned bucket)."""
        return self.put_version(key, _json_bytes(value), "application/json")

    def delete_version(self, key: str, version_id: str | None) -> None:
        """Delete exactly one version of `key` (s3:DeleteObjectVersion): in the versioned bucket a plain
        delete would only add a delete marker and keep the bytes. Without a version id (an unversioned
        bucket) the object itself."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            self.client.delete_object(**params)
        except ClientError as exc:
            raise classify(exc) from exc

    def get_text(self, key: str) -> str | None:
        """The object's text, or None when there is no such object (e.g. an optional override)."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise classify(exc) from exc
        return bytes(body).decode("utf-8")

    def get_json(self, key: str) -> Any:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise PermanentError("transcript output is missing from the artifacts bucket") from exc
            raise classify(exc) from exc
        return json.loads(body)
