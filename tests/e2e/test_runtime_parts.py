"""The local runtime's own rules that need no emulator: Lambda's batch-response reading, waiting, keys."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.routes import Access, Route, S3Trigger
from medscribe_local.pollers import ExecutionEnvironments, failed_message_ids
from medscribe_local.uploads import Upload, input_key, result_rows, wait_for_terminal

pytestmark = pytest.mark.e2e

BATCH = frozenset({"m1", "m2", "m3"})


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}, {"m1", "m3"}),
        # Lambda treats these as a failure of the whole batch
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, BATCH),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, BATCH),
        ({"batchItemFailures": [{"id": "m1"}]}, BATCH),
        ({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, BATCH),
        ("unexpected", BATCH),
    ],
)
def test_batch_responses_are_read_as_lambda_reads_them(response: object, failed: set[str]) -> None:
    assert failed_message_ids(response, BATCH) == failed


@pytest.mark.parametrize(
    ("relative", "key"),
    [
        ("audio/clinic a/visit.wav", "audio/clinic a/visit.wav"),
        ("ground-truth/visit.txt", "ground-truth/visit.txt"),
        ("keywords/terms.csv", "keywords/terms.csv"),
        ("visit.MP3", "audio/visit.MP3"),
        ("day 1/visit.m4a", "audio/day 1/visit.m4a"),
        ("notes/visit.txt", "text/notes/visit.txt"),
        ("report.pdf", "text/report.pdf"),
        ("audiobook/x.txt", "text/audiobook/x.txt"),
    ],
)
def test_folder_files_map_to_input_keys(relative: str, key: str) -> None:
    assert input_key(PurePosixPath(relative)) == key


class StubRepository:
    """Stands in for EncounterRepository: some encounters exist and are terminal, one never appears."""

    def __init__(self, encounters: dict[str, Encounter]) -> None:
        self.encounters = encounters
        self.reads = 0

    def get(self, encounter_id: str) -> Encounter | None:
        self.reads += 1
        return self.encounters.get(encounter_id)


def test_waiting_times_out_and_names_what_is_missing() -> None:
    refs = [ObjectRef("b", f"text/{i}.txt", 10, version_id=f"v{i}") for i in range(3)]
    done = {r.encounter_id: Encounter.from_ref(r, Kind.GROUND_TRUTH, EncounterStatus.RECEIVED) for r in refs[:2]}
    repository = StubRepository(done)
    progress: list[tuple[int, int]] = []

    outcome = wait_for_terminal(repository, [r.encounter_id for r in refs], 0.3, lambda *p: progress.append(p))  # type: ignore[arg-type]

    assert not outcome.complete
    assert outcome.pending == [refs[2].encounter_id]
    assert progress[-1] == (2, 3)
    uploads = [(Upload(r.key, r.encounter_id, r.version_id or "", r.size), None) for r in refs]
    assert [row.status for row in result_rows(uploads, outcome)] == ["RECEIVED", "RECEIVED", "MISSING"]


def test_a_route_whose_handler_is_missing_fails_to_load_naming_the_file(tmp_path: Path) -> None:
    route = Route(name="absent", description="no handler yet", trigger=S3Trigger(prefixes=("x/",)),
                  access=frozenset({Access.TABLE_READ_WRITE}))

    with pytest.raises(RuntimeError, match=r"route absent: its handler lambdas/absent/handler\.py does not exist"):
        ExecutionEnvironments(route, tmp_path).acquire()
