"""Amazon Transcribe API responses in their documented shapes (botocore's Stubber validates them
against the service model). Field values follow the API reference examples."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

WHEN = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def job(name: str, status: str, *, failure: str | None = None, media: str = "s3://input/audio/a.mp3",
        output: str = "https://s3.us-east-1.amazonaws.com/artifacts/transcripts/x/transcribe.json",
        language: str = "en-US") -> dict[str, Any]:
    body: dict[str, Any] = {
        "TranscriptionJobName": name,
        "TranscriptionJobStatus": status,
        "LanguageCode": language,
        "MediaFormat": "mp3",
        "Media": {"MediaFileUri": media},
        "StartTime": WHEN,
        "CreationTime": WHEN,
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2},
    }
    if status in ("COMPLETED", "FAILED"):
        body["CompletionTime"] = WHEN
    if status == "COMPLETED":
        body["MediaSampleRateHertz"] = 16000
        body["Transcript"] = {"TranscriptFileUri": output}
    if failure:
        body["FailureReason"] = failure
    return {"TranscriptionJob": body}


def error(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "StartTranscriptionJob")
