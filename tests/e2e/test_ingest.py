"""Uploads through the emulator become encounter records: identity, revisions, rejections, odd keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from medscribe.adapters import aws_clients
from medscribe.domain.audit import Actor
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.routes import Access, EventTrigger, Route
from medscribe.services.reprocess import ReprocessRefused
from medscribe.services.wiring import reprocess_service
from medscribe_local.provision import provision
from medscribe_local.uploads import upload
from tests.e2e.conftest import EVENTS, Driver, e2e_settings, eventually, note, s3_notification
from tests.media import MP3, video_only_mp4, wav_bytes

OPERATOR = Actor("local-operator", "admin")

pytestmark = pytest.mark.e2e


def test_duplicate_deliveries_of_one_upload_make_one_encounter(driver: Driver) -> None:
    key = driver.unique("audio", "visit.wav")
    uploaded = driver.put(key, wav_bytes(1.0))
    [encounter] = driver.wait(uploaded)
    etag = driver.s3.head_object(Bucket=driver.resources.input_bucket, Key=key)["ETag"].strip('"')

    # S3 delivers at least once: the object's notification arrives again, twice, in one batch. (The
    # test cannot read the sequencer S3 gave the first delivery, so the copies carry their own.)
    duplicate = s3_notification(
        driver.resources.input_bucket, key, uploaded.size, etag, uploaded.version_id, "00FFFFFFFFFFFFFFFF",
    )
    driver.send(duplicate, duplicate)
    driver.wait_idle()

    assert [e.encounter_id for e in driver.encounters_for(key)] == [encounter.encounter_id]
    # one second of silence: transcribed to no words, so the note has nothing to cite
    assert encounter.status is EncounterStatus.NEEDS_REVIEW, encounter.reason
    assert encounter.revision == uploaded.version_id


def test_reupload_of_the_same_bytes_is_the_existing_encounter(driver: Driver) -> None:
    key = driver.unique("audio", "visit.wav")
    first = driver.put(key, wav_bytes(1.0))
    [encounter] = driver.wait(first)
    jobs_before = driver.runtime.transcribe.stats().started
    handled = driver.runtime.stats()["ingest"].messages_ok

    second = driver.put(key, wav_bytes(1.0))  # the folder is run again: a new S3 version, the same bytes
    eventually(lambda: driver.runtime.stats()["ingest"].messages_ok > handled)
    driver.wait_idle()

    assert first.version_id != second.version_id
    assert driver.repository.get(second.encounter_id) is None  # no record for the new version
    assert [e.encounter_id for e in driver.encounters_for(key)] == [encounter.encounter_id]
    assert driver.runtime.transcribe.stats().started == jobs_before  # no second job
    assert driver.repository.get(encounter.encounter_id) == encounter  # untouched: no second note
    # what `medscribe local run` reports for the re-upload: the existing encounter
    resolved = upload(driver.resources.input_bucket, key, wav_bytes(1.0), driver.repository)
    assert resolved.encounter_id == encounter.encounter_id


def test_reupload_of_different_bytes_under_the_same_key_is_a_new_encounter(driver: Driver) -> None:
    key = driver.unique("text", "note.txt")
    first = driver.put(key, note(1))
    second = driver.put(key, note(2))

    encounters = driver.wait(first, second)

    assert first.encounter_id != second.encounter_id
    assert {e.revision for e in encounters} == {first.version_id, second.version_id}
    assert len(driver.encounters_for(key)) == 2


def test_reprocess_runs_the_pipeline_again_for_an_encounter(driver: Driver) -> None:
    audio_key, text_key = driver.unique("audio", "visit.wav"), driver.unique("text", "visit.txt")
    audio, text = driver.wait(driver.put(audio_key, wav_bytes(1.0)), driver.put(text_key, note(3)))
    jobs_before = driver.runtime.transcribe.stats().started
    service = reprocess_service(table_name=driver.resources.table, artifacts_bucket=driver.resources.artifacts_bucket,
                                kms_key_arn=driver.resources.kms_key_arn, settings=e2e_settings())

    for done in (audio, text):
        restarted = service.reprocess(done.encounter_id, OPERATOR)
        assert (restarted.status, restarted.run) == (EncounterStatus.RECEIVED, 2)

    def rerun_finished(encounter_id: str) -> Any:
        found = driver.repository.get(encounter_id)
        return found if found is not None and found.run == 2 and found.is_terminal else None

    again_audio = eventually(lambda: rerun_finished(audio.encounter_id), timeout=60)
    again_text = eventually(lambda: rerun_finished(text.encounter_id), timeout=60)
    assert again_audio.job_name.endswith(".run2")
    assert again_audio.status is audio.status
    assert again_text.status is text.status
    assert again_text.updated_at > text.updated_at
    assert driver.runtime.transcribe.stats().started == jobs_before + 1  # the re-run's job, one
    assert len(driver.encounters_for(audio_key)) == 1

    with pytest.raises(ReprocessRefused) as unknown:
        service.reprocess("enc-unknown", OPERATOR)
    assert unknown.value.unknown
    [rejected] = driver.wait(driver.put(driver.unique("text", "empty.txt"), b""))
    with pytest.raises(ReprocessRefused, match="REJECTED"):
        service.reprocess(rejected.encounter_id, OPERATOR)


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("audio/empty.wav", b"", "object is empty (0 bytes)"),
        ("audio/scan.aiff", wav_bytes(1.0), "unsupported extension '.aiff'"),
        ("audio/disguised.mp3", b"this is a text note, not audio", "content does not match extension '.mp3'"),
        ("audio/too-short.wav", wav_bytes(0.2), "audio is 0.20 s; the minimum is 0.5 s"),
        ("text/scan.pdf", b"%PDF-1.7", "unsupported extension '.pdf'"),
    ],
)
def test_invalid_inputs_end_rejected_with_a_reason(driver: Driver, name: str, body: bytes, reason: str) -> None:
    prefix, file = name.split("/")
    [encounter] = driver.wait(driver.put(driver.unique(prefix, file), body))

    assert encounter.status is EncounterStatus.REJECTED
    assert encounter.reason is not None
    assert encounter.reason.startswith(reason)


def test_a_video_only_mp4_ends_rejected_for_having_no_audio_stream(driver: Driver) -> None:
    [encounter] = driver.wait(driver.put(driver.unique("audio", "visit.mp4"), video_only_mp4()))

    assert encounter.status is EncounterStatus.REJECTED
    assert encounter.reason is not None
    assert encounter.reason.startswith("no audio stream")


def test_s3_test_event_is_ignored(driver: Driver) -> None:
    before = driver.repository.list()
    stats_before = driver.runtime.stats()["ingest"]
    test_event = (EVENTS / "aws_docs" / "s3-TestEvent-message.json").read_text()

    driver.send(test_event)
    eventually(lambda: driver.runtime.stats()["ingest"].messages_ok > stats_before.messages_ok)
    driver.wait_idle()

    assert driver.repository.list() == before
    assert driver.runtime.stats()["ingest"].messages_failed == stats_before.messages_failed


def test_key_with_spaces_plus_and_unicode_is_received(driver: Driver, capfd: pytest.CaptureFixture[str]) -> None:
    key = driver.unique("audio", "dr visit+follow-up ü 한국.wav")
    [encounter] = driver.wait(driver.put(key, wav_bytes(0.6)))

    assert encounter.status is EncounterStatus.NEEDS_REVIEW, encounter.reason  # silence: nothing to cite
    assert encounter.source_key == key
    assert encounter.kind is Kind.AUDIO
    assert encounter.media_format == "wav"
    assert encounter.duration_seconds == pytest.approx(0.6)
    # Handler logs go to the runtime log, with ids and no user-supplied key; not to the terminal.
    log = driver.runtime.paths.log_file.read_text(encoding="utf-8")
    handler_lines = [line for line in log.splitlines() if line.startswith("{")]
    ingested = [json.loads(line) for line in handler_lines if encounter.encounter_id in line]
    assert any(entry.get("message") == "ingested" for entry in ingested)
    assert "dr visit" not in log
    assert "한국" not in log
    assert encounter.encounter_id not in capfd.readouterr().out


def test_mp3_with_id3_tag_passes_ingest_and_fails_decoding(driver: Driver) -> None:
    [encounter] = driver.wait(driver.put(driver.unique("audio", "call.mp3"), MP3))

    # the signature is right (ingest accepts it) but the frames are not real audio: the speech
    # engine fails the job, as Transcribe would
    assert (encounter.status, encounter.media_format) == (EncounterStatus.FAILED, "mp3")
    assert encounter.reason


def test_event_trigger_routes_get_a_rule_that_targets_their_queue(driver: Driver) -> None:
    """Routes are wired generically: an EventBridge-triggered route receives matching events only."""
    pattern = {"source": ["aws.transcribe"], "detail-type": ["Transcribe Job State Change"]}
    probe = Route(
        name="probe", description="EventTrigger wiring probe", access=frozenset({Access.TABLE_READ_WRITE}),
        trigger=EventTrigger(rule="probe-job-state", pattern=pattern),
    )
    settings = e2e_settings().model_copy(update={"stage": "probe"})
    resources = provision(settings, routes=(probe,))
    completed = (EVENTS / "transcribe_eventbridge_from_docs" / "transcribe-job-state-change-COMPLETED.json")
    event = json.loads(completed.read_text())
    aws_clients.client("events").put_events(Entries=[
        {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])},
        {"Source": "aws.s3", "DetailType": "Object Created", "Detail": "{}"},
    ])

    queue = resources.routes["probe"].queue_url
    messages = eventually(lambda: driver.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"))
    assert [json.loads(m["Body"])["detail"] for m in messages] == [event["detail"]]
    attributes = driver.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == settings.max_receive_count
    assert attributes["KmsMasterKeyId"] == resources.kms_key_arn


def test_a_template_chosen_by_key_or_tag_reaches_the_encounter_and_its_note(driver: Driver) -> None:
    """Through the local runtime (ingest reads the tag from the emulator's S3, then documentation)."""
    from tests import FIXTURES

    dialogue = (FIXTURES / "dialogues" / "fareez-osce" / "CAR0003.txt").read_bytes()
    by_key = driver.put(driver.unique("text", "template=GIRPP/visit.txt"), dialogue)
    tagged_key = driver.unique("text", "visit.txt")
    response = driver.s3.put_object(Bucket=driver.resources.input_bucket, Key=tagged_key, Body=dialogue,
                                    Tagging="medscribe-template=dap")
    by_tag = ObjectRef(bucket=driver.resources.input_bucket, key=tagged_key, size=len(dialogue),
                       version_id=response["VersionId"])
    [keyed] = driver.wait(by_key)

    def tagged_terminal() -> Encounter | None:  # driver.put computes no tags: wait for the record by its id
        found = driver.repository.get(by_tag.encounter_id)
        return found if found is not None and found.is_terminal else None

    tagged = eventually(tagged_terminal)
    for encounter, template in ((keyed, "GIRPP"), (tagged, "DAP")):
        assert encounter.note_template == template
        assert encounter.status is EncounterStatus.DOCUMENTED, encounter.reason
        note = json.loads(driver.s3.get_object(Bucket=driver.resources.artifacts_bucket,
                                               Key=encounter.note_key or "")["Body"].read())
        assert note["template"] == template
        assert note["problems"] == []
