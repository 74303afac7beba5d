"""The VISIT template through the ingest and document handlers (moto, the offline engine): a vendored ACI-BENCH
dialogue uploaded under `template=VISIT` becomes a DOCUMENTED note of rewritten statements, every one of them
cited and supported by its cited lines according to the project's claim checker."""

from __future__ import annotations

import csv

import pytest

from medscribe.domain.encounter import EncounterStatus
from medscribe.domain.evidence import verify_claim
from medscribe.domain.notes import load_template
from tests.dialogues import DIALOGUES
from tests.handlers.test_templates import note_of, upload_text


@pytest.fixture
def load_handler(load_handler):  # type: ignore[no-untyped-def]
    return lambda name, **overrides: load_handler(name, **{"note_engine": "offline", **overrides})


def _aci_dialogue() -> bytes:
    with (DIALOGUES / "aci-bench" / "valid_virtscribe_humantrans.subset.csv").open(newline="", encoding="utf-8") as f:
        return next(csv.DictReader(f))["dialogue"].encode()


def test_a_visit_upload_gets_a_note_whose_every_statement_is_cited_and_verified(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter = upload_text(load_handler, world["bucket"], "text/clinic-a/template=visit/encounter.txt",
                            body=_aci_dialogue())
    assert (encounter.note_template, encounter.status) == ("VISIT", EncounterStatus.DOCUMENTED)
    note = note_of(encounter)
    assert (note["template"], note["engine"], note["problems"]) == ("VISIT", "offline", [])
    assert [s["name"] for s in note["sections"]] == list(load_template("VISIT").section_names)
    texts = {line["n"]: line["text"] for line in note["lines"]}
    items = [item for section in note["sections"] for item in section["items"]]
    assert len(items) >= 10
    for item in items:
        assert item["lines"]
        assert all(n in texts for n in item["lines"])
        assert verify_claim(item["text"], [texts[n] for n in item["lines"]]).ok, item["text"]
    rewritten = [item for item in items if item["text"] not in {texts[n] for n in item["lines"]}]
    assert rewritten, "statements are rewritten, not copied lines"
    filled = {s["name"] for s in note["sections"] if s["items"]}
    assert {"HISTORY OF PRESENT ILLNESS", "PHYSICAL EXAMINATION", "ASSESSMENT AND PLAN"} <= filled
