"""PHI sentinels planted in a ground truth, where they are exactly the rare missed words self-heal learns
from: a made-up patient's name (English "Zebulon Quackenbush", Korean "홍길순"), a date, a record
number and an e-mail address, said in the visit and missed by the baseline transcript, beside a
clinical word the baseline also missed ("sputum", "가래").

The clinical word is learned; the sentinels reach none of: the vocabulary table (the Transcribe
vocabulary and, locally, the Whisper hot words made from it), the model record and its
selfheal/models/<name>.json (`learned_keywords`, `phrases`), the language-model training text, any
Wikipedia request, the score and model items, the CSV reports, the emails, the logs or the metrics.
Both engines: the offline one (local runtime, Korean) and Comprehend Medical (AWS, English), even when
Comprehend Medical mistakes a lower-cased name for a condition."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import ANY, Stubber

from medscribe.domain.selfheal import eval_job_name, eval_output_key
from medscribe.settings import LanguageMode
from medscribe_local.transcribe_vocabularies import Vocabulary, parse_vocabulary_file
from tests.handlers.conftest import Context
from tests.handlers.test_document import fareez_lines, transcribed_encounter
from tests.handlers.test_malformed_messages import log as log
from tests.handlers.test_score import AUDIO_KEY, ground_truth, mail, ready
from tests.handlers.test_score import world as world
from tests.handlers.test_selfheal import TICK, comprehend, entities, model_artifact, transcribe_output, vocabulary_rows
from tests.transcribe_shapes import WHEN, job

__all__ = ["comprehend", "log", "world"]

ENGLISH_PLANTED = "The patient is Zebulon Quackenbush, born 1962-03-04, MRN 48213377, zebulon.q@example.com."
ENGLISH_SENTINELS = ("zebulon", "quackenbush", "1962", "48213377", "example.com")
KOREAN_PLANTED = "환자 홍길순 씨는 1962년 3월 4일생이고 등록번호 48213377 입니다. 홍길순이 말했어요."
KOREAN_SENTINELS = ("홍길순", "1962", "48213377")
CLM_ROLE = "arn:aws:iam::123456789012:role/clm"


class RecordingSession:
    """A requests.Session stand-in for the Wikipedia corpus: keeps each request's full URL and answers
    with a short extract (the corpus's real code builds the request and parses the answer)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def get(self, url: str, params: dict[str, str], headers: dict[str, str], timeout: float) -> Any:
        self.urls.append(str(requests.Request("GET", url, params=params).prepare().url))
        page = {"pageid": 1, "title": params["titles"], "extract": f"{params['titles']} is a clinical finding."}
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps({"query": {"pages": {"1": page}}}).encode()
        return response


def baseline_scored(load_handler, world, planted: str, language: str = "en-US") -> str:  # type: ignore[no-untyped-def]
    """A scored baseline transcript that missed the planted sentence and a clinical word."""
    if language == "en-US":
        lines = fareez_lines(count=12)
        reference = "\n".join(line["text"] for line in lines) + f" I cough up sputum. {planted}"
    else:
        lines = [{"n": 1, "speaker": "spk_0", "start": 0.0, "end": 2.0, "text": "무릎이 아프고 기침이 나요",
                  "confidence": 0.9}]
        reference = f"무릎이 아프고 기침이 나요. 가래가 있어요. {planted}"
    audio = transcribed_encounter(world, lines, language=language, key=AUDIO_KEY, model="baseline")
    ground_truth(world, reference)
    load_handler("score").handler(ready(audio), Context())
    return audio


def missed_words(audio: str) -> list[str]:
    body = boto3.client("s3").get_object(Bucket="artifacts", Key=f"scores/{audio}/baseline.json")["Body"]
    return list(json.loads(body.read())["missed_words"])


def hot_words(model: str) -> str:
    """The Whisper hot words the local Transcribe service makes of this vocabulary table."""
    table = "\n".join(vocabulary_rows(model))
    return Vocabulary(model, "en-US", parse_vocabulary_file(table)).hotwords() or ""


def everything_written(world: dict[str, Any]) -> str:
    """Every item of the table and every object under selfheal/ and reports/ in the artifacts bucket."""
    items = boto3.client("dynamodb").scan(TableName=world["table"])["Items"]
    s3 = boto3.client("s3")
    bodies = []
    for prefix in ("selfheal/", "reports/"):
        for entry in s3.list_objects_v2(Bucket="artifacts", Prefix=prefix).get("Contents", []):
            bodies.append(s3.get_object(Bucket="artifacts", Key=entry["Key"])["Body"].read().decode("utf-8"))
    return json.dumps(items, ensure_ascii=False) + "\n".join(bodies)


def assert_nowhere(sentinels: tuple[str, ...], *places: str) -> None:
    for place in places:
        for sentinel in sentinels:
            assert sentinel not in place.casefold(), f"{sentinel!r} leaked"


def test_an_english_planted_name_is_no_learned_keyword_offline(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe, monkeypatch, log, capsys) -> None:
    """The local runtime's engine (offline nouns ranked rarest first), language model on: the name is
    the rarest missed word, and still reaches no vocabulary, hot word or Wikipedia request."""
    audio = baseline_scored(load_handler, world, ENGLISH_PLANTED)
    assert {"zebulon", "quackenbush", "sputum"} <= set(missed_words(audio))  # what the loop learns from
    monkeypatch.setenv("MEDSCRIBE_CLM_ROLE_ARN", CLM_ROLE)
    handler = load_handler("selfheal", selfheal_language_model=True, keyword_engine="offline")
    session = RecordingSession()
    handler.SERVICE.corpus.session = session
    handler.SERVICE.corpus.sleep = lambda _seconds: None
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "LanguageCode": "en-US",
                                                  "VocabularyState": "PENDING", "LastModifiedTime": WHEN}, None)
    transcribe.add_response("create_language_model", {
        "LanguageCode": "en-US", "BaseModelName": "WideBand", "ModelName": "m", "ModelStatus": "IN_PROGRESS"}, None)
    capsys.readouterr()
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()

    name = model_artifact_name()
    record = model_artifact(name)
    assert "sputum" in record["learned_keywords"]
    assert "sputum\t\t\t" in vocabulary_rows(name)
    assert "sputum" in hot_words(name)
    assert any("titles=sputum" in url for url in session.urls)
    training = boto3.client("s3").get_object(Bucket="artifacts", Key=f"selfheal/clm/{name}/train.txt")["Body"]
    printed = capsys.readouterr()
    assert_nowhere(ENGLISH_SENTINELS, json.dumps(record), "\n".join(vocabulary_rows(name)), hot_words(name),
                   "\n".join(session.urls), training.read().decode(), everything_written(world), *mail(world),
                   log.getvalue(), printed.out, printed.err)
    assert record["learned_not_clinical"] >= 2  # the name's two words at least


def model_artifact_name() -> str:
    keys = boto3.client("s3").list_objects_v2(Bucket="artifacts", Prefix="selfheal/models/")["Contents"]
    (key,) = [entry["Key"] for entry in keys if not entry["Key"].endswith("-decision.json")]
    return str(key.removeprefix("selfheal/models/").removesuffix(".json"))


def test_an_english_planted_name_comprehend_medical_calls_a_condition_is_no_learned_keyword(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe, comprehend: Stubber, log, capsys) -> None:
    """AWS: Comprehend Medical answers (wrongly) that the lower-cased first name is a condition; the
    term list, the second gate, keeps it out. Through a whole cycle: build, evaluate, decide (the
    evaluation's score items, CSV report and email)."""
    audio = baseline_scored(load_handler, world, ENGLISH_PLANTED)
    missed = missed_words(audio)
    handler = load_handler("selfheal", selfheal_language_model=False, selfheal_margin=0.0)
    comprehend.add_response("detect_entities_v2", entities(" ".join(missed), {
        "sputum": "MEDICAL_CONDITION", "zebulon": "MEDICAL_CONDITION", "quackenbush": "PROTECTED_HEALTH_INFORMATION",
        "48213377": "PROTECTED_HEALTH_INFORMATION"}), {"Text": " ".join(missed)})
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "LanguageCode": "en-US",
                                                  "VocabularyState": "PENDING"}, None)
    capsys.readouterr()
    handler.handler(TICK, Context())
    name = model_artifact_name()
    assert vocabulary_rows(name)[1:] == ["sputum\t\t\t"]
    assert model_artifact(name)["learned_keywords"] == ["sputum"]
    transcribe.add_response("get_vocabulary", {"VocabularyName": name, "VocabularyState": "READY"}, None)
    job_name = eval_job_name("medscribe-dev", name, audio)
    transcribe.add_response("start_transcription_job", job(job_name, "IN_PROGRESS"), {
        "TranscriptionJobName": job_name, "Media": ANY, "MediaFormat": ANY, "OutputBucketName": ANY,
        "OutputKey": ANY, "OutputEncryptionKMSKeyId": ANY, "LanguageCode": "en-US", "Settings": ANY})
    handler.handler(TICK, Context())
    heard = "\n".join(line["text"] for line in fareez_lines(count=12)) + " I cough up sputum."
    boto3.client("s3").put_object(Bucket="artifacts", Key=eval_output_key(name, audio),
                                  Body=json.dumps(transcribe_output(job_name, heard)).encode())
    transcribe.add_response("get_transcription_job", job(job_name, "COMPLETED"), None)
    handler.handler(TICK, Context())
    transcribe.assert_no_pending_responses()
    comprehend.assert_no_pending_responses()
    emails = mail(world)
    assert any("Self-heal decision" in email for email in emails)
    printed = capsys.readouterr()
    assert_nowhere(ENGLISH_SENTINELS, everything_written(world), *emails, log.getvalue(), printed.out, printed.err)


@pytest.mark.parametrize("engine", ["offline", "comprehend-medical"], ids=["local", "aws"])
def test_a_korean_planted_name_is_no_learned_keyword(  # type: ignore[no-untyped-def]
        engine: str, load_handler, world, transcribe, log: io.StringIO, capsys) -> None:
    """Korean uses the offline heuristic in AWS too (Comprehend Medical is English-only): the name, a
    three-syllable noun once its particle is cut, is not on the Korean term list."""
    audio = baseline_scored(load_handler, world, KOREAN_PLANTED, language="ko-KR")
    assert {"홍길순", "가래가"} <= set(missed_words(audio))
    handler = load_handler("selfheal", language=LanguageMode.KO_KR, selfheal_language_model=True,
                           keyword_engine=engine)
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "LanguageCode": "ko-KR",
                                                  "VocabularyState": "PENDING"},
                            {"VocabularyName": ANY, "LanguageCode": "ko-KR", "VocabularyFileUri": ANY})
    capsys.readouterr()
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()
    name = model_artifact_name()
    record = model_artifact(name)
    assert "가래" in record["learned_keywords"]
    assert "가래\t\t\t" in vocabulary_rows(name)
    printed = capsys.readouterr()
    assert_nowhere(KOREAN_SENTINELS, json.dumps(record, ensure_ascii=False), "\n".join(vocabulary_rows(name)),
                   hot_words(name), everything_written(world), *mail(world), log.getvalue(), printed.out, printed.err)
