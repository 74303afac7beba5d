"""S3 reads of input objects, and the presigned links and upload forms the workspace hands to browsers."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify, error_code
from medscribe.domain.encounter import ObjectRef
from medscribe.domain.errors import PermanentError

# strongest first; each names the algorithm, so values of different algorithms never compare equal
CHECKSUMS = ("ChecksumSHA256", "ChecksumSHA1", "ChecksumCRC64NVME", "ChecksumCRC32C", "ChecksumCRC32")
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit on a presigned request's lifetime


class ObjectStore:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("s3")

    def read(self, ref: ObjectRef, max_bytes: int, start: int = 0) -> bytes:
        """Up to `max_bytes` bytes from `start` of exactly the revision the event named."""
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key,
                                  "Range": f"bytes={start}-{start + max_bytes - 1}"}
        if ref.version_id:
            params["VersionId"] = ref.version_id
        try:
            response = self.client.get_object(**params)
            return bytes(response["Body"].read())
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchVersion", "404"):
                raise PermanentError("object no longer exists") from exc
            if error_code(exc) == "InvalidRange":
                return b""
            raise classify(exc) from exc
        except BotoCoreError as exc:  # connection trouble, a body cut off mid-read
            raise classify(exc) from exc

    def tags(self, ref: ObjectRef) -> dict[str, str]:
        """The object tags of exactly the revision the event named (GetObjectTagging)."""
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            params["VersionId"] = ref.version_id
        try:
            response = self.client.get_object_tagging(**params)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchVersion", "404"):
                raise PermanentError("object no longer exists") from exc
            raise classify(exc) from exc
        except BotoCoreError as exc:
            raise classify(exc) from exc
        return {str(tag["Key"]): str(tag["Value"]) for tag in response.get("TagSet", [])}

    def presigned_get(self, ref: ObjectRef, seconds: int) -> str:
        """A SigV4 presigned GET of exactly this revision, valid for `seconds`: a bearer link to the
        object while it lasts, so callers keep it short. Signed locally: no request is made."""
        params = {"Bucket": ref.bucket, "Key": ref.key, **({"VersionId": ref.version_id} if ref.version_id else {})}
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))

    def presigned_post(self, bucket: str, key: str, *, max_bytes: int, content_type: str,
                       content_type_prefix: str, expires_seconds: int,
                       kms_key_id: str | None = None) -> dict[str, Any]:
        """A SigV4 presigned POST (`{"url", "fields"}`) that lets a browser write exactly `key`: 1 to
        `max_bytes` bytes, a Content-Type starting with `content_type_prefix`, SSE-KMS with `kms_key_id`
        when given, and nothing else (S3 refuses a form field the policy does not name). Signed locally:
        no request is made; S3 checks the policy, and the signer's IAM permissions, when the browser posts."""
        if not 0 < expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"a presigned POST expires within {MAX_PRESIGN_SECONDS} seconds (SigV4)")
        if not content_type.startswith(content_type_prefix):
            raise ValueError("the content type must start with the allowed prefix")
        fields = {"Content-Type": content_type}
        conditions: list[Any] = [
            {"bucket": bucket}, {"key": key},
            ["content-length-range", 1, max_bytes],
            ["starts-with", "$Content-Type", content_type_prefix],
        ]
        if kms_key_id:
            encryption = {"x-amz-server-side-encryption": "aws:kms",
                          "x-amz-server-side-encryption-aws-kms-key-id": kms_key_id}
            fields |= encryption
            conditions += [{name: value} for name, value in encryption.items()]
        form = self.client.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions,
                                                   ExpiresIn=expires_seconds)
        return {"url": str(form["url"]), "fields": {str(k): str(v) for k, v in form["fields"].items()}}

    def fingerprint(self, ref: ObjectRef) -> str | None:
        """What identifies this revision's bytes, or None when the object is gone: a full-object or
        composite checksum S3 keeps (SHA-256 first; S3 adds CRC64NVME to every upload that names none),
        else the ETag. Equal fingerprints mean equal bytes (a multipart ETag or composite checksum
        also depends on the part sizes: the same file uploaded in other parts only looks different,
        which errs toward a new encounter). An SSE-KMS ETag is not an MD5 of the bytes, hence the
        checksums first."""
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key, "ChecksumMode": "ENABLED"}
        if ref.version_id:
            params["VersionId"] = ref.version_id
        try:
            response = self.client.head_object(**params)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchVersion", "404", "NotFound"):
                return None
            raise classify(exc) from exc
        except BotoCoreError as exc:
            raise classify(exc) from exc
        for name in CHECKSUMS:
            if response.get(name):
                return f"{name}:{response[name]}"
        etag = str(response.get("ETag", "")).strip('"') or ref.etag
        return f"ETag:{etag}" if etag else None

    def latest(self, bucket: str, key: str) -> ObjectRef | None:
        """The current revision of a key (HeadObject), or None when there is none."""
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise classify(exc) from exc
        except BotoCoreError as exc:
            raise classify(exc) from exc
        return ObjectRef(bucket=bucket, key=key, size=int(response.get("ContentLength", 0)),
                         etag=str(response.get("ETag", "")).strip('"') or None,
                         version_id=response.get("VersionId") or None)

    def keys_with_prefix(self, bucket: str, prefix: str, limit: int = 100) -> list[str]:
        """Up to `limit` keys that start with `prefix`."""
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys += [item["Key"] for item in page.get("Contents", [])]
                if len(keys) >= limit:
                    break
        except ClientError as exc:
            raise classify(exc) from exc
        return keys[:limit]
