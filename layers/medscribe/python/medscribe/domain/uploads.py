"""Uploads from the workspace: the object key a browser may write, built here from what the user
typed. Pure.

The key is `<kind>/<folder>/<file name>`: the kind's input prefix (ingest routes by it: `audio/`
or `text/`; ground truth and keywords are not uploaded from the workspace), the optional folder (the
encounter list filters by it), and the user's own file name. The name is theirs to choose and is kept,
but only as a name: any directories in it are dropped (`../../x.mp3` and `C:\\x\\y.mp3` become
`x.mp3` and `y.mp3`), control and format characters (newlines, NUL, bidirectional overrides) are
removed, and what is left must end in an extension the pipeline takes for that kind and that the
settings allow. A folder is the same: each segment cleaned, `.` and `..` refused. The content type
S3 stores comes from the extension, never from the browser.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from medscribe.domain.encounter import Kind
from medscribe.domain.validation import AUDIO_FORMATS, TEXT_EXTENSIONS

UPLOAD_KINDS: dict[str, Kind] = {"audio": Kind.AUDIO, "text": Kind.TEXT}
# the input prefixes an upload form may write under (the workspace role may put objects there only)
UPLOAD_PREFIXES: tuple[str, ...] = tuple(f"{kind.value}/" for kind in UPLOAD_KINDS.values())
MAX_NAME_BYTES = 255  # a file name, as file systems allow
MAX_FOLDER_BYTES = 512  # the whole key stays far below S3's 1,024 bytes
AUDIO_CONTENT_TYPES = {"mp3": "audio/mpeg", "mp4": "audio/mp4", "m4a": "audio/mp4", "wav": "audio/wav",
                       "flac": "audio/flac", "ogg": "audio/ogg", "amr": "audio/amr", "webm": "audio/webm"}
TEXT_CONTENT_TYPES = {"txt": "text/plain; charset=utf-8", "text": "text/plain; charset=utf-8",
                      "md": "text/markdown; charset=utf-8"}
PIPELINE_EXTENSIONS: dict[Kind, frozenset[str]] = {Kind.AUDIO: frozenset(AUDIO_FORMATS),
                                                   Kind.TEXT: TEXT_EXTENSIONS}
_DIRECTORY = re.compile(r"[/\\]")


class InvalidUpload(ValueError):
    """What is wrong with an upload request (the message never repeats the file name)."""


@dataclass(frozen=True)
class UploadTarget:
    """Where one upload goes and what S3 is told about it."""

    kind: Kind
    key: str
    content_type: str

    @property
    def content_type_prefix(self) -> str:
        return self.content_type.split("/", 1)[0] + "/"


def _clean(segment: str) -> str:
    """The segment without control or format characters (category C*) and outer blanks."""
    kept = "".join(ch for ch in unicodedata.normalize("NFC", segment) if not unicodedata.category(ch).startswith("C"))
    return kept.strip()


def file_name(raw: str) -> str:
    """The user's file name without directories or invisible characters."""
    name = _clean(_DIRECTORY.split(raw)[-1])
    if name in ("", ".", ".."):
        raise InvalidUpload("the file name is empty")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidUpload(f"the file name is longer than {MAX_NAME_BYTES} bytes")
    return name


def folder_path(raw: str | None) -> str:
    """The folder as `a/b` (empty when none): each segment cleaned, no `.` or `..` segment."""
    segments = [_clean(part) for part in _DIRECTORY.split(raw or "")]
    segments = [part for part in segments if part]
    if any(part in (".", "..") for part in segments):
        raise InvalidUpload("a folder may not contain '.' or '..'")
    folder = "/".join(segments)
    if len(folder.encode("utf-8")) > MAX_FOLDER_BYTES:
        raise InvalidUpload(f"the folder is longer than {MAX_FOLDER_BYTES} bytes")
    return folder


def upload_target(kind: str, filename: str, folder: str | None, allowed: frozenset[str]) -> UploadTarget:
    """The key and content type of an upload of `filename` as `kind` into `folder`; `allowed` are the
    extensions the settings allow (only those the pipeline takes for the kind count)."""
    found = UPLOAD_KINDS.get(kind)
    if found is None:
        raise InvalidUpload(f"kind must be one of {', '.join(UPLOAD_KINDS)}")
    name = file_name(filename)
    extension = name.rsplit(".", 1)[-1].lower() if "." in name.strip(".") else ""
    accepted = PIPELINE_EXTENSIONS[found] & allowed
    if extension not in accepted:
        choices = ", ".join(sorted(accepted)) or "(none allowed)"
        raise InvalidUpload(f"a file of kind {kind} must end in one of: {choices}")
    where = folder_path(folder)
    key = "/".join(part for part in (found.value, where, name) if part)
    types = AUDIO_CONTENT_TYPES if found is Kind.AUDIO else TEXT_CONTENT_TYPES
    return UploadTarget(found, key, types[extension])


def checked_size(size: object, limit: int) -> int | None:
    """The size the browser announced (None when it did not), refused above `limit` or below 1 byte."""
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidUpload("size must be a whole number of bytes")
    if size < 1:
        raise InvalidUpload("the file is empty")
    if size > limit:
        raise InvalidUpload(f"the file is larger than the upload limit ({limit} bytes)")
    return size
