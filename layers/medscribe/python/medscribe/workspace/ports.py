"""What the web application needs from the rest of the system, as ports: the workspace service
(versions, sign-off, audit, erasure, the signed note's export), the search index
(medscribe.domain.search.SearchIndex), the recordings (audio bytes or a link the browser can play) and
the uploads (a form the browser posts a file with, straight to the input bucket).

Actor, Page and the errors are the service's own (domain.audit, services.workspace), re-exported here:
the web layer imports them from this module only, and an error the service raises is the one the app
maps to its HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from medscribe.domain.audit import ACTOR_ID, ROLES, Actor, Role
from medscribe.domain.encounter import Kind
from medscribe.services.workspace import (
    BadRequest,
    Conflict,
    Forbidden,
    NoteSigned,
    NotFound,
    Page,
    StaleVersion,
    WorkspaceError,
)

__all__ = [
    "ACTOR_ID",
    "ROLES",
    "Actor",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "NoteSigned",
    "Page",
    "Recording",
    "Recordings",
    "Role",
    "StaleVersion",
    "UploadForm",
    "Uploads",
    "WorkspaceError",
    "WorkspacePort",
]


class WorkspacePort(Protocol):
    """The workspace service. `encounter` returns {"encounter": {the record}, "lines": [{"n", "speaker",
    "role", "text", "start", "end"}], "note": {"version", "sections", "problems", ...} | None, "version":
    {"version", "state", ...} | None (the current version), "signed_version": int | None, "versions":
    [{"version", "state", "actor_id", "created_at", "changes", ...}], "emr": {...} | None, ...}; audit
    events are {"time", "actor_id", "role", "action", "encounter_id", "version"}."""

    def list_encounters(self, actor: Actor, *, status: str | None = None, since: str | None = None,
                        folder: str | None = None, kind: str | None = None, limit: int = 50,
                        cursor: str | None = None) -> Page: ...

    def encounter(self, actor: Actor, encounter_id: str) -> dict[str, Any]: ...

    def save_note(self, actor: Actor, encounter_id: str, *, base_version: int, note: dict[str, Any],
                  amend_reason: str | None = None) -> dict[str, Any]: ...

    def sign(self, actor: Actor, encounter_id: str, *, version: int) -> dict[str, Any]: ...

    def audit_for_encounter(self, actor: Actor, encounter_id: str, *, limit: int = 100,
                            cursor: str | None = None) -> Page: ...

    def audit(self, actor: Actor, *, actor_id: str | None = None, since: str | None = None, limit: int = 100,
              cursor: str | None = None) -> Page: ...

    def audit_csv(self, actor: Actor, *, actor_id: str | None = None, since: str | None = None) -> str: ...

    def erase(self, actor: Actor, encounter_id: str) -> dict[str, Any]: ...

    def export(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        """The signed version ({"version": {...}, "note": {...}}); Conflict when none is signed; audited."""
        ...

    def record(self, actor: Actor, action: str, encounter_id: str | None, version: int | None = None) -> None: ...

    def export_fhir(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        """The encounter's FHIR R4 document Bundle (signed version, else preliminary), audited as an export."""
        ...


@dataclass(frozen=True)
class Recording:
    """An encounter's recording: its size and type, and a link the browser plays (a path of this app
    that streams it, or a short-lived presigned URL)."""

    encounter_id: str
    size: int
    content_type: str
    link: str


class Recordings(Protocol):
    def find(self, encounter_id: str) -> Recording | None:
        """The recording of an audio encounter; None for any other kind or an unknown id."""
        ...

    def read(self, encounter_id: str, start: int, length: int) -> bytes:
        """`length` bytes from `start` (the app's own stream serves HTTP Range requests from this)."""
        ...


@dataclass(frozen=True)
class UploadForm:
    """A presigned POST: the browser posts `fields` and then the file (as `file`, last) to `url`, which
    writes exactly `key` in the input bucket."""

    url: str
    fields: dict[str, str]
    key: str


class Uploads(Protocol):
    @property
    def origin(self) -> str:
        """Where the forms post to (`scheme://host[:port]`): the page's CSP allows connecting there only."""
        ...

    def limit(self, kind: Kind) -> int:
        """The largest file a form of this kind accepts."""
        ...

    @property
    def extensions(self) -> tuple[str, ...]:
        """The file extensions a form is given for."""
        ...

    def form(self, kind: str, filename: str, folder: str | None, size: int | None) -> UploadForm:
        """A form for one file (BadRequest for a kind, name, folder or size the settings do not allow)."""
        ...
