"""What the web application needs from the rest of the system, as ports: the workspace service
(versions, sign-off, audit, erasure), the search index (medscribe.domain.search.SearchIndex) and
the recordings (audio bytes or a link the browser can play).

The service's names mirror services/workspace.py (written in parallel; see the issue 16 split): the
web layer imports them from here only, so joining the two is a change to this module alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Role = Literal["clinician", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "admin")


@dataclass(frozen=True)
class Actor:
    """Who acts: a Cognito `sub` or `local-<os user>`, never a name; the role decides what is allowed."""

    actor_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: str | None = None


class WorkspaceError(Exception):
    """Base of the service's refusals; messages hold ids and numbers only (they reach the browser)."""


class NotFound(WorkspaceError):
    pass


class StaleVersion(WorkspaceError):
    """The edit names a version that is no longer the current one."""

    def __init__(self, message: str, current: int) -> None:
        super().__init__(message)
        self.current = current


class NoteSigned(WorkspaceError):
    """A signed version is immutable: an edit of it is an amendment and needs a reason."""


class Forbidden(WorkspaceError):
    pass


class InvalidEdit(WorkspaceError):
    """A saved note that is not a note of its template (unknown section, bad line numbers, too long)."""


class WorkspacePort(Protocol):
    """The workspace service. `encounter` returns {"record": {...}, "lines": [{"n", "speaker", "role",
    "text", "start", "end"}], "note": {"version", "state", "sections", "problems", ...} | None,
    "versions": [{"version", "state", "actor_id", "created_at", "changes", ...}], "emr": {...} | None}."""

    def list_encounters(self, actor: Actor, *, status: str | None = None, since: str | None = None,
                        folder: str | None = None, limit: int = 50, cursor: str | None = None) -> Page: ...

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

    def record(self, actor: Actor, action: str, encounter_id: str | None, version: int | None = None) -> None: ...


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
