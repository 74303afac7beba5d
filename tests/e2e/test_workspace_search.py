"""In the local runtime, search follows the clinician's versions: a save moves the note head, the runtime's
stream pump hands the change to the index route as the Pipe does in AWS, and the SQLite index then holds
the current version's words (issue 16). Dialogue text from tests/fixtures/dialogues/fareez-osce (CC BY 4.0,
Fareez et al. 2022)."""

from __future__ import annotations

import json

import pytest

from medscribe.adapters.search_sqlite import SqliteSearchIndex
from medscribe.domain.audit import Actor
from medscribe.services.wiring import workspace_service
from tests import FIXTURES
from tests.e2e.conftest import Driver, e2e_settings, eventually

pytestmark = pytest.mark.e2e

ALICE = Actor("local-alice", "clinician")
INDEX_WAIT = 120  # seconds


def test_a_saved_edit_replaces_the_notes_words_in_the_local_search_index(driver: Driver) -> None:
    dialogue = (FIXTURES / "dialogues" / "fareez-osce" / "GAS0001.txt").read_bytes()
    [done] = driver.wait(driver.put(driver.unique("text", "visit.txt"), dialogue), timeout=INDEX_WAIT)
    workspace = workspace_service(driver.resources.function_settings(e2e_settings()))
    index = SqliteSearchIndex(driver.runtime.paths.search_db)

    def found(word: str) -> bool:
        return done.encounter_id in {hit.encounter_id for hit in index.search(word)}

    def save(base: int, text: str) -> None:
        sections = json.loads(json.dumps(workspace.encounter(ALICE, done.encounter_id)["note"]["sections"]))
        if base == 0:
            sections[0]["items"].append({"text": text, "lines": [1]})
        else:
            sections[0]["items"][-1]["text"] = text
        workspace.save_note(ALICE, done.encounter_id, base_version=base, note={"sections": sections})

    try:
        # the index route may still be working through earlier tests' stream changes (the burst's among them):
        # the waits are generous, and a passing run returns as soon as the index holds the words
        eventually(lambda: found("nauseated") or None, timeout=INDEX_WAIT)  # the encounter is indexed
        assert not found("quokka")
        save(0, "Owns a pet quokka")
        eventually(lambda: found("quokka") or None, timeout=INDEX_WAIT)
        save(1, "Owns a pet wombat")
        eventually(lambda: (found("wombat") and not found("quokka")) or None, timeout=INDEX_WAIT)
    finally:
        index.close()
