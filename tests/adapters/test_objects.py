import boto3
import pytest

from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import ObjectRef
from medscribe.domain.errors import PermanentError
from tests.adapters.conftest import put


def test_reads_the_named_version_and_only_the_header(bucket: str) -> None:
    v1 = put(bucket, "audio/a.mp3", b"ID3" + b"1" * 100)
    put(bucket, "audio/a.mp3", b"ID3" + b"2" * 100)
    ref = ObjectRef(bucket=bucket, key="audio/a.mp3", size=103, version_id=v1["VersionId"])
    assert ObjectStore().read(ref, 8) == b"ID311111"


def test_missing_object_is_permanent(bucket: str) -> None:
    with pytest.raises(PermanentError, match="no longer exists"):
        ObjectStore().read(ObjectRef(bucket=bucket, key="audio/gone.mp3", size=1), 8)


def test_tags_are_those_of_the_named_version(bucket: str) -> None:
    s3 = boto3.client("s3")
    v1 = s3.put_object(Bucket=bucket, Key="audio/a.wav", Body=b"1", Tagging="medscribe-template=DAP")
    s3.put_object(Bucket=bucket, Key="audio/a.wav", Body=b"2", Tagging="medscribe-template=SOAP&x=y")
    ref = ObjectRef(bucket=bucket, key="audio/a.wav", size=1, version_id=v1["VersionId"])
    assert ObjectStore().tags(ref) == {"medscribe-template": "DAP"}
    assert ObjectStore().tags(ObjectRef(bucket=bucket, key="audio/a.wav", size=1)) == {
        "medscribe-template": "SOAP", "x": "y"}
    with pytest.raises(PermanentError, match="no longer exists"):
        ObjectStore().tags(ObjectRef(bucket=bucket, key="audio/gone.wav", size=1))
