"""Put files into the input bucket and wait for their encounters to reach a terminal status.

Key rule for a folder upload: a file whose first path component is an input prefix (audio, text,
ground-truth, keywords) keeps its relative path; any other file goes under audio/ when its
extension is an audio format Transcribe takes, else under text/. Hidden files and folders
(starting with ".") are skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.validation import AUDIO_FORMATS
from medscribe_local.state import StatePaths

POLL_SECONDS = 0.2
# Reads are the expensive part of waiting (about 3 ms per record on the emulator), and encounters
# finish roughly in upload order: a round stops after this many unfinished ones.
UNFINISHED_PER_ROUND = 3


def input_key(relative: PurePosixPath) -> str:
    if relative.parts and relative.parts[0] in {kind.value for kind in Kind}:
        return relative.as_posix()
    extension = relative.suffix.lower().lstrip(".")
    prefix = Kind.AUDIO if extension in AUDIO_FORMATS else Kind.TEXT
    return f"{prefix.value}/{relative.as_posix()}"


def plan_folder(folder: Path) -> list[tuple[Path, str]]:
    """(file, input bucket key) for every non-hidden file under `folder`, in a stable order."""
    planned = []
    for path in sorted(folder.rglob("*")):
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            planned.append((path, input_key(relative)))
    return planned


@dataclass(frozen=True)
class Upload:
    key: str
    encounter_id: str
    version_id: str
    size: int


def upload(bucket: str, key: str, body: bytes, repository: EncounterRepository | None = None) -> Upload:
    """Put one object; the encounter id is computed the way ingest computes it from the S3 event. With
    `repository`, bytes this key already held (a folder run again) map to the encounter that holds
    them, as ingest maps them (no new encounter is made for them)."""
    response = aws_clients.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    version_id = response["VersionId"]
    ref = ObjectRef(bucket=bucket, key=key, size=len(body), etag=response["ETag"].strip('"'), version_id=version_id)
    encounter_id = ref.encounter_id
    if repository is not None:
        fingerprint = ObjectStore().fingerprint(ref)
        holder = repository.content_holder(ref, fingerprint) if fingerprint else None
        if holder is not None and repository.get(holder.encounter_id) is not None:
            encounter_id = holder.encounter_id
    return Upload(key=key, encounter_id=encounter_id, version_id=version_id, size=len(body))


@dataclass(frozen=True)
class WaitResult:
    encounters: dict[str, Encounter]  # the latest record seen for each id that exists
    pending: list[str]  # ids with no record yet, or not yet terminal (or, waiting until coded, not coded)

    @property
    def complete(self) -> bool:
        return not self.pending


def wait_for_terminal(
    repository: EncounterRepository, encounter_ids: Iterable[str], timeout: float,
    on_progress: Callable[[int, int], None] | None = None, *, until_coded: bool = False,
) -> WaitResult:
    """Poll until every encounter exists and is terminal, or until `timeout` seconds pass. With
    `until_coded`, a documented encounter (DOCUMENTED, NEEDS_REVIEW) is finished once the entities
    stage has recorded it too (its last write: the pipeline's work on it is over)."""
    wanted = list(dict.fromkeys(encounter_ids))
    seen: dict[str, Encounter] = {}
    deadline = time.monotonic() + timeout

    def finished(encounter: Encounter | None) -> bool:
        if encounter is None or not encounter.is_terminal:
            return False
        documented = encounter.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW)
        return not (until_coded and documented and encounter.entity_count is None)

    while True:
        final = time.monotonic() >= deadline  # the last round reads every pending record
        unfinished = 0
        for encounter_id in [i for i in wanted if not finished(seen.get(i))]:
            found = repository.get(encounter_id)
            if found is not None:
                seen[encounter_id] = found
            if not finished(found):
                unfinished += 1
                if unfinished >= UNFINISHED_PER_ROUND and not final:
                    break
        pending = [i for i in wanted if not finished(seen.get(i))]
        if on_progress:
            on_progress(len(wanted) - len(pending), len(wanted))
        if not pending or final:
            return WaitResult(seen, pending)
        time.sleep(POLL_SECONDS)


def encounter_json(encounter: Encounter) -> dict[str, Any]:
    return asdict(encounter)


@dataclass(frozen=True)
class ResultRow:
    encounter_id: str
    kind: str | None
    source_key: str
    status: str
    reason: str | None
    file: str | None = None


def result_rows(uploads: Iterable[tuple[Upload, str | None]], outcome: WaitResult) -> list[ResultRow]:
    rows = []
    for item, file in uploads:
        encounter = outcome.encounters.get(item.encounter_id)
        rows.append(ResultRow(
            encounter_id=item.encounter_id,
            kind=encounter.kind.value if encounter and encounter.kind else None,
            source_key=item.key,
            status=encounter.status.value if encounter else "MISSING",
            reason=encounter.reason if encounter else None,
            file=file,
        ))
    return rows


def write_results(paths: StatePaths, rows: list[ResultRow], summary: dict[str, Any]) -> Path:
    folder = paths.runs / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder.mkdir(parents=True, exist_ok=False)
    path = folder / "results.json"
    path.write_text(
        json.dumps({**summary, "encounters": [asdict(row) for row in rows]}, indent=2, ensure_ascii=False),
        encoding="utf-8",
    )
    return path


def wait_for_index(
    indexed_versions: Callable[[], dict[str, str]], encounters: dict[str, Encounter], timeout: float,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Poll until the search index holds each encounter's record as of its latest update (the index
    route runs after the status change); returns the ids still behind when `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        versions = indexed_versions()
        behind = [i for i, e in encounters.items() if versions.get(i, "") < e.updated_at]
        if on_progress:
            on_progress(len(encounters) - len(behind), len(encounters))
        if not behind or time.monotonic() >= deadline:
            return behind
        time.sleep(POLL_SECONDS)


def key_is_safe(key: str) -> bool:
    """Whether `key` is free of control characters (a line break in a file name, an escape sequence):
    S3 would take it, but every listing, log line and terminal showing it would break."""
    return not any(ord(character) < 32 or 127 <= ord(character) < 160 for character in key)
