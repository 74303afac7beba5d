"""What the web application needs from the rest of the system, as ports: the workspace service
(versions, sign-off, audit, erasure), the search index (medscribe.domain.search.SearchIndex) and
the recordings (audio bytes or a link the browser can play).

Actor, Page and the errors mirror services/workspace.py (written in parallel on another branch; see
the issue 16 split): the web layer imports them from here only, so joining the two replaces their
definitions here with imports from there and changes nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Role = Literal["clinician", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "admin")
ACTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a Cognito sub (UUID) or local-<user>


@dataclass(frozen=True)
class Actor:
    """Who acts: a Cognito `sub` or `local-<os user>`, never a name; the role decides what is allowed."""

    actor_id: str
    role: Role

    def __post_init__(self) -> None:
        if not ACTOR_ID.fullmatch(self.actor_id):
            raise ValueError("actor_id must be 1-128 letters, digits, '.', '_' or '-'")
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: str | None


class WorkspaceError(Exception):
    """Base of the service's refusals; messages hold ids and numbers only (they reach the browser)."""


class NotFound(WorkspaceError):
    """No such encounter (or version): 404."""


class BadRequest(WorkspaceError):
    """A malformed request (cursor, date, limit, note, form): 400."""


class Conflict(WorkspaceError):
    """The request conflicts with the encounter's state: 409."""


class StaleVersion(Conflict):
    """The request names a version that is no longer the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the note is at version {current}; reload and edit that version")
        self.current = current


class NoteSigned(Conflict):
    """A signed version is immutable: an edit of it is an amendment and needs a reason."""


class Forbidden(WorkspaceError):
    """The actor's role may not do this: 403."""


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
