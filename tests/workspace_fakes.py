"""In-memory stand-ins for the workspace app's ports, keeping the service's rules (services/workspace.py):
used by tests/unit/test_workspace_app.py, tests/unit/test_workspace_uploads.py and tests/browser/test_workspace.py."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from medscribe.domain.search import SearchHit
from medscribe.workspace.ports import (
    Actor,
    BadRequest,
    Conflict,
    Forbidden,
    NoteSigned,
    NotFound,
    Page,
    Recording,
    StaleVersion,
)

ATTACK = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ENC = "enc-" + "a" * 32
OTHER = "enc-" + "b" * 32


SECTIONS = [{"name": "Chief complaint", "items": [{"text": "Chest pain on exertion", "lines": [2]}]},
            {"name": "Plan", "items": [{"text": "Stress test", "lines": [3, 99]}]}]
LINES = [{"n": 1, "speaker": "spk_0", "role": "clinician", "text": "What brings you in?", "start": 0.5, "end": 1.5},
         {"n": 2, "speaker": "spk_1", "role": "patient", "text": ATTACK, "start": 1.6, "end": 3.0},
         {"n": 3, "speaker": "spk_0", "role": "clinician", "text": "A stress test.", "start": 3.1, "end": 4.0}]


@dataclass
class FakeWorkspace:
    """The service's rules (services/workspace.py) in memory: version 0 is the pipeline's; a save or a
    signature names the current version (else StaleVersion); a signed version changes only by an
    amendment with a reason (else NoteSigned); audit, CSV and erasure are for admins."""

    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    signed: dict[str, int] = field(default_factory=dict)
    audit_log: list[dict[str, Any]] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for encounter_id in (ENC, OTHER):
            self.versions[encounter_id] = [{"version": 0, "state": "DRAFT", "actor_id": "pipeline",
                                            "created_at": "2026-12-04T00:00:00.000Z", "changes": [],
                                            "sections": copy.deepcopy(SECTIONS), "problems": []}]

    def _log(self, actor: Actor, action: str, encounter_id: str | None, version: int | None = None) -> None:
        self.audit_log.append({"time": f"2026-12-04T00:00:{len(self.audit_log):02d}.000Z",
                               "actor_id": actor.actor_id, "role": actor.role, "action": action,
                               "encounter_id": encounter_id, "version": version})

    def _current(self, encounter_id: str) -> dict[str, Any]:
        if encounter_id not in self.versions:
            raise NotFound("no such encounter")
        return self.versions[encounter_id][-1]

    @staticmethod
    def _meta(version: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in version.items() if k not in ("sections", "problems")}

    def list_encounters(self, actor: Actor, *, status: str | None = None, since: str | None = None,
                        folder: str | None = None, kind: str | None = None, limit: int = 50,
                        cursor: str | None = None) -> Page:
        ids = [i for i in sorted(self.versions) if status in (None, "DOCUMENTED") and kind in (None, "audio")]
        start = int(cursor or 0)
        items = [{"encounter_id": i, "kind": "audio", "status": "DOCUMENTED", "updated_at": "2026-12-04T00:00:00Z",
                  "problem_count": 0, "language_code": "en-US"} for i in ids[start:start + limit]]
        return Page(items, str(start + limit) if start + limit < len(ids) else None)

    def encounter(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        current = self._current(encounter_id)
        self._log(actor, "view", encounter_id, current["version"])
        return {"record": {"encounter_id": encounter_id, "kind": "audio", "status": "DOCUMENTED"},
                "lines": copy.deepcopy(LINES), "emr": None,
                "note": {"template": "hp", "lines": [{k: v for k, v in line.items() if k not in ("start", "end")}
                                                     for line in LINES],
                         "sections": copy.deepcopy(current["sections"]), "problems": current["problems"],
                         "version": current["version"]},
                "version": self._meta(current), "problems": current["problems"],
                "signed_version": self.signed.get(encounter_id),
                "versions": [self._meta(v) for v in self.versions[encounter_id]], "scores": []}

    def save_note(self, actor: Actor, encounter_id: str, *, base_version: int, note: dict[str, Any],
                  amend_reason: str | None = None) -> dict[str, Any]:
        current = self._current(encounter_id)
        if base_version != current["version"]:
            raise StaleVersion(current["version"])
        amending = self.signed.get(encounter_id) == base_version
        if not all(isinstance(s.get("name"), str) for s in note.get("sections", [])):
            raise BadRequest("section 1 has no name")
        if amending and not amend_reason:
            raise NoteSigned(f"version {base_version} is signed: an edit needs an amendment reason")
        saved = {"version": base_version + 1, "state": "DRAFT", "actor_id": actor.actor_id,
                 "created_at": "2026-12-04T00:01:00.000Z", "changes": [{"change": "edited", "section": "Plan",
                                                                        "item": 1}],
                 "sections": copy.deepcopy(note["sections"]), "problems": []}
        self.versions[encounter_id].append(saved)
        self._log(actor, "amend" if amending else "edit", encounter_id, saved["version"])
        return {**self._meta(saved), "note": {"sections": saved["sections"]}, "problems": []}

    def sign(self, actor: Actor, encounter_id: str, *, version: int) -> dict[str, Any]:
        current = self._current(encounter_id)
        if version != current["version"]:
            raise StaleVersion(current["version"])
        if self.signed.get(encounter_id) == version:
            raise NoteSigned(f"version {version} is signed already")
        current["state"] = "SIGNED"
        self.signed[encounter_id] = version
        self._log(actor, "sign", encounter_id, version)
        return self._meta(current)

    def audit_for_encounter(self, actor: Actor, encounter_id: str, *, limit: int = 100,
                            cursor: str | None = None) -> Page:
        if not re.fullmatch(r"enc-[0-9a-f]{32}", encounter_id):  # the trail outlives an erasure: ids only
            raise NotFound("not an encounter id")
        return Page([e for e in self.audit_log if e["encounter_id"] == encounter_id][:limit], None)

    def _admin(self, actor: Actor) -> None:
        if not actor.is_admin:
            raise Forbidden("this needs the admin role")

    def audit(self, actor: Actor, *, actor_id: str | None = None, since: str | None = None, limit: int = 100,
              cursor: str | None = None) -> Page:
        self._admin(actor)
        return Page([e for e in self.audit_log if actor_id in (None, e["actor_id"])][:limit], None)

    def audit_csv(self, actor: Actor, *, actor_id: str | None = None, since: str | None = None) -> str:
        self._admin(actor)
        rows = [f"{e['time']},{e['actor_id']},{e['role']},{e['action']},{e['encounter_id'] or ''}"
                for e in self.audit_log if actor_id in (None, e["actor_id"])]
        self._log(actor, "export", None)
        return "\n".join(["time,actor_id,role,action,encounter_id", *rows]) + "\n"

    def erase(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        self._admin(actor)
        self._current(encounter_id)
        del self.versions[encounter_id]
        self.erased.append(encounter_id)
        self._log(actor, "erase", encounter_id)
        return {"erased": [encounter_id]}

    def export(self, actor: Actor, encounter_id: str) -> dict[str, Any]:
        self._current(encounter_id)
        signed = self.signed.get(encounter_id)
        if signed is None:
            raise Conflict(f"encounter {encounter_id} has no signed version to export: sign a version first")
        version = self.versions[encounter_id][signed]
        self._log(actor, "export", encounter_id, signed)
        return {"encounter_id": encounter_id,
                "version": {**self._meta(version), "signed_by": "local-tester", "signed_role": "admin",
                            "signed_at": "2026-12-04T00:02:00.000Z"},
                "note": {"template": "hp", "sections": copy.deepcopy(version["sections"]), "version": signed,
                         "lines": [{k: v for k, v in line.items() if k not in ("start", "end")} for line in LINES]}}

    def record(self, actor: Actor, action: str, encounter_id: str | None, version: int | None = None) -> None:
        self._log(actor, action, encounter_id, version)


class FakeSearch:
    def upsert(self, document: Any) -> None: ...

    def delete(self, encounter_id: str) -> None: ...

    def apply(self, upserts: Any, deletes: Any) -> set[str]:
        return set()

    def search(self, text: str, *, status: str | None = None, since: str | None = None,
               limit: int = 20, code: str | None = None) -> list[SearchHit]:
        return [SearchHit(ENC, "DOCUMENTED", "2026-12-04T00:00:00Z", 1.5, f"… {ATTACK} {text} …")]


AUDIO = bytes(range(256)) * 40  # 10240 bytes


class FakeRecordings:
    """ENC's recording (`audio`), streamed by the app or, with `link`, played from elsewhere."""

    def __init__(self, link: str | None = None, audio: bytes = AUDIO, content_type: str = "audio/mpeg") -> None:
        self.link = link
        self.audio = audio
        self.content_type = content_type

    def find(self, encounter_id: str) -> Recording | None:
        if encounter_id != ENC:
            return None
        return Recording(ENC, len(self.audio), self.content_type, self.link or f"/recordings/{ENC}")

    def read(self, encounter_id: str, start: int, length: int) -> bytes:
        return self.audio[start:start + length]
