"""The workspace's recordings over the input bucket (moto): exactly the revision the encounter was
made from, read in byte ranges for the local stream, or a presigned GET of that version for AWS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.workspace.recordings import S3Recordings
from tests.adapters.conftest import put

FIRST = bytes(range(256)) * 8
SECOND = b"a later upload of the same key"


@pytest.fixture
def encounters(table: str, bucket: str) -> dict[str, Encounter]:
    repository = EncounterRepository(table)
    first = put(bucket, "audio/clinic a/visit.mp3", FIRST)
    put(bucket, "audio/clinic a/visit.mp3", SECOND)  # the key's current revision is another recording
    audio = Encounter.from_ref(ObjectRef(bucket, "audio/clinic a/visit.mp3", len(FIRST), first["ETag"].strip('"'),
                                         first["VersionId"]), Kind.AUDIO, EncounterStatus.DOCUMENTED,
                               media_format="mp3")
    text_ref = put(bucket, "text/note.txt", b"note")
    text = Encounter.from_ref(ObjectRef(bucket, "text/note.txt", 4, None, text_ref["VersionId"]), Kind.TEXT,
                              EncounterStatus.DOCUMENTED)
    for encounter in (audio, text):
        assert repository.create(encounter)
    return {"audio": audio, "text": text}


def test_the_local_stream_reads_ranges_of_the_encounters_revision(table: str, encounters: dict[str, Encounter]) -> None:
    recordings = S3Recordings(EncounterRepository(table), ObjectStore())
    audio = encounters["audio"].encounter_id
    found = recordings.find(audio)
    assert found is not None
    assert (found.link, found.size, found.content_type) == (f"/recordings/{audio}", len(FIRST), "audio/mpeg")
    assert recordings.read(audio, 100, 50) == FIRST[100:150]
    assert recordings.read(audio, len(FIRST) - 10, 1000) == FIRST[-10:]


def test_no_recording_for_text_or_unknown_encounters(table: str, encounters: dict[str, Encounter]) -> None:
    recordings = S3Recordings(EncounterRepository(table), ObjectStore())
    assert recordings.find(encounters["text"].encounter_id) is None
    assert recordings.find("enc-" + "0" * 32) is None
    assert recordings.read(encounters["text"].encounter_id, 0, 4) == b""


def sigv4_presigner(ref: ObjectRef, seconds: int) -> str:
    """What an adapter for AWS hands in: SigV4 (S3 refuses SigV2 links to SSE-KMS objects)."""
    client = boto3.client("s3", config=Config(signature_version="s3v4"))
    params = {"Bucket": ref.bucket, "Key": ref.key, "VersionId": ref.version_id}
    return str(client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))


def test_aws_gets_a_short_lived_presigned_get_of_that_version(table: str, encounters: dict[str, Encounter]) -> None:
    recordings = S3Recordings(EncounterRepository(table), ObjectStore(), presign=sigv4_presigner, presign_seconds=120)
    found = recordings.find(encounters["audio"].encounter_id)
    assert found is not None
    query = parse_qs(urlsplit(found.link).query)
    assert urlsplit(found.link).scheme == "https"
    assert query["versionId"] == [encounters["audio"].revision]
    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    fetched = requests.get(found.link, timeout=10)  # mock_aws answers requests' calls too
    assert fetched.status_code == 200
    assert fetched.content == FIRST  # the encounter's revision, not the key's latest
