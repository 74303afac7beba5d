"""The uploads port over the input bucket: a presigned POST per file, which the browser posts to S3
itself (the file never passes through the app, so a recording's size is S3's concern, not a Lambda
payload's).

The key is built here from the user's file name, kind and folder (domain.uploads: directories and
invisible characters stripped, extension checked against the settings); the form's policy pins exactly
that key, 1 byte to the kind's limit (`workspace_upload_max_mb`, and for text `text_max_bytes`; audio
also `audio_max_bytes`), the content type the extension names, and SSE-KMS with the project key. A
form is valid for `UPLOAD_FORM_SECONDS`: the browser asks for it just before it posts. Locally the
forms post to the emulator (its S3 answers CORS for any origin), so the upload page works from a
browser on the machine that runs the runtime; in AWS to the bucket, whose CORS rule allows the
workspace's origin (stacks/workspace.py).
"""

from __future__ import annotations

from functools import cached_property
from urllib.parse import urlsplit

from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import Kind
from medscribe.domain.uploads import InvalidUpload, checked_size, upload_target
from medscribe.settings import PipelineSettings
from medscribe.workspace.ports import BadRequest, UploadForm

UPLOAD_FORM_SECONDS = 900  # time to start the upload after asking for the form
MIB = 1024 * 1024


class S3Uploads:
    def __init__(self, objects: ObjectStore, bucket: str, *, kms_key_id: str | None, settings: PipelineSettings,
                 expires_seconds: int = UPLOAD_FORM_SECONDS) -> None:
        self.objects = objects
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self.settings = settings
        self.expires_seconds = expires_seconds

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(self.settings.workspace_upload_extensions)

    def limit(self, kind: Kind) -> int:
        pipeline = self.settings.text_max_bytes if kind is Kind.TEXT else self.settings.audio_max_bytes
        return min(self.settings.workspace_upload_max_mb * MIB, pipeline)

    @cached_property
    def origin(self) -> str:
        # where the client's forms post (endpoint, addressing style, region): read off a form it signs,
        # locally and without a request, so the page's CSP names exactly that origin
        probe = self.objects.presigned_post(self.bucket, "audio/origin", max_bytes=1, content_type="audio/mpeg",
                                            content_type_prefix="audio/", expires_seconds=1)
        parts = urlsplit(probe["url"])
        return f"{parts.scheme}://{parts.netloc}"

    def form(self, kind: str, filename: str, folder: str | None, size: int | None) -> UploadForm:
        try:
            target = upload_target(kind, filename, folder, frozenset(self.settings.workspace_upload_extensions))
            checked_size(size, self.limit(target.kind))
        except InvalidUpload as exc:
            raise BadRequest(str(exc)) from exc
        signed = self.objects.presigned_post(
            self.bucket, target.key, max_bytes=self.limit(target.kind), content_type=target.content_type,
            content_type_prefix=target.content_type_prefix, expires_seconds=self.expires_seconds,
            kms_key_id=self.kms_key_id)
        return UploadForm(signed["url"], signed["fields"], target.key)
