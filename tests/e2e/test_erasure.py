"""`medscribe erase` in the local runtime (issue 14, item 6): a recording (two revisions of one key)
with its ground truth, transcribed, documented, scored, indexed, emailed and listed in a run folder, is
erased by the CLI; then every bucket's object versions and delete markers, every table item, the
search index (its rows and the database file's bytes), the local Transcribe's job files, the outbox
and the run folders are searched for its encounter ids, the name planted in its keys and a word said
in it. A bystander encounter stays. An unknown id is one line and exit code 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from medscribe.adapters import aws_clients
from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.scores import ScoreStore
from medscribe.adapters.search_sqlite import SqliteSearchIndex
from medscribe.domain.encounter import EncounterStatus
from medscribe_local.report import write_report
from medscribe_local.uploads import ResultRow, write_results
from tests.e2e.conftest import Driver, eventually
from tests.e2e.test_reliability_matrix import InstantRecognizer, recognizer, words
from tests.media import wav_bytes

pytestmark = pytest.mark.e2e
__all__ = ["recognizer"]  # the fixture, used by name

NAME = "Orsolya Fenwright"  # a made-up patient name, planted in the uploader's keys
SAID = "Zephyrquillate"  # a made-up word, said in the recording and written in its ground truth
DONE = (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW)


def medscribe(driver: Driver, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(MEDSCRIBE_STATE_DIR=str(driver.runtime.paths.root), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "medscribe_local", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def raw_bytes(path: Path) -> bytes:
    """A file's bytes read by a child process. The runtime's SQLite connections live in this process, and
    closing any descriptor of a file drops every POSIX lock this process holds on it: reading search.db or
    its -shm here would release SQLite's locks under the running runtime, and the next connection (the
    erase command's, another test's) would find its WAL index unlocked and fail ("disk I/O error")."""
    read = subprocess.run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())",
                           str(path)], capture_output=True, check=True, timeout=60)
    return read.stdout


def leftovers(driver: Driver, needles: list[str]) -> list[str]:
    """Where any needle still appears: object keys and bodies of every version in every bucket, table
    items, the search index and its files, the local Transcribe's files, the outbox, the run folders."""
    found: list[str] = []
    s3 = aws_clients.client("s3")

    def check(where: str, text: str) -> None:
        found.extend(f"{where}: {needle}" for needle in needles if needle in text)

    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for marker in page.get("DeleteMarkers", []):
                check(f"s3://{bucket} delete marker", marker["Key"])
            for version in page.get("Versions", []):
                check(f"s3://{bucket} key", version["Key"])
                body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
                check(f"s3://{bucket}/{version['Key']}", body.decode("utf-8", errors="replace"))
    for page in aws_clients.client("dynamodb").get_paginator("scan").paginate(TableName=driver.resources.table):
        for item in page.get("Items", []):
            check("table item", json.dumps(item, ensure_ascii=False))
    root = driver.runtime.paths.root
    files = [*root.glob("search.db*"), *(root / "transcribe").rglob("*"), *root.joinpath("outbox").rglob("*"),
             *root.joinpath("runs").rglob("*")]
    for path in files:
        if path.is_file():
            data = raw_bytes(path) if path.name.startswith("search.db") else path.read_bytes()
            check(str(path.relative_to(root)), data.decode("utf-8", errors="replace"))
    index = SqliteSearchIndex(driver.runtime.paths.search_db)
    try:
        hits = index.search(SAID)
    finally:
        index.close()
    found += [f"search hit {hit.encounter_id}" for hit in hits]
    return found


def test_erase_leaves_nothing_of_the_encounter_in_the_local_runtime(
    driver: Driver, recognizer: InstantRecognizer, tmp_path: Path,
) -> None:
    folder = f"erase/{uuid.uuid4().hex[:8]}"
    audio_key, truth_key = f"audio/{folder}/{NAME} visit.wav", f"ground-truth/{folder}/{NAME} visit.txt"
    recognizer.script = words("Your", f"{SAID}", "levels", "are", "fine.")
    truth = driver.put(truth_key, f"Your {SAID} levels are fine today.\n".encode())
    first = driver.put(audio_key, wav_bytes(0.6))
    [first_done] = driver.wait(first, timeout=30)
    second = driver.put(audio_key, wav_bytes(0.7))  # a new revision of the same key: a second encounter
    bystander = driver.put(f"text/{uuid.uuid4().hex[:8]}/bystander.txt",
                           b"Bystander note: mild headache for two days; no fever.\n")
    encounters = [first_done, *driver.wait(second, truth, bystander, timeout=30)]
    assert [e.status in DONE for e in encounters[:2]] == [True, True]
    audio_ids = [first.encounter_id, second.encounter_id]
    family = [*audio_ids, truth.encounter_id]
    scores = ScoreStore(driver.resources.table)
    eventually(lambda: {r.encounter_id for r in scores.all_scores()} >= set(audio_ids), timeout=30)
    outbox = driver.runtime.paths.outbox
    eventually(lambda: any(second.encounter_id in p.read_text(encoding="utf-8") for p in outbox.glob("*.eml")),
               timeout=20)
    index = SqliteSearchIndex(driver.runtime.paths.search_db)
    try:
        eventually(lambda: {hit.encounter_id for hit in index.search(SAID)} >= set(audio_ids), timeout=20)
    finally:
        index.close()
    # the entities stage's outputs, the redacted copies among them, are there before the erasure
    for encounter_id in audio_ids:
        eventually(lambda eid=encounter_id: getattr(driver.repository.get(eid), "entities_key", None), timeout=30)
        redacted = driver.s3.list_objects_v2(Bucket=driver.resources.artifacts_bucket,
                                             Prefix=f"redacted/{encounter_id}/").get("Contents", [])
        assert {o["Key"].rsplit("/", 1)[1] for o in redacted} == {"transcript.json", "note.json"}
    # a run folder, as `medscribe local run` writes it: results.json, report.html, review page copies
    rows = [ResultRow(e.encounter_id, e.kind.value if e.kind else None, e.source_key, e.status.value, e.reason)
            for e in encounters]
    results = write_results(driver.runtime.paths, rows, {"complete": True, "pending": []})
    write_report(results.parent, [r.encounter_id for r in rows], driver.repository,
                 ArtifactStore(driver.resources.artifacts_bucket, driver.resources.kms_key_arn),
                 title=f"medscribe run {results.parent.name}", scores=scores)
    needles = [*family, NAME, SAID]
    assert len(leftovers(driver, needles)) > 10  # the scan sees the encounter everywhere before
    # the after-visit summary is among them (its key names the encounter: the scan finds it if it stays)
    aws_clients.client("s3").head_object(Bucket=driver.resources.artifacts_bucket,
                                         Key=f"notes/{second.encounter_id}/summary.json")

    erased = medscribe(driver, tmp_path, "erase", second.encounter_id, "--json")

    assert erased.returncode == 0, erased.stdout + erased.stderr
    report: dict[str, Any] = json.loads(erased.stdout)
    assert sorted(report["erased"]) == sorted(family)  # the revisions of the key and the paired ground truth
    deleted = report["deleted"]
    assert deleted["input object versions"] == 3  # two revisions of the recording, the ground truth
    assert deleted["table items"] >= 5  # three encounter items and at least two score items
    assert deleted["transcription jobs"] == 2
    assert deleted["search documents"] == 3
    assert deleted["artifact object versions"] >= 8
    assert deleted["source ordering items"] == 2
    assert deleted["content claims"] == 3  # one per stored content: an identical upload is new at once
    assert deleted["score reports rewritten"] >= 1
    assert deleted["outbox emails rewritten"] >= 1
    assert deleted["run folders rewritten"] == 1
    assert NAME not in erased.stdout + erased.stderr
    assert SAID not in erased.stdout + erased.stderr

    assert leftovers(driver, needles) == []
    # the bystander is untouched, in the table, its bucket, the run folder and its report
    assert driver.repository.get(bystander.encounter_id) is not None
    kept = json.loads(results.read_text(encoding="utf-8"))["encounters"]
    assert [row["encounter_id"] for row in kept] == [bystander.encounter_id]
    assert bystander.encounter_id in (results.parent / "report.html").read_text(encoding="utf-8")

    again = medscribe(driver, tmp_path, "erase", second.encounter_id)
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0
    assert "no encounter" in again.stderr
    assert "Traceback" not in again.stderr
