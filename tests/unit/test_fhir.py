"""domain/fhir.py: the document Bundle of one note version, validated with fhir.resources (R4B) and the
document rules (tests/fhir_checks.py): claims linked to their transcript lines, coded entities as
resources with their evidence lines, negated findings never asserted present, placeholders that invent
no PHI, escaped narratives, and byte-identical re-exports."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from medscribe.domain.clinical_entities import entity_set_from_dict
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.fhir import (
    ENTITIES_SECTION,
    ExportClaim,
    ExportSection,
    ExportSource,
    document_bundle,
)
from tests.fhir_checks import evidence_lines, resources, sample_entities, validate

ATTACK = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
REF = ObjectRef(bucket="input", key="audio/clinic a/visit 1.mp3", size=12345, version_id="v1")
ENCOUNTER = replace(Encounter.from_ref(REF, Kind.AUDIO, EncounterStatus.DOCUMENTED, media_format="mp3"),
                    transcript_key=f"transcripts/{REF.encounter_id}/lines.json", note_engine="offline")
LINES = tuple({"n": n, "speaker": f"spk_{n % 2}", "role": "clinician" if n % 2 else "patient",
               "text": f"line {n} text"} for n in range(1, 13))


def source(**changes: Any) -> ExportSource:
    base = ExportSource(
        encounter=ENCOUNTER, version=0, signed=False, at="2026-12-04T10:00:00.000Z", author_id=None,
        template="hp", engine="offline",
        sections=(ExportSection("Chief complaint", (ExportClaim("Chest pain for two days", (2, 3)),)),
                  ExportSection("Plan", (ExportClaim(ATTACK, (4,)), ExportClaim("Aspirin daily", (4, 5)))),
                  ExportSection("Review of systems", ())),
        lines=LINES, cited=True, transcript_uri=f"s3://artifacts/{ENCOUNTER.transcript_key}",
        entities=entity_set_from_dict(sample_entities(ENCOUNTER.encounter_id)))
    return replace(base, **changes)


def composition(bundle: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = bundle["entry"][0]["resource"]
    return resource


def test_an_unsigned_note_is_a_valid_preliminary_document_with_one_section_per_note_section() -> None:
    bundle = document_bundle(source())
    validate(bundle)
    doc = composition(bundle)
    assert doc["status"] == "preliminary"
    assert doc["type"]["coding"][0] == {"system": "http://loinc.org", "code": "34117-2",
                                        "display": "History and physical note"}
    assert [s["title"] for s in doc["section"]] == ["Chief complaint", "Plan", "Review of systems", ENTITIES_SECTION]
    assert "attester" not in doc
    assert {r["resourceType"] for r in (e["resource"] for e in bundle["entry"])} >= {
        "Composition", "Patient", "Encounter", "Practitioner", "Device", "DocumentReference"}
    empty = doc["section"][2]
    assert empty["emptyReason"]["coding"][0]["code"] == "unavailable"
    assert document_bundle(source(template="soap"))["entry"][0]["resource"]["type"]["coding"][0]["code"] == "11506-3"


def test_every_claim_links_to_its_cited_lines_in_the_narrative_and_an_extension() -> None:
    bundle = document_bundle(source())
    [transcript] = [r for r in resources(bundle, "DocumentReference") if r["description"] != "Recording"]
    plan = composition(bundle)["section"][1]
    assert evidence_lines(plan["extension"]) == [[4], [4, 5]]
    assert [p["valuePositiveInt"] for e in plan["extension"] for p in e["extension"] if p["url"] == "item"] == [1, 2]
    sources = {p["valueReference"]["reference"] for e in plan["extension"] for p in e["extension"]
               if p["url"] == "source"}
    assert sources == {f"urn:uuid:{transcript['id']}"}
    assert plan["entry"] == [{"reference": f"urn:uuid:{transcript['id']}"}]
    assert "[lines 4, 5]" in plan["text"]["div"]
    assert "[lines 2, 3]" in composition(bundle)["section"][0]["text"]["div"]
    attachment = transcript["content"][0]["attachment"]
    embedded = json.loads(base64.b64decode(attachment["data"]))
    assert [line["n"] for line in embedded["lines"]] == list(range(1, 13))
    assert attachment["url"] == f"s3://artifacts/{ENCOUNTER.transcript_key}"


def test_narratives_escape_everything() -> None:
    bundle = document_bundle(source())
    div = composition(bundle)["section"][1]["text"]["div"]
    assert "<script" not in div
    assert "<img" not in div
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in div
    validate(document_bundle(source(sections=(ExportSection("Plan", (ExportClaim("bell \x07 here", (1,)),)),))))


def test_the_recording_and_transcript_are_document_references() -> None:
    bundle = document_bundle(source())
    [recording] = [r for r in resources(bundle, "DocumentReference") if r["description"] == "Recording"]
    attachment = recording["content"][0]["attachment"]
    assert attachment == {"contentType": "audio/mpeg", "url": "s3://input/audio/clinic%20a/visit%201.mp3",
                          "title": "Recording", "size": 12345}
    [transcript] = [r for r in resources(bundle, "DocumentReference") if r is not recording]
    assert transcript["relatesTo"] == [{"code": "transforms", "target": {"reference": f"urn:uuid:{recording['id']}"}}]


def test_a_coded_condition_and_a_medication_carry_their_codes_and_evidence_lines() -> None:
    bundle = document_bundle(source())
    [transcript] = [r for r in resources(bundle, "DocumentReference") if r["description"] != "Recording"]
    conditions = {c["code"]["text"]: c for c in resources(bundle, "Condition")}
    chest = conditions["chest pain"]
    assert chest["code"]["coding"] == [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R07.9",
                                        "display": "Chest pain, unspecified"}]
    assert evidence_lines(chest["extension"]) == [[2, 3]]
    assert chest["evidence"] == [{"detail": [{"reference": f"urn:uuid:{transcript['id']}"}]}]
    assert chest["clinicalStatus"]["coding"][0]["code"] == "active"
    assert chest["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    [aspirin] = [m for m in resources(bundle, "MedicationStatement") if m["status"] == "active"]
    assert aspirin["medicationCodeableConcept"]["coding"] == [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1191", "display": "aspirin"}]
    assert aspirin["dosage"] == [{"text": "dosage: 81 mg; frequency: daily"}]
    assert evidence_lines(aspirin["extension"]) == [[4]]
    assert aspirin["derivedFrom"] == [{"reference": f"urn:uuid:{transcript['id']}"}]
    [allergy] = resources(bundle, "AllergyIntolerance")
    assert allergy["code"]["coding"][0]["system"] == "http://snomed.info/sct"
    [procedure] = resources(bundle, "Procedure")
    assert (procedure["code"]["text"], procedure["status"]) == ("ECG", "completed")
    [observation] = resources(bundle, "Observation")
    assert (observation["code"]["text"], observation["valueString"]) == ("blood pressure", "140/90")
    assert conditions["palpitations"]["code"] == {"text": "palpitations"}  # not coded: text only
    section = composition(bundle)["section"][-1]
    assert len(section["entry"]) == len(resources(bundle, "Condition")) + 5
    assert "offline: RxNorm and SNOMED CT are not coded" in section["text"]["div"]


def test_negated_and_family_findings_are_never_asserted_present() -> None:
    bundle = document_bundle(source())
    conditions = {c["code"]["text"]: c for c in resources(bundle, "Condition")}
    fever = conditions["fever"]
    assert fever["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert "clinicalStatus" not in fever
    assert "diabetes" not in conditions  # a family member's: not the patient's condition
    [ibuprofen] = [m for m in resources(bundle, "MedicationStatement") if m["medicationCodeableConcept"]["text"]
                   == "ibuprofen"]
    assert ibuprofen["status"] == "not-taken"
    assert all(o["code"]["text"] != "chest x-ray" for o in resources(bundle, "Observation"))
    text = composition(bundle)["section"][-1]["text"]["div"]
    assert "chest x-ray: not asserted (negated)" in text
    assert "diabetes: not asserted (about a family member)" in text
    assert all(r["code"]["text"] != "chest" for r in resources(bundle, "Condition"))  # anatomy: no resource


def test_without_entities_there_are_no_clinical_resources_and_the_section_says_why() -> None:
    bundle = document_bundle(source(entities=None, entities_note="No coded entities: the stage has not run."))
    validate(bundle)
    for kind in ("Condition", "MedicationStatement", "AllergyIntolerance", "Procedure", "Observation"):
        assert resources(bundle, kind) == []
    section = composition(bundle)["section"][-1]
    assert "No coded entities: the stage has not run." in section["text"]["div"]
    assert section["emptyReason"]["coding"][0]["code"] == "notstarted"


def test_no_phi_is_invented_for_the_placeholders() -> None:
    bundle = document_bundle(source())
    [patient] = resources(bundle, "Patient")
    assert set(patient) == {"resourceType", "id", "meta", "text"}
    [practitioner] = resources(bundle, "Practitioner")
    assert "identifier" not in practitioner  # the pipeline's note: no clinician
    assert set(practitioner) == {"resourceType", "id", "meta", "text"}
    signed = document_bundle(source(version=2, signed=True, author_id="3f1c2a9e-1111-2222-3333-444455556666"))
    [practitioner] = resources(signed, "Practitioner")
    assert practitioner["identifier"] == [{"system": "https://medscribe.example.org/fhir/sid/workspace-actor",
                                           "value": "3f1c2a9e-1111-2222-3333-444455556666"}]
    assert "name" not in practitioner


def test_a_signed_version_is_final_with_a_legal_attester() -> None:
    bundle = document_bundle(source(version=2, signed=True, author_id="local-alice", at="2026-12-04T11:00:00.000Z"))
    validate(bundle)
    doc = composition(bundle)
    [practitioner] = resources(bundle, "Practitioner")
    assert doc["status"] == "final"
    assert doc["attester"] == [{"mode": "legal", "time": "2026-12-04T11:00:00.000Z",
                                "party": {"reference": f"urn:uuid:{practitioner['id']}"}}]
    assert {"reference": f"urn:uuid:{practitioner['id']}"} in doc["author"]
    assert bundle["timestamp"] == "2026-12-04T11:00:00.000Z"
    unsigned = document_bundle(source(version=2))
    assert unsigned["identifier"] != bundle["identifier"]


def test_exports_are_deterministic_and_ids_differ_between_encounters() -> None:
    assert json.dumps(document_bundle(source())) == json.dumps(document_bundle(source()))
    other = replace(ENCOUNTER, encounter_id="enc-" + "f" * 32)
    first, second = document_bundle(source()), document_bundle(source(encounter=other))
    assert {e["fullUrl"] for e in first["entry"]}.isdisjoint({e["fullUrl"] for e in second["entry"]})


def test_an_emr_record_has_sections_without_citations_and_the_uploaded_text_as_source() -> None:
    text = replace(Encounter.from_ref(ObjectRef(bucket="input", key="text/n.txt", size=9, version_id="v"),
                                      Kind.TEXT, EncounterStatus.DOCUMENTED), note_engine="offline")
    bundle = document_bundle(source(
        encounter=text, template=None, cited=False, lines=(), entities=None, entities_note="none",
        sections=(ExportSection("Symptoms and Signs", (ExportClaim("ankle pain", ()),)),),
        transcript_uri="s3://input/text/n.txt"))
    validate(bundle)
    assert resources(bundle, "DocumentReference")[0]["content"][0]["attachment"] == {
        "title": "Uploaded note", "contentType": "text/plain; charset=utf-8", "url": "s3://input/text/n.txt"}
    section = composition(bundle)["section"][0]
    assert "extension" not in section
    assert "no line citations" in section["text"]["div"]
    assert composition(bundle)["type"]["coding"][0]["code"] == "11506-3"


@pytest.mark.parametrize("media", [("wav", "audio/wav"), ("m4a", "audio/mp4"), (None, "audio/mpeg")])
def test_recording_content_types(media: tuple[str | None, str]) -> None:
    bundle = document_bundle(source(encounter=replace(ENCOUNTER, media_format=media[0])))
    recording = next(r for r in resources(bundle, "DocumentReference") if r["description"] == "Recording")
    assert recording["content"][0]["attachment"]["contentType"] == media[1]


def test_the_after_visit_summary_is_a_document_reference_in_its_language_with_per_sentence_evidence() -> None:
    summary = {"template": "AFTER_VISIT_SUMMARY_KO", "language": "ko", "title": "진료 요약", "engine": "offline",
               "status": "NEEDS_REVIEW", "lines": [dict(line) for line in LINES[:4]], "problems": [], "notes": [],
               "sections": [{"name": "why_you_came", "title": "방문 이유", "sentences": [
                   {"text": "이틀 전부터 가슴 통증", "lines": [2, 3], "verified": True},
                   {"text": ATTACK, "lines": [4], "verified": False}]},
                   {"name": "next_steps", "title": "앞으로의 계획", "sentences": []}]}
    bundle = document_bundle(source(summary=summary))
    validate(bundle)
    doc = composition(bundle)
    assert [s["title"] for s in doc["section"]][-2:] == ["After-visit summary", ENTITIES_SECTION]
    [reference] = [r for r in resources(bundle, "DocumentReference") if r["description"] == "After-visit summary"]
    assert doc["section"][-2]["entry"] == [{"reference": f"urn:uuid:{reference['id']}"}]
    attachment = reference["content"][0]["attachment"]
    assert (attachment["language"], attachment["contentType"]) == ("ko", "application/json")
    assert json.loads(base64.b64decode(attachment["data"])) == summary
    assert evidence_lines(reference["extension"]) == [[2, 3], [4]]
    transcript = next(r for r in resources(bundle, "DocumentReference") if r["description"] != "After-visit summary"
                      and r["description"] != "Recording")
    assert reference["relatesTo"] == [{"code": "transforms", "target": {"reference": f"urn:uuid:{transcript['id']}"}}]
    div = reference["text"]["div"]
    assert "이틀 전부터 가슴 통증 [lines 2, 3]</li>" in div
    assert "&lt;script&gt;" in div
    assert "(not supported by its cited lines)" in div  # the unverified sentence says so
    assert "<script>" not in json.dumps(doc)
    assert all(r["description"] != "After-visit summary" for r in resources(document_bundle(source()),
                                                                             "DocumentReference"))
