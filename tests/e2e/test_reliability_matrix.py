"""Every row of the brief's RELIABILITY.md, shown in the local runtime here or by the test named
for it. The figures these tests record are printed at the end of the pytest run ("reliability
figures", tests/e2e/conftest.py).

Row -> shown by ("here": this module; other paths are relative to tests/):

same S3 event twice, or concurrently
    e2e/test_ingest.py::test_duplicate_deliveries_of_one_upload_make_one_encounter (one after the other)
    here: test_concurrent_copies_of_one_event_make_one_encounter_one_job_one_note
out-of-order events; re-upload
    here: test_a_stale_event_is_ignored_and_a_later_version_is_a_new_revision
    e2e/test_ingest.py::test_reupload_of_different_bytes_under_the_same_key_is_a_new_encounter
    handlers/test_ingest.py::test_stale_event_is_ignored_and_new_version_is_a_new_revision
keys with `+`, `%2B`, unicode; very long keys; nested folders
    e2e/test_ingest.py::test_key_with_spaces_plus_and_unicode_is_received
    here: test_long_nested_keys_with_plus_and_percent_signs_are_found
    handlers/test_ingest.py::test_url_encoded_keys_are_decoded
`s3:TestEvent`, folder markers, zero-byte objects
    e2e/test_ingest.py::test_s3_test_event_is_ignored, ::test_invalid_inputs_end_rejected_with_a_reason
    here: test_bad_objects_end_rejected_or_ignored_without_a_job (folder marker)
unsupported extension, wrong content, > 2 GB, < 0.5 s
    e2e/test_ingest.py::test_invalid_inputs_end_rejected_with_a_reason
    here: test_bad_objects_end_rejected_or_ignored_without_a_job (> 2 GB)
non-UTF-8 or empty text; ground truth without audio; audio without ground truth
    here: test_bad_objects_end_rejected_or_ignored_without_a_job (text)
    here: test_phi_sentinel_never_leaves_the_phi_stores (the ground truth waits, then is scored)
    handlers/test_score.py::test_transcript_without_ground_truth_is_not_scored
Transcribe throttling, LimitExceededException, ConflictException
    here: test_transcribe_throttling_and_5xx_are_retried_with_backoff (fault injection)
    here: test_a_start_whose_answer_was_lost_meets_a_conflict_and_reads_the_job
    adapters/test_transcribe.py::test_throttling_backs_off_and_retries, ::test_conflict_reads_the_existing_job
Transcribe job FAILED
    e2e/test_transcription.py::test_a_failed_job_ends_failed_with_the_reason_and_a_notification_without_phi
Job State Change event lost
    e2e/test_transcription.py::test_a_lost_completion_event_is_recovered_by_the_reconciler
Bedrock throttling, timeouts, 5xx (Bedrock is not emulated: Stubber tests, then the queue here)
    adapters/test_bedrock.py::test_transient_errors_are_retried_with_backoff,
        ::test_throttling_that_persists_becomes_transient, ::test_a_read_timeout_is_retried,
        ::test_throttling_inside_the_stream_is_retried, ::test_the_shared_client_leaves_retries_to_the_adapter
    here: test_a_document_stage_fault_that_persists_reaches_the_dlq_with_an_alarm
model output invalid
    unit/test_notes_service.py::test_not_json_is_retried_once, ::test_schema_mismatch_is_a_problem,
        ::test_citations_out_of_range_are_repaired_once, ::test_truncated_output_is_retried_with_a_larger_budget,
        ::test_a_model_that_keeps_failing_leaves_the_note_needing_review
    handlers/test_document.py::test_bedrock_note_with_a_bad_citation_is_repaired_once
transcript beyond the model's context
    unit/test_notes_service.py::test_long_transcripts_are_chunked_with_original_line_numbers
prompt injection inside the transcript
    unit/test_notes_service.py::test_prompt_injection_stays_data_and_the_note_stays_valid
    unit/test_notes.py::test_transcript_block_is_delimited_data_that_text_cannot_escape
poison message
    e2e/test_reliability.py::test_poison_message_goes_to_the_dlq_with_an_alarm_while_the_batch_proceeds
burst of 1,000 uploads
    here: test_a_burst_with_transient_faults_ends_terminal_without_duplicates_within_the_cap
    e2e/test_reliability.py::test_a_burst_of_uploads_all_end_terminal_within_the_concurrency_cap (no faults)
PHI sentinel planted in inputs
    here: test_phi_sentinel_never_leaves_the_phi_stores
a model that hallucinates or obeys an instruction in the transcript
    adapters/test_injection_verified.py::test_an_obeyed_injection_ends_needs_review_with_the_offending_claims_named,
        ::test_an_obeyed_injection_in_an_answer_is_not_verified (a real OpenAI-compatible HTTP endpoint that obeys)
    unit/test_evidence.py (each check, English and Korean); unit/test_review_page.py::
        test_a_claim_its_lines_do_not_support_is_flagged_with_its_reasons; unit/test_claim_judge.py;
        handlers/test_document.py::test_the_optional_model_judge_adds_its_verdicts_and_cannot_clear_the_checks
    bench/claims.py: precision and recall of the checker on 438 labelled claims (tests/fixtures/claims)
empty or non-clinical text; a date of birth beside the visit date
    unit/test_emr_service.py::test_a_note_without_clinical_content_needs_review_offline,
        ::test_a_model_record_without_clinical_content_needs_review_without_a_repair,
        ::test_a_text_without_letters_never_reaches_the_model
    unit/test_emr_offline.py::test_a_whole_note_takes_the_visit_date_not_the_date_of_birth,
        ::test_an_english_date_of_birth_is_never_the_visit_date, ::test_a_korean_date_of_birth_is_never_the_visit_date
the same bytes uploaded again under the same key
    e2e/test_ingest.py::test_reupload_of_the_same_bytes_is_the_existing_encounter,
        ::test_reprocess_runs_the_pipeline_again_for_an_encounter
    e2e/test_cli_rerun.py::test_a_folder_run_twice_is_the_same_encounters_and_reprocess_reruns_one
    handlers/test_ingest.py::test_the_same_bytes_uploaded_again_are_the_existing_encounter_and_no_second_job,
        ::test_the_content_record_names_no_key_and_a_checksum_is_preferred
names, dates, identifiers among missed words or keywords
    handlers/test_selfheal_phi.py::test_an_english_planted_name_is_no_learned_keyword_offline,
        ::test_an_english_planted_name_comprehend_medical_calls_a_condition_is_no_learned_keyword,
        ::test_a_korean_planted_name_is_no_learned_keyword (vocabulary, hot words, Wikipedia requests,
        language-model text, score items, reports, emails, logs)
    unit/test_clinical_terms.py; adapters/test_customization.py::test_only_words_of_clinical_entities_are_kept_never_phi
    here: test_phi_sentinel_never_leaves_the_phi_stores (score items and local job files too)
keywords files (issue 14): read whole, decoded safely, deduplicated and capped; a bad one affects only itself
    handlers/test_selfheal.py::test_a_korean_keywords_file_beyond_256_kib_is_read_whole,
        ::test_an_unreadable_or_undecodable_keywords_file_is_skipped_alone
    unit/test_vocabulary.py::test_keywords_of_several_lists_are_deduplicated_and_capped_with_counts
erasure of one encounter
    e2e/test_erasure.py::test_erase_leaves_nothing_of_the_encounter_in_the_local_runtime
    infra/test_erasure_retention.py (what ages out, from the synthesized stack's retention); adapters/test_erasure.py;
        contract/test_erasure_operator.py (every call an erasure makes is in the operator policy)
smaller inputs (issue 14): terminal escapes, formula cells, NFC/NFD pairing, LIKE wildcards, long queries,
NUL characters, empty ground truths, damaged index, vanished runtime, control characters in names,
video-only mp4, long audio
    unit/test_text_safety.py::test_control_sequences_are_shown_not_sent,
        ::test_cells_that_would_run_as_formulas_are_text, ::test_transcript_csv_neutralises_spoken_formulas,
        ::test_tscribe_csv_neutralises_spoken_formulas
    handlers/test_score.py::test_a_korean_name_spelled_nfc_on_one_side_and_nfd_on_the_other_is_paired,
        ::test_a_ground_truth_without_words_ends_rejected_with_its_reason
    unit/test_search_sqlite.py::test_like_wildcards_in_short_terms_match_only_themselves,
        ::test_a_query_with_too_many_words_is_refused_clearly, ::test_text_after_a_nul_character_is_indexed
    e2e/test_cli_errors.py (damaged index, runtime gone, state folder removed, a line break in a file name)
    e2e/test_ingest.py::test_a_video_only_mp4_ends_rejected_for_having_no_audio_stream
    unit/test_whisper_engine.py::test_long_audio_is_recognised_window_by_window_with_times_on_the_whole;
        bench/audio_memory.py (peak memory of full and streamed decoding)
unauthenticated or cross-role request to the workspace or its API
    not built yet: the workspace is issue 16
one malformed message in a batch
    e2e/test_reliability.py::test_a_malformed_message_is_dropped_alone_while_its_batch_proceeds
    handlers/test_malformed_messages.py (every queue-fed handler)
a request AWS would reject (IAM resource types, Bedrock schema rules, Transcribe rule conflicts)
    contract/test_iam_coverage.py (every recorded call against its synthesized role),
        contract/test_policy_lint.py, contract/test_action_tables.py, contract/test_service_rules.py
    contract/test_request_rules.py (every recorded Converse and Transcribe request; every tool and job the
        code can build); e2e/test_cli.py::test_local_run_documents_through_a_strict_converse_endpoint
a failed first deploy, a stack deleted and deployed again
    contract/test_redeploy_safety.py::test_nothing_with_a_fixed_name_is_retained_by_a_create_rollback,
        ::test_a_stage_deleted_and_deployed_again_meets_none_of_its_leftovers

The burst: 1,000 uploads, as RELIABILITY.md asks (231 to 275 s in three CI runs on the shared
two-core machine; MEDSCRIBE_BURST_UPLOADS=150 for a quicker local run). A tenth of the uploads are audio,
uploaded first so that more recordings wait than there are transcription slots; 20% of the
handlers' AWS requests are answered with throttling or 5xx errors by tests/faults.py (botocore's
retries see them). The queues run with a 30 s visibility timeout and the deployed maxReceiveCount
during the burst (see deployed_redelivery).

Audio here is recognised by an instant scripted recognizer put behind the local Transcribe service
for each test: these tests are about the pipeline around the speech engine, not about Whisper.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import from_item
from medscribe.domain.encounter import EncounterStatus
from medscribe.settings import load_settings
from medscribe_local.alarms import alarm_name
from medscribe_local.uploads import Upload, wait_for_terminal
from medscribe_local.whisper_engine import Recognition, RecognitionOptions, Word
from tests.e2e.conftest import Driver, eventually, note, s3_notification
from tests.faults import TRANSIENT_FAULTS, FaultInjector, FaultKind, Stage, record_figure
from tests.media import MP3, wav_bytes

pytestmark = pytest.mark.e2e

BURST_UPLOADS = int(os.environ.get("MEDSCRIBE_BURST_UPLOADS", "1000"))
BURST_FAULT_RATE = 0.2
BURST_VISIBILITY_SECONDS = 30
MAX_TRANSCRIPTIONS = 4  # e2e_settings()
DOCUMENTED = frozenset({EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW})
SENTINEL_GIVEN, SENTINEL_FAMILY = "Quillon", "Vantabrisk"  # a made-up name
SENTINEL = f"{SENTINEL_GIVEN} {SENTINEL_FAMILY}"


def words(*texts: str) -> list[Word]:
    """Words at 0.1 s steps (inside the shortest clip these tests upload)."""
    return [Word(f" {text}", 0.02 + 0.1 * i, 0.1 + 0.1 * i, 0.95) for i, text in enumerate(texts)]


class InstantRecognizer:
    """Hears `script` in any audio at once; `gate` holds recognitions (a job stays IN_PROGRESS)."""

    def __init__(self) -> None:
        self.script = words("Headache", "since", "Monday.")
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0

    def recognize(self, audio: Any, options: RecognitionOptions, cancelled: Callable[[], bool] = bool) -> Recognition:
        self.calls += 1
        if not self.gate.wait(60):
            raise TimeoutError("the test never opened the gate")
        return Recognition(list(self.script), options.language or "en")


@pytest.fixture
def recognizer(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstantRecognizer]:
    instant = InstantRecognizer()
    monkeypatch.setattr(driver.runtime.transcribe, "recognizer", instant)
    yield instant
    instant.gate.set()


@pytest.fixture
def staging(driver: Driver) -> str:
    """A versioned bucket without notifications: only the events a test sends name its objects."""
    name = f"e2e-staging-{uuid.uuid4().hex[:8]}"
    driver.s3.create_bucket(Bucket=name)
    driver.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def notification(driver: Driver, bucket: str, uploaded: Upload, sequencer: str, size: int | None = None) -> str:
    etag = driver.s3.head_object(Bucket=bucket, Key=uploaded.key, VersionId=uploaded.version_id)["ETag"].strip('"')
    return s3_notification(bucket, uploaded.key, uploaded.size if size is None else size, etag,
                           uploaded.version_id, sequencer)


def ingested(driver: Driver, before: int, count: int) -> None:
    """Wait until the ingest route has handled `count` more messages than `before`."""
    eventually(lambda: driver.runtime.stats()["ingest"].messages_ok >= before + count, timeout=30)
    driver.wait_idle()


def table_items(driver: Driver, prefix: str) -> list[dict[str, Any]]:
    """Every item whose partition key starts with `prefix` (SRC#, ENC#), plain values."""
    pages = aws_clients.client("dynamodb").get_paginator("scan").paginate(
        TableName=driver.resources.table, FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": prefix}})
    return [from_item(item) for page in pages for item in page.get("Items", [])]


def job_names() -> list[str]:
    """Every transcription job name the (local) Transcribe service lists."""
    transcribe, names, token = aws_clients.client("transcribe"), [], {}
    while True:
        page = transcribe.list_transcription_jobs(MaxResults=100, **token)
        names += [summary["TranscriptionJobName"] for summary in page["TranscriptionJobSummaries"]]
        if "NextToken" not in page:
            return names
        token = {"NextToken": page["NextToken"]}


def log_entries(driver: Driver, message: str, encounter_id: str) -> list[dict[str, Any]]:
    """The handlers' JSON log entries with this message about this encounter."""
    entries = [json.loads(line) for line in log_lines(driver, message, encounter_id) if line.startswith("{")]
    return [e for e in entries if e.get("message") == message and e.get("encounter_id") == encounter_id]


def log_lines(driver: Driver, *needles: str) -> list[str]:
    text = driver.runtime.paths.log_file.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if all(needle in line for needle in needles)]


@contextmanager
def deployed_redelivery(driver: Driver, visibility_seconds: int) -> Iterator[None]:
    """Every route queue with `visibility_seconds` and the deployed maxReceiveCount (cdk.json) for a
    while, then as the e2e settings have them (a 3 s visibility timeout and 2 receives make retries
    show within seconds; under a burst that throttles, invocations outlast 3 s, which in AWS, where
    the timeout is six times the function's, cannot happen)."""
    attributes = ["VisibilityTimeout", "RedrivePolicy"]
    urls = [route.queue_url for route in driver.resources.routes.values()]
    saved = {url: driver.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=attributes)["Attributes"]
             for url in urls}
    for url, current in saved.items():
        redrive = {**json.loads(current["RedrivePolicy"]), "maxReceiveCount": load_settings().max_receive_count}
        driver.sqs.set_queue_attributes(QueueUrl=url, Attributes={
            "VisibilityTimeout": str(visibility_seconds), "RedrivePolicy": json.dumps(redrive)})
    try:
        yield
    finally:
        for url, current in saved.items():
            driver.sqs.set_queue_attributes(QueueUrl=url, Attributes={name: current[name] for name in attributes})


def dlq_depths(driver: Driver) -> dict[str, int]:
    return {name: driver.queue_depth(route.dlq_url) for name, route in driver.resources.routes.items()}


def dead_letter_encounters(driver: Driver, route: str, *, hide_seconds: int = 60) -> dict[str, set[str]]:
    """Message id -> the encounter ids it names, for every visible message in a route's DLQ.

    Each receive hides what it returned for `hide_seconds`, so the loop reads the whole queue rather
    than the same first ten messages again; the messages stay in the queue.
    """
    url = driver.resources.routes[route].dlq_url
    found: dict[str, set[str]] = {}
    while messages := driver.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                 VisibilityTimeout=hide_seconds,
                                                 WaitTimeSeconds=0).get("Messages", []):
        found |= {m["MessageId"]: set(re.findall(r"enc-[0-9a-f]{32}", m["Body"])) for m in messages}
    return found


def counts(counter: Counter[str]) -> str:
    """The counter as "name count, name count", sorted by name."""
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


# -- duplicates, order, keys, bad input ------------------------------------------------------------


def test_concurrent_copies_of_one_event_make_one_encounter_one_job_one_note(
    driver: Driver, recognizer: InstantRecognizer, staging: str,
) -> None:
    service = driver.runtime.transcribe
    started_before = service.stats().started
    handled_before = driver.runtime.stats()["ingest"].messages_ok
    uploaded = driver.put("audio/visit/copies.wav", wav_bytes(0.6), bucket=staging)
    job = f"{driver.runtime.settings.prefix}-{uploaded.encounter_id}"
    copies = 8
    recognizer.gate.clear()  # the job stays IN_PROGRESS while the copies arrive

    body = notification(driver, staging, uploaded, "0000000000000000A1")
    driver.send(*[body] * 5)  # one receive takes at most a batch (5): two invocations run at once
    driver.send(*[body] * (copies - 5))
    ingested(driver, handled_before, copies)
    # a copy that read the record before the first took its slot starts the job again: Conflict, job read
    conflicts = log_lines(driver, "transcription job already exists", job)
    recognizer.gate.set()
    [encounter] = driver.wait(uploaded, timeout=30)

    assert encounter.status in DOCUMENTED, encounter.reason
    assert [e.encounter_id for e in driver.encounters_for(uploaded.key)] == [encounter.encounter_id]
    assert service.stats().started - started_before == 1
    assert recognizer.calls == 1
    # one transcript and one note recorded (a redelivered stage message may rewrite the same objects)
    assert len(log_entries(driver, "transcribed", encounter.encounter_id)) == 1
    assert len(log_entries(driver, "documented", encounter.encounter_id)) == 1
    record_figure("duplicates", "copies of one S3 event delivered", copies)
    record_figure("duplicates", "encounters / Transcribe jobs / notes recorded",
                  f"1 / {service.stats().started - started_before} / 1")
    record_figure("duplicates", "starts answered ConflictException (job read instead)", len(conflicts))


def test_a_start_whose_answer_was_lost_meets_a_conflict_and_reads_the_job(
    driver: Driver, recognizer: InstantRecognizer,
) -> None:
    """StartTranscriptionJob reaches Transcribe, but its answer is lost (a 5xx): botocore's retry
    gets ConflictException, and the adapter reads the job it had started instead of failing."""
    service = driver.runtime.transcribe
    started_before = service.stats().started
    faults = FaultInjector(1.0, stage=Stage.LOST_RESPONSE, limit=1, routes={"ingest"},
                           operations={"StartTranscriptionJob"},
                           faults={"transcribe": (FaultKind("InternalFailureException", 500),)})
    with faults:
        uploaded = driver.put(driver.unique("audio", "lost-answer.wav"), wav_bytes(0.6))
        [encounter] = driver.wait(uploaded, timeout=30)

    assert encounter.status in DOCUMENTED, encounter.reason
    assert faults.stats().total == 1
    assert faults.stats().surfaced == 0  # botocore retried the 5xx; the retry's Conflict was handled
    assert service.stats().started - started_before == 1
    assert log_lines(driver, "transcription job already exists", encounter.job_name or "-")
    record_figure("duplicates", "a start whose answer was lost", "retried, ConflictException, job read: 1 job")


def test_a_stale_event_is_ignored_and_a_later_version_is_a_new_revision(driver: Driver, staging: str) -> None:
    key = "text/visit/order.txt"
    first, second = (driver.put(key, note(n), bucket=staging) for n in (1, 2))
    handled_before = driver.runtime.stats()["ingest"].messages_ok

    driver.send(notification(driver, staging, second, "0000000000000000B2"))  # S3 delivered v2 first
    [newer] = driver.wait(second)
    driver.send(notification(driver, staging, first, "0000000000000000B1"))  # then v1's, late
    ingested(driver, handled_before, 2)
    third = driver.put(key, note(3), bucket=staging)
    driver.send(notification(driver, staging, third, "0000000000000000B3"))
    [latest] = driver.wait(third)

    assert driver.repository.get(first.encounter_id) is None
    assert log_lines(driver, "ignored stale event", first.encounter_id)
    assert newer.status in DOCUMENTED
    assert latest.status in DOCUMENTED
    assert {e.revision for e in driver.encounters_for(key)} == {second.version_id, third.version_id}


def test_long_nested_keys_with_plus_and_percent_signs_are_found(driver: Driver, recognizer: InstantRecognizer) -> None:
    folders = "/".join(f"clinic {n} ü+é" for n in range(57))  # nested folders: about 900 bytes
    stem = f"{uuid.uuid4().hex[:8]} a+b%2Bc 100% 진료 (follow-up)"
    text_key = f"text/{folders}/{stem}.txt"
    audio_key = f"audio/{folders}/{stem}.wav"
    assert 900 < len(audio_key.encode()) <= 1024  # S3's limit is 1,024 bytes

    encounters = driver.wait(driver.put(text_key, note(4)), driver.put(audio_key, wav_bytes(0.6)), timeout=30)

    assert [e.source_key for e in encounters] == [text_key, audio_key]
    assert all(e.status in DOCUMENTED for e in encounters), [e.reason for e in encounters]
    assert re.fullmatch(r"[0-9a-zA-Z._-]{1,200}", encounters[1].job_name or "")  # Transcribe's rule


def test_bad_objects_end_rejected_or_ignored_without_a_job(driver: Driver, staging: str) -> None:
    started_before = driver.runtime.transcribe.stats().started
    ingest_before = driver.runtime.stats()["ingest"]
    dlq_before = driver.queue_depth(driver.ingest.dlq_url)
    folder_marker = driver.put(driver.unique("audio", "recordings/"), b"")
    non_utf8 = driver.put(driver.unique("text", "latin1.txt"), "Café au lait, Müller\n".encode("latin-1"))
    blank = driver.put(driver.unique("text", "blank.txt"), b" \n\t\n")
    # the event names the object's size: more than 2 GB is rejected before any byte is read
    huge = driver.put("audio/huge/visit.wav", wav_bytes(1.0), bucket=staging)
    limit = driver.runtime.settings.audio_max_bytes
    driver.send(notification(driver, staging, huge, "0000000000000000C1", size=limit + 1))

    rejected = driver.wait(non_utf8, blank, huge)
    ingested(driver, ingest_before.messages_ok, 4)

    assert [e.status for e in rejected] == [EncounterStatus.REJECTED] * 3
    reasons = [e.reason or "" for e in rejected]
    assert reasons[0].startswith("not valid UTF-8")
    assert reasons[1] == "text is empty"
    assert reasons[2] == f"object is {limit + 1} bytes; the limit is {limit}"
    assert driver.repository.get(folder_marker.encounter_id) is None
    assert all(e.job_name is None for e in rejected)
    assert driver.runtime.transcribe.stats().started == started_before
    assert driver.runtime.stats()["ingest"].messages_failed == ingest_before.messages_failed  # no retry
    assert driver.queue_depth(driver.ingest.dlq_url) == dlq_before


# -- faults in the services ------------------------------------------------------------------------


def test_transcribe_throttling_and_5xx_are_retried_with_backoff(
    driver: Driver, recognizer: InstantRecognizer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = driver.runtime.transcribe
    started_before = service.stats().started
    backoffs_before = len(log_lines(driver, "transcribe throttled; backing off"))
    lock, limited = threading.Lock(), Counter[str]()

    def throttle_first_start(name: str) -> bool:
        with lock:
            limited[name] += 1
            return limited[name] == 1

    # The service answers each job's first start with LimitExceededException (botocore retries it),
    # and 30% of the Start/GetTranscriptionJob calls fail outright (the adapter backs off and retries).
    monkeypatch.setattr(service, "throttle_starts", throttle_first_start)
    faults = FaultInjector(0.3, stage=Stage.CALL, seed=3, faults={"transcribe": TRANSIENT_FAULTS["transcribe"]})
    with faults:
        uploads = [driver.put(driver.unique("audio", f"throttled-{i}.wav"), wav_bytes(0.6)) for i in range(6)]
        encounters = driver.wait(*uploads, timeout=60)

    assert all(e.status in DOCUMENTED for e in encounters), [e.reason for e in encounters]
    assert service.stats().started - started_before == len(uploads)  # one job each
    assert {e.job_name for e in encounters} <= set(limited)  # each was refused once
    stats = faults.stats()
    assert stats.total >= 3
    backoffs = len(log_lines(driver, "transcribe throttled; backing off")) - backoffs_before
    assert backoffs >= 1
    record_figure("transcribe faults", "faults injected in Start/GetTranscriptionJob calls",
                  f"{stats.total} of {stats.matching} calls ({counts(stats.injected)})")
    record_figure("transcribe faults", "starts the local service refused with LimitExceededException",
                  len(limited))
    record_figure("transcribe faults", "adapter backoffs; encounters documented", f"{backoffs}; {len(encounters)}/6")


def test_a_document_stage_fault_that_persists_reaches_the_dlq_with_an_alarm(driver: Driver) -> None:
    """The document stage's transient errors (S3 throttling here; a throttled model the same way, once
    BedrockModel's bounded retries are spent) fail the message; after max_receive_count receives it
    is in the route's DLQ, with an alarm. Nothing is lost: once the fault has passed, the reconciler
    sends the encounter to documentation again."""
    route = driver.resources.routes["document"]
    assert driver.queue_depth(route.dlq_url) == 0
    key = driver.unique("text", "held.txt")
    faults = FaultInjector(1.0, stage=Stage.CALL, routes={"document"}, mentioning=key,
                           faults={"s3": (FaultKind("SlowDown", 503),)})
    with faults:
        uploaded = driver.put(key, note(5))
        eventually(lambda: driver.queue_depth(route.dlq_url) >= 1, timeout=30)
    [alarm] = eventually(lambda: driver.outbox_files(alarm_name(route)), timeout=10)
    subject = email.message_from_bytes(alarm.read_bytes(), policy=email.policy.default)["Subject"].strip()
    dead = driver.queue_depth(route.dlq_url)
    [encounter] = driver.wait(uploaded, timeout=40)

    assert encounter.status in DOCUMENTED
    assert faults.stats().surfaced >= driver.runtime.settings.max_receive_count
    assert key not in alarm.read_text(encoding="utf-8")
    driver.sqs.purge_queue(QueueUrl=route.dlq_url)  # leave the route as the other tests expect it
    record_figure("dead-letter queues", "document DLQ after a persistent document-stage fault (purged after)",
                  f"{dead} message(s); email {subject!r}; then the reconciler had it documented")


# -- the burst -------------------------------------------------------------------------------------


class CapSampler:
    """Samples the transcription slots in use (the table's counter), the encounters TRANSCRIBING and
    the jobs the local service is running, on its own thread (its reads are never faulted)."""

    def __init__(self, driver: Driver, interval: float = 0.1) -> None:
        self.driver = driver
        self.interval = interval
        self.samples = 0
        self.max_slots = self.max_transcribing = self.max_running = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reliability-cap-sampler", daemon=True)

    def _run(self) -> None:
        repository, service = self.driver.repository, self.driver.runtime.transcribe
        while not self._stop.wait(self.interval):
            slots = repository.slots_in_flight()
            transcribing = len(repository.oldest(EncounterStatus.TRANSCRIBING, limit=1000))
            self.max_slots = max(self.max_slots, slots)
            self.max_transcribing = max(self.max_transcribing, transcribing)
            self.max_running = max(self.max_running, service.stats().running)
            self.samples += 1

    def __enter__(self) -> CapSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def burst_upload(driver: Driver, run: str, number: int) -> Upload:
    """The first tenth audio (more than the slots at once: some must wait), then text notes."""
    if number < max(BURST_UPLOADS // 10, 3 * MAX_TRANSCRIPTIONS):
        return driver.put(f"audio/burst-{run}/clip-{number}.wav", wav_bytes(0.6))
    return driver.put(f"text/burst-{run}/note-{number}.txt", note(number))


@pytest.mark.timeout(max(600, 2 * BURST_UPLOADS + 300))  # pyproject's 600 s is per test; 1,000 uploads need more
def test_a_burst_with_transient_faults_ends_terminal_without_duplicates_within_the_cap(
    driver: Driver, recognizer: InstantRecognizer,
) -> None:
    cap = driver.runtime.settings.max_concurrent_transcriptions
    service = driver.runtime.transcribe
    run = uuid.uuid4().hex[:8]
    assert cap == MAX_TRANSCRIPTIONS
    assert driver.repository.slots_in_flight() == 0  # nothing else is transcribing
    # Earlier tests leave their poison messages in DLQs (SQS allows one purge a minute, so they stay):
    # hide them for the session, so that every dead letter read after the burst is the burst's own.
    earlier = {name: dead_letter_encounters(driver, name, hide_seconds=43_200) for name in driver.resources.routes}
    waits_before = len(log_lines(driver, "transcription slots full; encounter waits"))
    dlq_before, routes_before, started_before = dlq_depths(driver), driver.runtime.stats(), service.stats().started
    faults = FaultInjector(BURST_FAULT_RATE, seed=1000)
    began = time.monotonic()
    with deployed_redelivery(driver, BURST_VISIBILITY_SECONDS), CapSampler(driver) as sampler, faults:
        with ThreadPoolExecutor(4, thread_name_prefix="burst-upload") as pool:
            uploads = list(pool.map(lambda number: burst_upload(driver, run, number), range(BURST_UPLOADS)))
        outcome = wait_for_terminal(driver.repository, [u.encounter_id for u in uploads], timeout=120 + BURST_UPLOADS)
    took = time.monotonic() - began

    audio = sum(1 for u in uploads if u.key.startswith("audio/"))
    recorded = [*driver.repository.in_folder(f"audio/burst-{run}", limit=2 * BURST_UPLOADS),
                *driver.repository.in_folder(f"text/burst-{run}", limit=2 * BURST_UPLOADS)]
    duplicates = len(recorded) - len({e.source_key for e in recorded})
    extra_jobs = service.stats().started - started_before - audio
    statuses = Counter(e.status.value for e in outcome.encounters.values())
    dead = {name: depth - dlq_before[name] for name, depth in dlq_depths(driver).items() if depth > dlq_before[name]}
    retried = {name: stats.messages_failed - routes_before[name].messages_failed
               for name, stats in driver.runtime.stats().items()
               if stats.messages_failed > routes_before[name].messages_failed}
    stats = faults.stats()
    waits = len(log_lines(driver, "transcription slots full; encounter waits")) - waits_before
    section = "burst"
    record_figure(section, "uploads", f"{BURST_UPLOADS} ({audio} audio, {BURST_UPLOADS - audio} text; "
                  f"MEDSCRIBE_BURST_UPLOADS={os.environ.get('MEDSCRIBE_BURST_UPLOADS', 'unset: default 1000')})")
    record_figure(section, "queues", f"visibility timeout {BURST_VISIBILITY_SECONDS} s, maxReceiveCount "
                  f"{load_settings().max_receive_count} (as deployed; the e2e settings have 3 s and 2)")
    record_figure(section, "terminal", f"{BURST_UPLOADS - len(outcome.pending)} in {took:.0f} s ({counts(statuses)})")
    record_figure(section, "lost (no record or not terminal)", len(outcome.pending))
    record_figure(section, "duplicates (extra encounters / extra Transcribe jobs)", f"{duplicates} / {extra_jobs}")
    record_figure(section, "faults injected", f"{stats.total} of {stats.matching} requests "
                  f"({stats.total / max(stats.matching, 1):.1%}): {dict(stats.families)}")
    record_figure(section, "faults by kind", counts(stats.injected))
    record_figure(section, "failures that outlasted botocore's retries (handled by SQS redelivery)", stats.surfaced)
    record_figure(section, "messages failed by a handler and retried, per route", retried or 0)
    record_figure(section, "max transcription slots in use vs cap",
                  f"{sampler.max_slots} vs {cap} ({sampler.max_transcribing} encounters TRANSCRIBING at most; "
                  f"{sampler.max_running} jobs running at most; {sampler.samples} samples; "
                  f"{waits} times an encounter found every slot taken and waited)")
    dead_letters = {name: {message: ids for message, ids in dead_letter_encounters(driver, name).items()
                           if message not in earlier[name]} for name in dead}
    named = [ids for letters in dead_letters.values() for ids in letters.values()]
    # A batch of stream records can also name encounters of earlier tests that the reconciler touched
    # during the burst: those are reported, and the burst's own must all have ended terminal.
    unfinished_dead = sorted(i for ids in named for i in ids
                             if i in outcome.encounters and not outcome.encounters[i].is_terminal)
    foreign = {i for ids in named for i in ids if i not in outcome.encounters}
    record_figure(section, "DLQ messages", f"{counts(Counter(dead))} (each with its alarm; every burst encounter "
                  f"they name ended terminal: {not unfinished_dead}; they also name {len(foreign)} encounters of "
                  "earlier tests)" if dead else 0)

    assert not outcome.pending, f"{len(outcome.pending)} not terminal: {outcome.pending[:5]}"
    assert set(statuses) <= {s.value for s in DOCUMENTED}, [
        (e.status, e.reason) for e in outcome.encounters.values() if e.status not in DOCUMENTED][:5]
    assert len(recorded) == BURST_UPLOADS
    assert duplicates == 0
    assert extra_jobs == 0
    assert sampler.max_slots == cap  # reached, never passed
    assert waits >= 1
    assert sampler.max_transcribing <= cap
    assert driver.repository.slots_in_flight() == 0  # every slot given back
    assert stats.total >= BURST_FAULT_RATE / 2 * stats.matching > 0
    # A message whose every delivery met a fault goes to its DLQ, as designed (the retry budget of a
    # botocore client runs dry under sustained faults; see tests/faults.py). Nothing may be lost:
    # the reconciler finishes what such a message had started.
    for route in dead:  # leave the queues as the other tests expect them
        driver.sqs.purge_queue(QueueUrl=driver.resources.routes[route].dlq_url)
    assert all(named)  # every dead letter names its encounter
    assert not unfinished_dead, (f"{len(unfinished_dead)} burst encounters named by dead letters are not "
                                 f"terminal: {unfinished_dead[:5]}")


# -- PHI -------------------------------------------------------------------------------------------


def sentinel_hits(text: str) -> int:
    lowered = text.lower()
    return sum(lowered.count(part.lower()) for part in (SENTINEL_GIVEN, SENTINEL_FAMILY))


def test_phi_sentinel_never_leaves_the_phi_stores(
    driver: Driver, recognizer: InstantRecognizer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """A made-up name in object keys, in a text note, in a ground truth and in what the recording says
    reaches the encrypted stores (objects, the table's source_key, transcripts, notes, scores) and
    nothing else: not the logs, metrics, emails, job names or idempotency records."""
    folder = f"visits/{uuid.uuid4().hex[:8]}"
    recognizer.script = words("Good", "morning", "Mr", f"{SENTINEL_FAMILY}.", "Any", "pain?")
    truth = driver.put(f"ground-truth/{folder}/{SENTINEL} intake.txt",
                       f"Good morning Mr {SENTINEL_FAMILY}. Any pain today?\n".encode())
    [waiting] = driver.wait(truth)
    audio_key = f"audio/{folder}/{SENTINEL} intake.wav"
    assert waiting.status is EncounterStatus.RECEIVED  # the ground truth waits for its recording
    assert not [i for i in table_items(driver, "ENC#") if i.get("ground_truth_encounter_id") == truth.encounter_id]

    recording, text, broken = (
        driver.put(audio_key, wav_bytes(0.6)),
        driver.put(f"text/{folder}/{SENTINEL} referral.txt",
                   f"Referral for {SENTINEL}, 54: mild headache for two days; no fever.\n".encode()),
        driver.put(f"audio/{folder}/{SENTINEL} call.mp3", MP3),  # fails in Transcribe: an email goes out
    )
    audio, note_, failed = driver.wait(recording, text, broken, timeout=30)
    assert (audio.status in DOCUMENTED, note_.status in DOCUMENTED, failed.status) == (
        True, True, EncounterStatus.FAILED)
    scores = eventually(lambda: [i for i in table_items(driver, f"ENC#{audio.encounter_id}")
                                 if i["sk"].startswith("SCORE#")], timeout=20)
    assert scores[0]["ground_truth_encounter_id"] == truth.encounter_id  # scored, once its pair was complete
    outbox = driver.runtime.paths.outbox
    eventually(lambda: all(any(i in f.read_text(encoding="utf-8") for f in outbox.glob("*.eml"))
                           for i in (audio.encounter_id, failed.encounter_id)), timeout=20)
    transcript = driver.s3.get_object(Bucket=driver.resources.artifacts_bucket, Key=audio.transcript_key or "")
    assert SENTINEL_FAMILY in transcript["Body"].read().decode()  # PHI in the PHI store, as it should be
    ids = {e.encounter_id for e in (waiting, audio, note_, failed)}

    captured = capfd.readouterr()
    log = driver.runtime.paths.log_file.read_text(encoding="utf-8")
    emf = [line for line in (captured.out + log).splitlines() if '"_aws"' in line]
    emails = [path.read_text(encoding="utf-8") for path in sorted(outbox.glob("*.eml"))]
    records = [json.dumps(vars(record), default=str) for record in caplog.records]
    jobs = job_names()
    job_files = [path.name for path in (driver.runtime.paths.root / "transcribe" / "jobs").glob("*.json")]
    sources = table_items(driver, "SRC#")
    encounters = [{k: v for k, v in item.items() if k != "source_key"}  # the key itself: the PHI store
                  for item in table_items(driver, "ENC#") if item["sk"] == "ENC"]
    score_items = [item for item in table_items(driver, "ENC#") if item["sk"].startswith("SCORE#")]
    job_file_text = [path.read_text(encoding="utf-8")
                     for path in (driver.runtime.paths.root / "transcribe" / "jobs").glob("*.json")]
    places = {
        "runtime log": sentinel_hits(log),
        "captured stdout/stderr": sentinel_hits(captured.out + captured.err),
        "log records": sentinel_hits("\n".join(records)),
        "EMF metric lines": sentinel_hits("\n".join(emf)),
        "SNS emails": sentinel_hits("\n".join(emails)),
        "Transcribe job names": sentinel_hits("\n".join(jobs + job_files)),
        "SRC# records": sentinel_hits(json.dumps(sources, default=str)),
        "ENC# records but source_key": sentinel_hits(json.dumps(encounters, default=str)),
        "score items": sentinel_hits(json.dumps(score_items, default=str)),
        "local Transcribe job files": sentinel_hits("\n".join(job_file_text)),
    }
    record_figure("PHI sentinel", "hits per place", places)
    record_figure("PHI sentinel", "searched", f"{len(log.splitlines())} log lines, {len(emf)} EMF lines, "
                  f"{len(emails)} emails, {len(jobs)} job names, {len(sources)} SRC# and {len(encounters)} ENC# items")

    # the same search finds the name where it belongs, so finding it nowhere else means something
    assert sentinel_hits(json.dumps([e.source_key for e in (waiting, audio, note_, failed)])) == 8
    assert audio.job_name in jobs
    assert any(e in "\n".join(emails) for e in ids)
    assert emf
    assert [s for s in sources if s.get("encounter_id") in ids]  # the sentinel's own records were searched
    assert score_items
    assert job_file_text
    assert places == dict.fromkeys(places, 0)
