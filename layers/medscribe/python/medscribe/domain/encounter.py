"""Encounter records: identity, kinds, and the status machine. Pure: no I/O."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import unquote_plus


class Kind(StrEnum):
    """What an input object is, decided by its key prefix in the input bucket."""

    AUDIO = "audio"
    TEXT = "text"
    GROUND_TRUTH = "ground-truth"
    KEYWORDS = "keywords"


INPUT_PREFIXES: tuple[str, ...] = tuple(f"{kind.value}/" for kind in Kind)


class EncounterStatus(StrEnum):
    RECEIVED = "RECEIVED"  # passed validation; audio waits here for a transcription slot
    REJECTED = "REJECTED"  # can never be processed (reason)
    TRANSCRIBING = "TRANSCRIBING"  # a transcription job holds a slot
    TRANSCRIBED = "TRANSCRIBED"  # numbered lines and CSV/DOCX artifacts written; documentation next
    DOCUMENTED = "DOCUMENTED"  # note (or EMR record) written and every citation verified
    NEEDS_REVIEW = "NEEDS_REVIEW"  # note written, but with problems a person must look at (listed)
    FAILED = "FAILED"  # a stage failed permanently (reason)


# Statuses no stage moves on from.
TERMINAL_STATUSES: frozenset[EncounterStatus] = frozenset({
    EncounterStatus.REJECTED, EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW, EncounterStatus.FAILED,
})
# Kinds that rest at RECEIVED (registered inputs of later stages: scoring, self-heal).
RESTING_KINDS: frozenset[Kind] = frozenset({Kind.GROUND_TRUTH, Kind.KEYWORDS})


def is_terminal(status: EncounterStatus, kind: Kind | None) -> bool:
    """Audio and text go on from RECEIVED; ground truth and keywords rest there."""
    return status in TERMINAL_STATUSES or (status is EncounterStatus.RECEIVED and kind in RESTING_KINDS)

SEQUENCER_WIDTH = 32
_HEX = re.compile(r"[0-9A-Fa-f]{1,64}")


def normalise_sequencer(sequencer: str | None) -> str | None:
    """S3 sequencers are hex strings of varying length: left-pad with zeros, then compare as text."""
    if not sequencer or not _HEX.fullmatch(sequencer):
        return None  # absent or not hex (some sample events carry placeholders): no ordering
    return sequencer.upper().rjust(SEQUENCER_WIDTH, "0")


def kind_of(key: str) -> Kind | None:
    for kind in Kind:
        if key.startswith(f"{kind.value}/"):
            return kind
    return None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ObjectRef:
    """One uploaded object as an S3 event names it, with the key already decoded."""

    bucket: str
    key: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None

    @classmethod
    def from_event(
        cls, *, bucket: str, raw_key: str, size: int | None, etag: str | None = None,
        version_id: str | None = None, sequencer: str | None = None,
    ) -> ObjectRef:
        # S3 notifications URL-encode keys with spaces as '+': unquote_plus handles both.
        return cls(
            bucket=bucket, key=unquote_plus(raw_key), size=int(size or 0), etag=(etag or None),
            version_id=(version_id or None), sequencer=normalise_sequencer(sequencer),
        )

    @property
    def revision(self) -> str:
        """The object revision: its version id when the bucket is versioned, else its ETag."""
        return self.version_id or self.etag or "unversioned"

    @property
    def encounter_id(self) -> str:
        """Deterministic id of this revision: no PHI, safe in logs and job names."""
        return "enc-" + _digest(self.bucket, self.key, self.revision)[:32]

    @property
    def source_id(self) -> str:
        """Id of the key regardless of revision, used to order events for the same key."""
        return "src-" + _digest(self.bucket, self.key)[:32]

    @property
    def is_folder_marker(self) -> bool:
        return self.key.endswith("/")

    @property
    def extension(self) -> str:
        name = self.key.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def utc_now() -> str:
    """Timestamps are ISO-8601 UTC with milliseconds, so they sort as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Encounter:
    """The record of one input object revision and where it is in the pipeline."""

    encounter_id: str
    kind: Kind | None
    status: EncounterStatus
    source_bucket: str
    source_key: str
    revision: str
    size: int
    created_at: str
    updated_at: str
    reason: str | None = None
    media_format: str | None = None
    duration_seconds: float | None = None

    @classmethod
    def from_ref(cls, ref: ObjectRef, kind: Kind | None, status: EncounterStatus, *, reason: str | None = None,
                 media_format: str | None = None, duration_seconds: float | None = None,
                 note_template: str | None = None, language: str | None = None) -> Encounter:
        now = utc_now()
        return cls(
            encounter_id=ref.encounter_id, kind=kind, status=status, source_bucket=ref.bucket,
            source_key=ref.key, revision=ref.revision, size=ref.size, created_at=now, updated_at=now,
            reason=reason, media_format=media_format, duration_seconds=duration_seconds, note_template=note_template,
            language=language,
        )

    job_name: str | None = None
    run: int | None = None  # 2, 3... after `medscribe reprocess`; None for the first run
    transcript_key: str | None = None
    artifacts: dict[str, str] | None = None
    line_count: int | None = None
    speakers: int | None = None
    language_code: str | None = None
    note_key: str | None = None
    review_key: str | None = None
    note_engine: str | None = None
    problem_count: int | None = None
    model: str | None = None  # the transcription model the job used ("baseline" or a self-heal model)
    # the entities stage (medscribe.services.entities_stage): entities/<id>.json, how many entities, and
    # their codes as "system:code" strings (no text), which search filters by
    entities_key: str | None = None
    entity_count: int | None = None
    entity_codes: tuple[str, ...] | None = None
    # the note template the upload chose (domain.template_choice); None: the deployment's note_template
    note_template: str | None = None
    # the language the upload asked for or, for a recording, the deployment's (domain.language_choice):
    # en-US | ko-KR | identify; None: a text note that named none (its text decides), or a record from
    # before languages were chosen per upload (the deployment's). `language_code` is what was transcribed.
    language: str | None = None

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.status, self.kind)
