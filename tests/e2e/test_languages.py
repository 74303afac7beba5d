"""Language per upload in the running local pipeline, whose deployment language is cdk.json's en-US:
the Korean sample recording uploaded under `audio/ko-KR/` is transcribed in Korean by the local
speech engine (the multilingual base model told "ko"), its record keeps ko-KR and its Korean
transcript is also structured as an EMR record in Korean; an English recording under `audio/` stays
en-US (tiny.en); a tag chooses too; a locale the pipeline does not transcribe is REJECTED.

The Korean recording is espeak-ng's rule-based Korean voice, which the base model hears poorly: the
character error rate against the dialogue it was rendered from is recorded as a figure (printed
after the run), not asserted beyond "mostly Hangul".
"""

from __future__ import annotations

import json
import re

import pytest

from medscribe.domain.dialogue import parse_dialogue
from medscribe.domain.encounter import Encounter, EncounterStatus, ObjectRef
from medscribe.domain.scoring import score
from medscribe.settings import project_root
from medscribe_local.uploads import Upload
from tests import FIXTURES
from tests.e2e.conftest import Driver, speech_wav
from tests.faults import record_figure

pytestmark = pytest.mark.e2e

KOREAN_AUDIO = project_root() / "sample-data" / "audio" / "ko-KR" / "KO0001.mp3"
KOREAN_DIALOGUE = FIXTURES / "dialogues" / "ko-medscribe" / "KO0001.txt"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
LETTER = re.compile(r"[^\W\d_]")


def transcript_lines(driver: Driver, encounter: Encounter) -> list[dict[str, object]]:
    assert encounter.transcript_key is not None, (encounter.status, encounter.reason)
    document = json.loads(driver.s3.get_object(Bucket=driver.resources.artifacts_bucket,
                                               Key=encounter.transcript_key)["Body"].read())
    return list(document["lines"])


def test_a_korean_recording_under_audio_ko_kr_is_transcribed_in_korean_while_the_deployment_is_en_us(
        driver: Driver) -> None:
    assert driver.runtime.settings.language.value == "en-US"
    korean = driver.put(f"audio/ko-KR/{driver.unique('visits', 'KO0001.mp3')}", KOREAN_AUDIO.read_bytes())
    english = driver.put(driver.unique("audio", "opening.wav"), speech_wav(2.0))

    ko, en = driver.wait(korean, english, timeout=300)

    assert (ko.language, ko.language_code) == ("ko-KR", "ko-KR")
    assert ko.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW), ko.reason
    job = driver.runtime.transcribe.job(ko.job_name or "")
    assert job is not None
    assert (job.language_code, job.identify_language, job.engine["model"]) == ("ko-KR", False, "base")
    lines = transcript_lines(driver, ko)
    text = " ".join(str(line["text"]) for line in lines)
    letters = LETTER.findall(text)
    assert lines
    assert all(HANGUL.search(str(line["text"])) for line in lines[:1])
    assert len(HANGUL.findall(text)) >= 0.9 * len(letters), text  # Korean script, not a translation
    emr = json.loads(driver.s3.get_object(Bucket=driver.resources.artifacts_bucket,
                                          Key=f"notes/{ko.encounter_id}/emr.json")["Body"].read())
    assert emr["language"] == "ko"

    reference = "\n".join(turn.text for turn in parse_dialogue(KOREAN_DIALOGUE.read_text(encoding="utf-8")))
    measured = score(reference, "\n".join(str(line["text"]) for line in lines), language="ko")
    record_figure("Korean sample recording (espeak-ng voice, local Whisper base)", "character error rate",
                  f"{measured.cer:.3f}")
    record_figure("Korean sample recording (espeak-ng voice, local Whisper base)", "transcript (start)", text[:160])

    assert (en.language, en.language_code) == ("en-US", "en-US")
    en_job = driver.runtime.transcribe.job(en.job_name or "")
    assert en_job is not None
    assert (en_job.language_code, en_job.engine["model"]) == ("en-US", "tiny.en")
    assert "brings you in" in " ".join(str(line["text"]) for line in transcript_lines(driver, en)).lower()


def test_a_tag_chooses_the_language_and_an_unsupported_locale_is_rejected(driver: Driver) -> None:
    tagged = put_tagged(driver, driver.unique("audio", "tagged.wav"), speech_wav(2.0), "medscribe-language=identify")
    french = driver.put(f"audio/fr-FR/{driver.unique('visits', 'visite.wav')}", speech_wav(1.0))

    identified, rejected = driver.wait(tagged, french, timeout=120)

    assert (rejected.status, rejected.job_name, rejected.language) == (EncounterStatus.REJECTED, None, None)
    assert rejected.reason == ("the key's first folder names a language this pipeline does not transcribe "
                               "(it takes en-US, ko-KR or identify)")
    assert identified.language == "identify"
    job = driver.runtime.transcribe.job(identified.job_name or "")
    assert job is not None
    assert (job.identify_language, job.language_options) == (True, ["en-US", "ko-KR"])
    assert (job.language_code, identified.language_code) == ("en-US", "en-US")  # identified as English


def put_tagged(driver: Driver, key: str, body: bytes, tagging: str) -> Upload:
    """Put an object with tags (`x-amz-tagging`); its encounter id as ingest computes it."""
    response = driver.s3.put_object(Bucket=driver.resources.input_bucket, Key=key, Body=body, Tagging=tagging)
    ref = ObjectRef(bucket=driver.resources.input_bucket, key=key, size=len(body),
                    etag=response["ETag"].strip('"'), version_id=response["VersionId"])
    return Upload(key=key, encounter_id=ref.encounter_id, version_id=response["VersionId"], size=len(body))
