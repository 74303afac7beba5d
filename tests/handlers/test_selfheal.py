"""Self-heal handler through one whole cycle: moto for DynamoDB/S3/SNS, botocore Stubbers with real
shapes for Transcribe (CreateVocabulary, GetVocabulary, StartTranscriptionJob, GetTranscriptionJob,
CreateLanguageModel, DescribeLanguageModel, the medical vocabulary calls, the deletes) and Comprehend
Medical (DetectEntitiesV2). Vocabularies are tables in S3 (list format is deprecated; Medical takes only
tables); retired resources are deleted; an account quota is a status, not a dead letter."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.scores import Model, ScoreStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.errors import TransientError
from medscribe.domain.selfheal import ModelStatus, eval_job_name, eval_output_key
from medscribe.metric_names import SELFHEAL_MODELS_FAILED
from medscribe.services.wiring import active_model
from medscribe.settings import LanguageMode
from tests.adapters.conftest import put
from tests.handlers.conftest import Context
from tests.handlers.test_document import fareez_lines
from tests.handlers.test_ingest import s3_body, sqs_event
from tests.handlers.test_malformed_messages import log as log
from tests.handlers.test_score import NAME_IN_KEY, SENTINEL, ground_truth, mail, ready, transcribed
from tests.handlers.test_score import world as world
from tests.transcribe_shapes import WHEN, job

TICK = sqs_event({"task": "selfheal"})


def transcribe_output(name: str, text: str) -> dict[str, Any]:
    """A plain Amazon Transcribe output (the shape of tests/fixtures/transcribe-output/tscribe/01-plain.json)."""
    items = []
    for n, word in enumerate(text.split()):
        items.append({"start_time": f"{n * 0.4:.2f}", "end_time": f"{n * 0.4 + 0.3:.2f}", "type": "pronunciation",
                      "alternatives": [{"confidence": "0.99", "content": word.strip(".,?!")}]})
    return {"jobName": name, "accountId": "123456789012", "status": "COMPLETED",
            "results": {"transcripts": [{"transcript": text}], "items": items}}


@pytest.fixture
def comprehend(aws: None):  # type: ignore[no-untyped-def]
    stubber = Stubber(aws_clients.client("comprehendmedical"))
    stubber.activate()
    yield stubber
    stubber.deactivate()


ENTITY_TYPES = {"MEDICAL_CONDITION": "DX_NAME", "ANATOMY": "SYSTEM_ORGAN_SITE", "MEDICATION": "GENERIC_NAME",
                "TEST_TREATMENT_PROCEDURE": "TEST_NAME", "PROTECTED_HEALTH_INFORMATION": "NAME"}


def entities(words: str, categories: dict[str, str]) -> dict[str, Any]:
    """A DetectEntitiesV2 answer (botocore comprehendmedical 2018-10-30) naming one entity per word of
    `words` found in `categories` (word -> Category)."""
    found, offset = [], 0
    for number, word in enumerate(words.split()):
        begin = words.index(word, offset)
        offset = begin + len(word)
        if word in categories:
            category = categories[word]
            found.append({"Id": number, "BeginOffset": begin, "EndOffset": offset, "Score": 0.97, "Text": word,
                          "Category": category, "Type": ENTITY_TYPES[category], "Traits": [], "Attributes": []})
    return {"Entities": found, "ModelVersion": "2.4.0"}


SPUTUM = entities("sputum", {"sputum": "MEDICAL_CONDITION"})


def vocabulary_rows(name: str) -> list[str]:
    """The vocabulary table the candidate was created from (its VocabularyFileUri)."""
    body = boto3.client("s3").get_object(Bucket="artifacts", Key=f"selfheal/vocabularies/{name}.txt")["Body"]
    return str(body.read().decode("utf-8")).splitlines()


def scored_baseline(load_handler, world) -> tuple[str, list[dict[str, Any]], str]:  # type: ignore[no-untyped-def]
    lines = fareez_lines(count=12)
    reference = "\n".join(line["text"] for line in lines) + " I cough up sputum."  # the baseline misses it
    audio = transcribed(world, lines)
    ground_truth(world, reference + f" {SENTINEL}.")
    load_handler("score").handler(ready(audio), Context())
    mail(world)  # the scoring run's email
    return audio, lines, reference


def test_one_cycle_builds_evaluates_and_promotes_a_better_vocabulary(load_handler, world, transcribe,  # type: ignore[no-untyped-def]
                                                                     comprehend) -> None:
    audio, _lines, reference = scored_baseline(load_handler, world)
    store = ScoreStore(world["table"])
    (baseline,) = store.all_scores()
    missed = json.loads(boto3.client("s3").get_object(
        Bucket="artifacts", Key=f"scores/{audio}/baseline.json")["Body"].read())["missed_words"]
    assert "sputum" in missed

    handler = load_handler("selfheal", selfheal_language_model=False, selfheal_margin=0.0)
    # tick 1: learned keywords (clinical entities among the missed words) -> a custom vocabulary. Even
    # were Comprehend Medical to take the lower-cased name for a condition, the term list keeps it out.
    comprehend.add_response("detect_entities_v2", entities(" ".join(missed), {
        "sputum": "MEDICAL_CONDITION", "zebediah": "MEDICAL_CONDITION", "quokkaworth": "PROTECTED_HEALTH_INFORMATION"}),
                            {"Text": " ".join(missed)})
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "LanguageCode": "en-US",
                                                  "VocabularyState": "PENDING", "LastModifiedTime": WHEN},
                            {"VocabularyName": ANY, "LanguageCode": "en-US", "VocabularyFileUri": ANY})
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}
    (model,) = store.models()
    assert model.status is ModelStatus.BUILDING
    assert model.vocabulary_name == model.name
    assert model.name.startswith("medscribe-dev-sh-")
    transcribe.assert_no_pending_responses()
    assert vocabulary_rows(model.name)[0] == "Phrase\tSoundsLike\tIPA\tDisplayAs"
    assert vocabulary_rows(model.name)[1:] == ["sputum\t\t\t"]

    # tick 2: the vocabulary is READY -> the ground-truth recording is transcribed again with it
    transcribe.add_response("get_vocabulary", {"VocabularyName": model.name, "LanguageCode": "en-US",
                                               "VocabularyState": "READY", "LastModifiedTime": WHEN},
                            {"VocabularyName": model.name})
    name = eval_job_name("medscribe-dev", model.name, audio)
    transcribe.add_response("start_transcription_job", job(name, "IN_PROGRESS"), {
        "TranscriptionJobName": name, "Media": {"MediaFileUri": ANY}, "MediaFormat": "mp3",
        "OutputBucketName": "artifacts", "OutputKey": eval_output_key(model.name, audio),
        "OutputEncryptionKMSKeyId": ANY, "LanguageCode": "en-US",
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2, "VocabularyName": model.name},
    })
    handler.handler(TICK, Context())
    assert store.model(model.name).status is ModelStatus.EVALUATING  # type: ignore[union-attr]

    # tick 3: the job finished -> scored like any transcript -> better by the margin -> ACTIVE
    boto3.client("s3").put_object(Bucket="artifacts", Key=eval_output_key(model.name, audio),
                                  Body=json.dumps(transcribe_output(name, reference)).encode())
    transcribe.add_response("get_transcription_job", job(name, "COMPLETED"), {"TranscriptionJobName": name})
    handler.handler(TICK, Context())
    transcribe.assert_no_pending_responses()
    comprehend.assert_no_pending_responses()
    promoted = store.model(model.name)
    assert promoted is not None
    assert promoted.status is ModelStatus.ACTIVE
    assert promoted.mean_error_rate is not None
    assert promoted.mean_error_rate < baseline.error_rate
    assert store.active() == promoted
    assert active_model(store)() == (model.name, None)  # new jobs use the vocabulary
    (email,) = mail(world)
    assert "PROMOTED" in email
    assert "Words fixed" in email
    assert "zebediah" not in email.lower()

    # next tick: the new incumbent misses only the name, which is no clinical term: nothing to build
    comprehend.add_response("detect_entities_v2", entities("zebediah quokkaworth", {}), None)
    handler.handler(TICK, Context())
    comprehend.assert_no_pending_responses()
    assert [m.name for m in store.models()] == [model.name]


def test_a_worse_candidate_stays_a_candidate_and_the_baseline_keeps_serving(load_handler, world, transcribe,  # type: ignore[no-untyped-def]
                                                                            comprehend) -> None:
    audio, lines, _reference = scored_baseline(load_handler, world)
    handler = load_handler("selfheal", selfheal_language_model=False, selfheal_margin=0.01)
    comprehend.add_response("detect_entities_v2", SPUTUM, None)
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "LanguageCode": "en-US",
                                                  "VocabularyState": "PENDING"}, None)
    handler.handler(TICK, Context())
    (model,) = ScoreStore(world["table"]).models()
    name = eval_job_name("medscribe-dev", model.name, audio)
    transcribe.add_response("get_vocabulary", {"VocabularyName": model.name, "VocabularyState": "READY"}, None)
    transcribe.add_response("start_transcription_job", job(name, "IN_PROGRESS"), None)
    handler.handler(TICK, Context())
    worse = " ".join(line["text"] for line in lines[:6])  # half the visit lost
    boto3.client("s3").put_object(Bucket="artifacts", Key=eval_output_key(model.name, audio),
                                  Body=json.dumps(transcribe_output(name, worse)).encode())
    transcribe.add_response("get_transcription_job", job(name, "COMPLETED"), None)
    handler.handler(TICK, Context())
    store = ScoreStore(world["table"])
    assert store.model(model.name).status is ModelStatus.CANDIDATE  # type: ignore[union-attr]
    assert store.active() is None
    (email,) = mail(world)
    assert "kept baseline" in email


def test_a_failed_vocabulary_fails_the_model_with_its_reason(load_handler, world, transcribe, comprehend,  # type: ignore[no-untyped-def]
                                                             capsys) -> None:
    scored_baseline(load_handler, world)
    handler = load_handler("selfheal", selfheal_language_model=False)
    comprehend.add_response("detect_entities_v2", SPUTUM, None)
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "VocabularyState": "PENDING"}, None)
    handler.handler(TICK, Context())
    (model,) = ScoreStore(world["table"]).models()
    transcribe.add_response("get_vocabulary", {
        "VocabularyName": model.name, "VocabularyState": "FAILED",
        "FailureReason": "The vocabulary contains invalid characters."}, None)
    transcribe.add_response("delete_vocabulary", {}, {"VocabularyName": model.name})  # a failed one is cleaned up
    capsys.readouterr()
    handler.handler(TICK, Context())
    transcribe.assert_no_pending_responses()
    failed = ScoreStore(world["table"]).model(model.name)
    assert failed is not None
    assert failed.status is ModelStatus.FAILED
    assert "invalid characters" in (failed.reason or "")
    # the metric the self-heal failure alarm watches (stacks/alarms.py)
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    values = emf[SELFHEAL_MODELS_FAILED]
    assert (values if isinstance(values, list) else [values]) == [1]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert ["service"] in directive["Dimensions"]


def test_a_language_model_is_trained_where_the_language_has_one(load_handler, world, transcribe, comprehend,  # type: ignore[no-untyped-def]
                                                                monkeypatch) -> None:
    scored_baseline(load_handler, world)
    monkeypatch.setenv("MEDSCRIBE_CLM_ROLE_ARN", "arn:aws:iam::123456789012:role/clm")
    handler = load_handler("selfheal", selfheal_language_model=True)
    # Wikipedia is tested against a recorded response in tests/adapters; here the article is cached
    handler.SERVICE.corpus.text = lambda term, language: f"{term} is a symptom. It is common."
    comprehend.add_response("detect_entities_v2", SPUTUM, None)
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "VocabularyState": "PENDING"}, None)
    transcribe.add_response("create_language_model", {
        "LanguageCode": "en-US", "BaseModelName": "WideBand", "ModelName": "m", "ModelStatus": "IN_PROGRESS",
        "InputDataConfig": {"S3Uri": "s3://artifacts/selfheal/clm/m/",
                            "DataAccessRoleArn": "arn:aws:iam::123456789012:role/clm"}},
        {"LanguageCode": "en-US", "BaseModelName": "WideBand", "ModelName": ANY,
         "InputDataConfig": {"S3Uri": ANY, "DataAccessRoleArn": "arn:aws:iam::123456789012:role/clm"}})
    handler.handler(TICK, Context())
    (model,) = ScoreStore(world["table"]).models()
    assert model.language_model_name == model.name
    text = boto3.client("s3").get_object(Bucket="artifacts", Key=f"selfheal/clm/{model.name}/train.txt")["Body"]
    assert "sputum is a symptom." in text.read().decode()
    # the vocabulary is ready, the language model is not: evaluation waits
    transcribe.add_response("get_vocabulary", {"VocabularyName": model.name, "VocabularyState": "READY"}, None)
    transcribe.add_response("describe_language_model", {"LanguageModel": {
        "ModelName": model.name, "LanguageCode": "en-US", "BaseModelName": "WideBand",
        "ModelStatus": "IN_PROGRESS"}}, {"ModelName": model.name})
    handler.handler(TICK, Context())
    assert ScoreStore(world["table"]).model(model.name).status is ModelStatus.BUILDING  # type: ignore[union-attr]
    transcribe.assert_no_pending_responses()


def test_a_medical_deployment_builds_a_medical_vocabulary_and_evaluates_with_it(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe, comprehend) -> None:
    """Transcribe Medical takes only medical vocabularies (CreateMedicalVocabulary, a table from S3)
    and no language model; its evaluation jobs are Medical jobs naming that vocabulary."""
    audio, _lines, _reference = scored_baseline(load_handler, world)
    handler = load_handler("selfheal", transcribe_medical=True, selfheal_language_model=True)
    comprehend.add_response("detect_entities_v2", SPUTUM, None)
    transcribe.add_response("create_medical_vocabulary", {"VocabularyName": "v", "LanguageCode": "en-US",
                                                          "VocabularyState": "PENDING"},
                            {"VocabularyName": ANY, "LanguageCode": "en-US", "VocabularyFileUri": ANY})
    handler.handler(TICK, Context())
    (model,) = ScoreStore(world["table"]).models()
    assert model.medical
    assert model.language_model_name is None
    assert vocabulary_rows(model.name)[1:] == ["sputum\t\t\t"]
    name = eval_job_name("medscribe-dev", model.name, audio)
    transcribe.add_response("get_medical_vocabulary", {"VocabularyName": model.name, "LanguageCode": "en-US",
                                                       "VocabularyState": "READY"}, {"VocabularyName": model.name})
    transcribe.add_response("start_medical_transcription_job", {"MedicalTranscriptionJob": {
        "MedicalTranscriptionJobName": name, "TranscriptionJobStatus": "IN_PROGRESS", "LanguageCode": "en-US"}}, {
        "MedicalTranscriptionJobName": name, "Media": {"MediaFileUri": ANY}, "MediaFormat": "mp3",
        "OutputBucketName": "artifacts", "OutputKey": eval_output_key(model.name, audio),
        "OutputEncryptionKMSKeyId": ANY, "LanguageCode": "en-US", "Specialty": "PRIMARYCARE", "Type": "CONVERSATION",
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2, "VocabularyName": model.name},
    })
    handler.handler(TICK, Context())
    transcribe.assert_no_pending_responses()
    assert ScoreStore(world["table"]).model(model.name).status is ModelStatus.EVALUATING  # type: ignore[union-attr]


def test_retired_failed_and_old_candidates_are_deleted_keeping_the_active_and_newest(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe) -> None:
    """Account quotas (100 vocabularies, a handful of language models) never run out: each tick deletes
    the Transcribe resources of failed, retired and older candidate models; records stay, marked."""
    store = ScoreStore(world["table"])

    def sh(short: str) -> str:  # names as the loop makes them: the role may touch only this stage's (tests/contract)
        return f"medscribe-dev-sh-{short}"

    statuses = [(sh("old"), ModelStatus.CANDIDATE), (sh("mid"), ModelStatus.CANDIDATE),
                (sh("new"), ModelStatus.CANDIDATE), (sh("gone"), ModelStatus.RETIRED), (sh("bad"), ModelStatus.FAILED),
                (sh("live"), ModelStatus.ACTIVE), (sh("busy"), ModelStatus.EVALUATING), (sh("med"), ModelStatus.FAILED)]
    job_name = eval_job_name("medscribe-dev", sh("busy"), "enc-1")
    for name, status in statuses:
        store.put_model(Model(name=name, status=ModelStatus.BUILDING, language="en-US", vocabulary_name=name,
                              language_model_name=sh("lm-old") if name == sh("old") else None,
                              medical=name == sh("med")))
        store.update_model(name, ModelStatus.BUILDING, status=status,
                           evaluations={"enc-1": job_name} if status is ModelStatus.EVALUATING else None)
        time.sleep(0.002)  # created_at has millisecond resolution
    handler = load_handler("selfheal", selfheal_keep_candidates=2)
    transcribe.add_response("get_transcription_job", job(job_name, "IN_PROGRESS"), {"TranscriptionJobName": job_name})
    for name in map(sh, ("bad", "gone", "med", "old")):  # table order (by name)
        operation = "delete_medical_vocabulary" if name == sh("med") else "delete_vocabulary"
        transcribe.add_response(operation, {}, {"VocabularyName": name})
        if name == sh("old"):
            transcribe.add_response("delete_language_model", {}, {"ModelName": sh("lm-old")})
    # the created_at order decides which candidates are the newest: "old" was registered first
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()
    deleted = {model.name for model in store.models() if model.deleted_at}
    assert deleted == set(map(sh, ("old", "gone", "bad", "med")))
    assert {model.name for model in store.models()} == {name for name, _ in statuses}  # the leaderboard keeps them
    transcribe.add_response("get_transcription_job", job(job_name, "IN_PROGRESS"), {"TranscriptionJobName": job_name})
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}  # nothing is deleted twice
    transcribe.assert_no_pending_responses()


def test_a_quota_stops_the_build_with_a_status_not_a_dead_letter_and_a_later_tick_retries(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe, comprehend) -> None:
    scored_baseline(load_handler, world)
    handler = load_handler("selfheal", selfheal_language_model=False)
    handler.SERVICE.customization._jobs.sleep = lambda _seconds: None  # the backoff, without waiting
    comprehend.add_response("detect_entities_v2", SPUTUM, None)
    for _attempt in range(handler.SERVICE.customization._jobs.attempts):
        transcribe.add_client_error("create_vocabulary", "LimitExceededException",
                                    "The maximum number of vocabularies has been reached.", 400)
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}  # no retry storm, no DLQ
    (model,) = ScoreStore(world["table"]).models()
    assert model.status is ModelStatus.FAILED
    assert (model.reason or "").startswith("quota:")
    # next tick: the failed build's (absent) vocabulary is cleaned up, then the build is tried again
    comprehend.add_response("detect_entities_v2", SPUTUM, None)
    transcribe.add_client_error("delete_vocabulary", "NotFoundException", "not found", 400)
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "VocabularyState": "PENDING"}, None)
    handler.handler(TICK, Context())
    transcribe.assert_no_pending_responses()
    rebuilt = ScoreStore(world["table"]).model(model.name)
    assert rebuilt is not None
    assert rebuilt.status is ModelStatus.BUILDING
    assert rebuilt.deleted_at is None


def keywords_file(world: dict[str, Any], key: str, body: bytes) -> str:
    """A keywords file ingest recorded as RECEIVED: the object and its encounter."""
    response = put(world["bucket"], key, body)
    ref = ObjectRef(bucket=world["bucket"], key=key, size=len(body), version_id=response["VersionId"])
    EncounterRepository(world["table"]).create(Encounter.from_ref(ref, Kind.KEYWORDS, EncounterStatus.RECEIVED))
    return ref.encounter_id


def model_artifact(name: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket="artifacts", Key=f"selfheal/models/{name}.json")["Body"]
    return dict(json.loads(body.read()))


def test_a_korean_keywords_file_beyond_256_kib_is_read_whole(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    """A keywords file ingest accepts (up to `text_max_bytes`, 1 MiB) is read whole: no cut at 256 KiB
    inside a Hangul character (3 bytes in UTF-8), and the terms after it reach the vocabulary."""
    scored_baseline(load_handler, world)
    head, tail = ["무릎관절염", "기관지염"], ["천식", "당뇨병", "심근경색"]
    filler = "고혈압, " * 24_000  # a list pasted many times over: repeats are dropped, and counted
    for pad in range(12):  # where 256 KiB falls: inside a character, not at a separator
        body = (", ".join(head) + "," + " " * pad + "\n" + filler + "\n" + ", ".join(tail) + "\n").encode()
        try:
            body[:256 * 1024].decode("utf-8")
        except UnicodeDecodeError:
            break
    else:
        raise AssertionError("no padding puts the 256 KiB boundary inside a character")
    assert 256 * 1024 < len(body) < 1024**2
    key = "keywords/clinic/korean.txt"
    response = put(world["bucket"], key, body)
    ingest = load_handler("ingest").handler(sqs_event(s3_body(world["bucket"], key, response, size=len(body))),
                                            Context())
    assert ingest == {"batchItemFailures": []}
    assert [e.kind for e in EncounterRepository(world["table"]).list(EncounterStatus.RECEIVED)].count(
        Kind.KEYWORDS) == 1  # ingest accepts it: valid UTF-8 within its limit

    handler = load_handler("selfheal", language=LanguageMode.KO_KR, selfheal_language_model=False)
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "LanguageCode": "ko-KR",
                                                  "VocabularyState": "PENDING"},
                            {"VocabularyName": ANY, "LanguageCode": "ko-KR", "VocabularyFileUri": ANY})
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()
    (model,) = ScoreStore(world["table"]).models()
    assert vocabulary_rows(model.name)[1:] == [f"{term}\t\t\t" for term in [*head, "고혈압", *tail]]
    assert model_artifact(model.name)["keywords_files"] == {
        "files_read": 1, "files_skipped": 0, "terms": len(head) + 24_000 + len(tail), "duplicates_dropped": 24_000 - 1,
        "cut_by_cap": 0}


def test_an_unreadable_or_undecodable_keywords_file_is_skipped_alone(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe, comprehend, monkeypatch, log, capsys) -> None:
    """Next to a good keywords file: one in CP949 (Korean Windows' encoding; ingest refuses it today,
    a record from before or a changed limit could still hold one) and one whose read fails. Each is
    skipped with a log line naming its encounter id (never its key or text) and a metric; the tick
    builds from the good file and succeeds (no retry, no dead-letter loop)."""
    scored_baseline(load_handler, world)
    keywords_file(world, "keywords/clinic/good.txt", b"Bronchiectasis, Spirometry\nsputum\n")
    undecodable = keywords_file(world, f"keywords/clinic/{NAME_IN_KEY} old.txt", "천식, 당뇨병".encode("cp949"))
    unreadable_key = f"keywords/clinic/{NAME_IN_KEY} new.txt"
    unreadable = keywords_file(world, unreadable_key, b"Dyspnoea\n")
    handler = load_handler("selfheal", selfheal_language_model=False, selfheal_max_keywords=2)
    read = handler.SERVICE.objects.read

    def flaky_read(ref: ObjectRef, max_bytes: int) -> bytes:
        if ref.key == unreadable_key:
            raise TransientError("SlowDown")
        return bytes(read(ref, max_bytes))

    monkeypatch.setattr(handler.SERVICE.objects, "read", flaky_read)
    comprehend.add_response("detect_entities_v2", SPUTUM, None)
    transcribe.add_response("create_vocabulary", {"VocabularyName": "v", "VocabularyState": "PENDING"}, None)
    capsys.readouterr()
    log.seek(0)
    log.truncate()
    assert handler.handler(TICK, Context()) == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()
    (model,) = ScoreStore(world["table"]).models()
    # learned first ("sputum", also in the file: a repeat), then the file's terms up to the cap of 2
    assert vocabulary_rows(model.name)[1:] == ["sputum\t\t\t", "Bronchiectasis\t\t\t"]
    assert model_artifact(model.name)["keywords_files"] == {
        "files_read": 1, "files_skipped": 2, "terms": 3, "duplicates_dropped": 1, "cut_by_cap": 1}

    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    skipped = {line["encounter_id"]: line["reason"] for line in lines if line["message"] == "keywords file skipped"}
    assert skipped == {undecodable: "not valid UTF-8 (byte 2)", unreadable: "read failed: TransientError SlowDown"}
    (counts,) = [line for line in lines if line["message"] == "keywords files read"]
    assert (counts["files_read"], counts["files_skipped"], counts["terms"]) == (1, 2, 3)
    printed = capsys.readouterr()
    [emf] = [json.loads(line) for line in printed.out.splitlines() if line.startswith('{"_aws"')]
    assert sum(emf["SelfHealKeywordsFilesSkipped"]) == 2
    for output in (log.getvalue(), printed.out, printed.err):
        assert "brackenbury" not in output.lower()
        assert "Bronchiectasis" not in output
