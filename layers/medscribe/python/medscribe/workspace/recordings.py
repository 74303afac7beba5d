"""The recordings port over the input bucket: the exact revision an audio encounter was made from.

Locally the browser cannot reach the emulator, so the app streams the recording itself
(`/recordings/<id>`, HTTP Range requests served from `ObjectStore.read`). In AWS the bucket is
private and KMS-encrypted: the audio element gets a presigned GET of that revision from `presign`
(ref, seconds) -> URL, valid for `presign_seconds` (short: the link is a bearer credential for the
recording while it lasts). The presigner must sign with SigV4 (S3 refuses SigV2 links to SSE-KMS
objects, and a default S3 client in us-east-1 presigns with SigV2): it is an adapter's job and is
handed in by whoever builds the app for AWS.
"""

from __future__ import annotations

from collections.abc import Callable

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import Encounter, Kind, ObjectRef
from medscribe.domain.uploads import AUDIO_CONTENT_TYPES
from medscribe.workspace.ports import Recording

DEFAULT_PRESIGN_SECONDS = 300
Presigner = Callable[[ObjectRef, int], str]


def _ref(encounter: Encounter) -> ObjectRef:
    """Exactly the revision the encounter was made from (as the documentation stage reads a text input)."""
    return ObjectRef(bucket=encounter.source_bucket, key=encounter.source_key, size=encounter.size,
                     version_id=None if encounter.revision == "unversioned" else encounter.revision)


class S3Recordings:
    def __init__(self, repository: EncounterRepository, objects: ObjectStore, *, presign: Presigner | None = None,
                 presign_seconds: int = DEFAULT_PRESIGN_SECONDS) -> None:
        self.repository = repository
        self.objects = objects
        self.presign = presign  # None: streamed by the app (local)
        self.presign_seconds = presign_seconds

    def _audio(self, encounter_id: str) -> Encounter | None:
        encounter = self.repository.get(encounter_id)
        return encounter if encounter is not None and encounter.kind == Kind.AUDIO else None

    def find(self, encounter_id: str) -> Recording | None:
        encounter = self._audio(encounter_id)
        if encounter is None:
            return None
        extension = encounter.source_key.rsplit(".", 1)[-1].lower() if "." in encounter.source_key else ""
        content_type = AUDIO_CONTENT_TYPES.get(encounter.media_format or extension, "application/octet-stream")
        if self.presign is None:
            link = f"/recordings/{encounter_id}"
        else:
            link = self.presign(_ref(encounter), self.presign_seconds)
        return Recording(encounter_id, encounter.size, content_type, link)

    def read(self, encounter_id: str, start: int, length: int) -> bytes:
        encounter = self._audio(encounter_id)
        if encounter is None:
            return b""
        return self.objects.read(_ref(encounter), length, start)
