"""Score handler: moto for DynamoDB/S3/SNS/SQS; transcript lines and ground truth from the Fareez
dialogues (tests/fixtures/dialogues/fareez-osce, CC BY 4.0, Fareez et al. 2022).

A PHI sentinel (a made-up name) is planted in the transcript and the ground truth: it must never
reach the email, the logs or the score record. Another name in the uploader's keys must stay out of
the email and the logs (the table is a PHI store: its Filename column is the key)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.scores import ScoreStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from tests.adapters.conftest import put
from tests.handlers.conftest import Context
from tests.handlers.test_document import fareez_lines, transcribed_encounter
from tests.handlers.test_ingest import sqs_event

SENTINEL = "Zebediah Quokkaworth"  # said in the visit (transcript and ground truth)
NAME_IN_KEY = "Ottoline Brackenbury"  # the uploader named the file after the patient
AUDIO_KEY = f"audio/clinic/{NAME_IN_KEY} visit.mp3"
TRUTH_KEY = f"ground-truth/clinic/{NAME_IN_KEY} visit.txt"


@pytest.fixture
def world(table: str, bucket: str) -> dict[str, Any]:
    boto3.client("s3").create_bucket(Bucket="artifacts")
    topic = boto3.client("sns").create_topic(Name="t")["TopicArn"]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="mail")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return {"table": table, "bucket": bucket, "mail": queue}


def mail(world: dict[str, Any]) -> list[str]:
    messages = boto3.client("sqs").receive_message(QueueUrl=world["mail"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["Subject"] + "\n" + json.loads(m["Body"])["Message"] for m in messages]


def transcribed(world: dict[str, Any], lines: list[dict[str, Any]]) -> str:
    return transcribed_encounter(world, lines, key=AUDIO_KEY, model="baseline")


def ground_truth(world: dict[str, Any], text: str) -> str:
    body = text.encode()
    response = put(world["bucket"], TRUTH_KEY, body)
    ref = ObjectRef(bucket=world["bucket"], key=TRUTH_KEY, size=len(body), version_id=response["VersionId"])
    EncounterRepository(world["table"]).create(Encounter.from_ref(ref, Kind.GROUND_TRUTH, EncounterStatus.RECEIVED))
    return ref.encounter_id


def ready(encounter_id: str) -> dict[str, Any]:
    return sqs_event({"version": "0", "id": "e1", "detail-type": "Encounter Ready For Scoring",
                      "source": "medscribe", "account": "123456789012", "time": "2026-11-21T10:00:00Z",
                      "region": "us-east-1", "resources": [], "detail": {"encounter_id": encounter_id, "stage": "dev"}})


def lines_with_sentinel() -> tuple[list[dict[str, Any]], str]:
    lines = fareez_lines(count=20)
    reference = "\n".join(line["text"] for line in lines) + f" My name is {SENTINEL}."
    lines[3]["text"] += " Zebediah Quokka worth"  # misrecognised: the sentinel becomes missed words
    return lines, reference


def test_ground_truth_first_then_transcript_scores_once_per_model(load_handler, world, capsys) -> None:  # type: ignore[no-untyped-def]
    lines, reference = lines_with_sentinel()
    truth = ground_truth(world, reference)
    score = load_handler("score")
    assert score.handler(ready(truth), Context()) == {"batchItemFailures": []}  # no transcript yet
    assert ScoreStore(world["table"]).all_scores() == []
    assert mail(world) == []

    audio = transcribed(world, lines)
    assert score.handler(ready(audio), Context()) == {"batchItemFailures": []}
    (row,) = ScoreStore(world["table"]).all_scores()
    assert (row.encounter_id, row.model, row.metric) == (audio, "baseline", "wer")
    assert 0 < row.error_rate < 0.5
    assert row.substitutions + row.deletions >= 1
    item = boto3.client("dynamodb").get_item(TableName=world["table"],
                                             Key={"pk": {"S": f"ENC#{audio}"}, "sk": {"S": "SCORE#baseline"}})["Item"]
    # the score refers to both encounters by id; the uploaders' keys stay in the encounter items (issue 14)
    assert item["ground_truth_encounter_id"] == {"S": truth}
    assert "filename" not in item
    assert "ground_truth_key" not in item
    assert NAME_IN_KEY not in json.dumps(item, ensure_ascii=False)

    details = json.loads(boto3.client("s3").get_object(
        Bucket="artifacts", Key=f"scores/{audio}/baseline.json")["Body"].read())
    assert "quokkaworth" in details["missed_words"]  # missed words live in the encrypted artifacts bucket

    # a repeated event (or the ground truth's) rewrites the same record
    assert score.handler(ready(truth), Context()) == {"batchItemFailures": []}
    assert len(ScoreStore(world["table"]).all_scores()) == 1

    reports = boto3.client("s3").list_objects_v2(Bucket="artifacts", Prefix="reports/scores/")["Contents"]
    csv_text = boto3.client("s3").get_object(Bucket="artifacts", Key=reports[0]["Key"])["Body"].read().decode()
    assert csv_text.startswith("Filename,Accuracy,Index,Timestamp,")
    assert f"\n{audio}," in csv_text
    assert NAME_IN_KEY not in csv_text
    assert details["ground_truth_encounter_id"] == truth
    assert NAME_IN_KEY not in json.dumps(details)

    emails = mail(world)
    assert len(emails) == 2
    assert all(audio in email and "baseline" in email for email in emails)
    assert all("Leaderboard" in email for email in emails)
    logged = capsys.readouterr()
    item = boto3.client("dynamodb").get_item(TableName=world["table"],
                                             Key={"pk": {"S": f"ENC#{audio}"}, "sk": {"S": "SCORE#baseline"}})
    record = json.dumps(item["Item"]).lower()
    for where in (*emails, logged.out, logged.err):
        assert "zebediah" not in where.lower()
        assert "quokka" not in where.lower()
        assert "brackenbury" not in where.lower()
        assert lines[5]["text"] not in where  # no transcript text
    assert "quokka" not in record  # the score record: numbers, ids and the keys (not the missed words)
    assert "missed_words" not in record


def test_transcript_without_ground_truth_is_not_scored(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    audio = transcribed(world, fareez_lines(count=5))
    assert load_handler("score").handler(ready(audio), Context()) == {"batchItemFailures": []}
    assert ScoreStore(world["table"]).all_scores() == []
    assert mail(world) == []


def test_korean_is_scored_by_characters(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    lines = [{"n": 1, "speaker": "spk_0", "start": 0.0, "end": 1.0, "text": "무릎이 아파요", "confidence": 0.9}]
    audio = transcribed(world, lines)
    EncounterRepository(world["table"]).transition(audio, EncounterStatus.TRANSCRIBED, EncounterStatus.TRANSCRIBED,
                                                   language_code="ko-KR")
    ground_truth(world, "무릎이 아파요.")
    load_handler("score").handler(ready(audio), Context())
    (row,) = ScoreStore(world["table"]).all_scores()
    assert (row.metric, row.error_rate) == ("cer", 0.0)


def test_one_encounter_failing_does_not_hold_up_the_others(load_handler, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    lines, reference = lines_with_sentinel()
    ground_truth(world, reference)
    audio = transcribed(world, lines)
    score = load_handler("score")
    real_pairs = score.SERVICE.pairs

    def pairs(encounter_id: str):  # type: ignore[no-untyped-def]
        if encounter_id == "enc-throttled":
            raise RuntimeError("ProvisionedThroughputExceededException")
        if encounter_id == "enc-gone":
            from medscribe.domain.errors import PermanentError
            raise PermanentError("transcript output is missing from the artifacts bucket")
        return real_pairs(encounter_id)

    monkeypatch.setattr(score.SERVICE, "pairs", pairs)
    event = ready("enc-throttled")
    event["Records"] += [dict(ready(i)["Records"][0], messageId=f"msg-{n}") for n, i in
                         ((1, "enc-gone"), (2, audio))]
    # the transient one is retried alone; the permanent one is dropped; the good one is scored and reported
    assert score.handler(event, Context()) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert [row.encounter_id for row in ScoreStore(world["table"]).all_scores()] == [audio]
    assert len(mail(world)) == 1


@pytest.mark.parametrize("audio_form", ["NFC", "NFD"])
def test_a_korean_name_spelled_nfc_on_one_side_and_nfd_on_the_other_is_paired(  # type: ignore[no-untyped-def]
        load_handler, world, audio_form: str) -> None:
    """macOS writes file names decomposed (NFD), most other systems composed (NFC); S3 compares keys
    byte for byte. A recording and its ground truth are paired whichever side arrives first."""
    import unicodedata

    truth_form = "NFD" if audio_form == "NFC" else "NFC"
    lines, reference = lines_with_sentinel()
    audio = transcribed_encounter(world, lines, key=unicodedata.normalize(audio_form, "audio/진료/무릎 통증.mp3"),
                                  model="baseline")
    body = reference.encode()
    truth_key = unicodedata.normalize(truth_form, "ground-truth/진료/무릎 통증.txt")
    response = put(world["bucket"], truth_key, body)
    ref = ObjectRef(bucket=world["bucket"], key=truth_key, size=len(body), version_id=response["VersionId"])
    EncounterRepository(world["table"]).create(Encounter.from_ref(ref, Kind.GROUND_TRUTH, EncounterStatus.RECEIVED))
    score = load_handler("score")
    assert score.handler(ready(ref.encounter_id), Context()) == {"batchItemFailures": []}  # from the truth's side
    assert [row.encounter_id for row in ScoreStore(world["table"]).all_scores()] == [audio]
    assert score.handler(ready(audio), Context()) == {"batchItemFailures": []}  # and from the audio's side
    assert len(ScoreStore(world["table"]).all_scores()) == 1


def test_a_ground_truth_without_words_ends_rejected_with_its_reason(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    lines, _reference = lines_with_sentinel()
    audio = transcribed(world, lines)
    truth = ground_truth(world, " ...  \n\n - ")  # was: waited RECEIVED forever, with a log line
    assert load_handler("score").handler(ready(audio), Context()) == {"batchItemFailures": []}
    rejected = EncounterRepository(world["table"]).get(truth)
    assert rejected is not None
    assert rejected.status is EncounterStatus.REJECTED
    assert rejected.reason == "ground truth has no words to score against"
    assert ScoreStore(world["table"]).all_scores() == []
