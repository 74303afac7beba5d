"""The offline entity extractor (medscribe.domain.offline_entities): terms, spans, traits, attributes, codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import simple_icd_10_cm as cm

from medscribe.domain.clinical_entities import Entity, EntitySet
from medscribe.domain.offline_entities import NOT_RXNORM, extract, lexicon
from medscribe.domain.transcript_lines import Line
from tests import FIXTURES

LAYER = Path(__file__).resolve().parents[2] / "layers" / "medscribe" / "python"
LEXICON = LAYER / "medscribe" / "lexicon"


def lines(*turns: tuple[str, str]) -> list[Line]:
    return [Line(n=n, speaker=speaker, start=0.0, end=0.0, text=text, confidence=None)
            for n, (speaker, text) in enumerate(turns, start=1)]


def only(found: EntitySet, text: str) -> Entity:
    matches = [e for e in found.entities if e.text.lower() == text.lower()]
    assert len(matches) == 1, [e.text for e in found.entities]
    return matches[0]


def test_a_no_to_the_clinicians_question_negates_the_symptoms_asked_about_with_both_lines_as_evidence() -> None:
    found = extract("enc-1", lines(("clinician", "OK. Any fever or night sweats?"), ("patient", "No."),
                                   ("clinician", "And any cough?"), ("patient", "Yes, a dry cough.")), "en-US")
    fever, sweats = only(found, "fever"), only(found, "night sweats")
    assert fever.negated
    assert sweats.negated
    assert fever.lines == (1, 2)
    assert [s.as_dict() for s in fever.spans] == [{"line": 1, "begin": 8, "end": 13}, {"line": 2, "begin": 0, "end": 2}]
    coughs = [e for e in found.entities if "cough" in e.text.lower()]
    assert coughs
    assert not any(e.negated for e in coughs)


def test_what_the_question_sets_aside_and_a_no_that_goes_on_to_a_but_do_not_negate() -> None:
    found = extract("enc-1", lines(("clinician", "Apart from the headache, any nausea?"), ("patient", "No."),
                                   ("clinician", "Any chest pain?"), ("patient", "No, but I have been dizzy.")),
                    "en-US")
    assert only(found, "nausea").negated
    assert not only(found, "headache").negated
    assert not only(found, "chest pain").negated


def test_negation_within_a_line_is_negex() -> None:
    found = extract("enc-1", lines(("patient", "She has a headache but denies chest pain.")), "en-US")
    assert not only(found, "headache").negated
    assert only(found, "chest pain").negated


def test_a_medication_carries_its_dose_frequency_and_route_from_its_line() -> None:
    found = extract("enc-2", lines(("clinician", "Start lisinopril 10 mg by mouth twice a day.")), "en-US")
    drug = only(found, "lisinopril")
    assert (drug.category, drug.type) == ("MEDICATION", "GENERIC_NAME")
    assert {(a.type, a.text) for a in drug.attributes} == {
        ("DOSAGE", "10 mg"), ("ROUTE_OR_MODE", "by mouth"), ("FREQUENCY", "twice a day")}
    assert drug.not_coded == NOT_RXNORM
    assert not drug.codes
    assert not any(e.category == "ANATOMY" for e in found.entities)  # "mouth" of "by mouth" is a route


def test_route_abbreviations_count_in_capitals_only() -> None:
    found = extract("enc-2", lines(("clinician", "Give ondansetron 4 mg IV now."),
                                   ("patient", "im taking aspirin, iv heard it helps")), "en-US")
    assert ("ROUTE_OR_MODE", "IV") in {(a.type, a.text) for a in only(found, "ondansetron").attributes}
    assert not only(found, "aspirin").attributes


def test_a_brand_name_is_a_brand() -> None:
    found = extract("enc-2", lines(("clinician", "We could try Lasix for the fluid.")), "en-US")
    assert only(found, "Lasix").type == "BRAND_NAME"


def test_a_condition_is_coded_with_a_code_and_description_from_simple_icd_10_cm() -> None:
    found = extract("enc-3", lines(("patient", "I have high blood pressure and a bad headache.")), "en-US")
    for text, code in (("high blood pressure", "I10"), ("headache", "R51.9")):
        entity = only(found, text)
        assert [c.code for c in entity.codes] == [code]
        assert cm.is_valid_item(code)
        assert entity.codes[0].description == cm.get_description(code)
        assert entity.codes[0].system == "ICD-10-CM"
    assert any("RxNorm" in note and "SNOMED CT" in note for note in found.notes)


def test_every_code_of_both_term_lists_is_a_valid_billable_icd_10_cm_code() -> None:
    for name in ("entities-en.json", "entities-ko.json"):
        raw = json.loads((LEXICON / name).read_text(encoding="utf-8"))
        codes = {(v[1] if isinstance(v, list) else v) for s in raw["sections"] for v in s["terms"].values()}
        codes.discard(None)
        assert codes
        invalid = sorted(c for c in codes if not (cm.is_valid_item(c) and cm.is_leaf(c)))
        assert not invalid, (name, invalid)


def test_a_korean_term_is_coded_and_a_listed_term_without_a_code_is_marked_not_coded() -> None:
    found = extract("enc-ko", lines(("patient", "두통이 있고 팔에 골절이 있어요.")), "ko-KR")
    headache, fracture = only(found, "두통"), only(found, "골절")
    assert [c.code for c in headache.codes] == ["R51.9"]
    assert headache.codes[0].description == cm.get_description("R51.9")
    assert not fracture.codes
    assert fracture.not_coded is not None
    assert "Korean" in fracture.not_coded
    assert any("Korean" in note for note in found.notes)
    assert only(found, "팔").category == "ANATOMY"


def test_korean_negation_within_a_line_and_by_an_answer() -> None:
    found = extract("enc-ko", lines(("clinician", "기침은 있으세요?"), ("patient", "아니요."),
                                    ("patient", "열은 없어요. 복통은 있어요.")), "ko-KR")
    assert only(found, "기침").negated
    assert only(found, "기침").lines == (1, 2)
    assert only(found, "열").negated
    assert not only(found, "복통").negated


def test_korean_medication_attributes_and_the_forms_of_korean_negation() -> None:
    note = "메트포르민 500mg 하루 2회 경구 복용 중. 기침은 안 해요. 아버지가 고혈압이 있어요."
    found = extract("enc-ko", lines(("note", note)), "ko-KR")
    drug = only(found, "메트포르민")
    assert {(a.type, a.text) for a in drug.attributes} == {
        ("DOSAGE", "500mg"), ("FREQUENCY", "하루 2회"), ("ROUTE_OR_MODE", "경구")}
    assert only(found, "기침").negated
    assert "PERTAINS_TO_FAMILY" in only(found, "고혈압").traits
    assert not only(found, "고혈압").negated


def test_family_past_history_and_hypothetical_traits() -> None:
    found = extract("enc-4", lines(("patient", "My father had diabetes."),
                                   ("patient", "I had a heart attack four years ago."),
                                   ("clinician", "If you develop chest pain, call us.")), "en-US")
    assert "PERTAINS_TO_FAMILY" in only(found, "diabetes").traits
    assert "PAST_HISTORY" in only(found, "heart attack").traits
    assert "HYPOTHETICAL" in only(found, "chest pain").traits
    assert "PERTAINS_TO_FAMILY" not in only(found, "heart attack").traits


def test_spans_point_at_the_entity_text_and_stay_inside_the_lines_given() -> None:
    data = json.loads((FIXTURES / "entities" / "labelled.json").read_text(encoding="utf-8"))
    for encounter in data["encounters"]:
        given = [Line(n=r["n"], speaker=r["speaker"], start=0.0, end=0.0, text=r["text"], confidence=None)
                 for r in encounter["lines"]]
        by_number = {line.n: line.text for line in given}
        found = extract(encounter["id"], given, encounter["language"])
        assert found.engine == "offline"
        assert found.entities
        for entity in found.entities:
            first = entity.spans[0]
            assert by_number[first.line][first.begin:first.end] == entity.text
            for span in (*entity.spans, *(s for a in entity.attributes for s in a.spans)):
                assert span.line in by_number
                assert 0 <= span.begin < span.end <= len(by_number[span.line])


def test_the_output_is_deterministic() -> None:
    turns = lines(("clinician", "Any chest pain or shortness of breath?"), ("patient", "No."),
                  ("patient", "I take metformin 500 mg twice daily."))
    assert extract("enc-5", turns, "en-US").as_dict() == extract("enc-5", turns, "en-US").as_dict()


def test_the_labelled_set_has_at_least_150_entities_with_valid_codes() -> None:
    data = json.loads((FIXTURES / "entities" / "labelled.json").read_text(encoding="utf-8"))
    entities = [e for encounter in data["encounters"] for e in encounter["entities"]]
    assert len(entities) >= 150
    for encounter in data["encounters"]:
        text = {r["n"]: r["text"] for r in encounter["lines"]}
        for e in encounter["entities"]:
            assert text[e["line"]][e["begin"]:e["end"]] == e["text"]
            assert e["icd10cm"] is None or cm.is_valid_item(e["icd10cm"])


def test_importing_the_extractor_loads_no_heavy_library() -> None:
    probe = (f"import sys; sys.path.insert(0, {str(LAYER)!r}); import medscribe.domain.offline_entities; "
             "print([m for m in ('spacy', 'negspacy', 'simple_icd_10_cm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_negation_pipeline_is_built_and_run_with_no_network() -> None:
    """spacy.blank("en") and negspacy need no model download: with every socket refused, extraction works."""
    probe = "\n".join([
        "import socket, sys",
        f"sys.path.insert(0, {str(LAYER)!r})",
        "class Refused(socket.socket):",
        "    def __init__(self, *args, **kwargs):",
        "        raise OSError('network used')",
        "socket.socket = Refused",
        "from medscribe.domain.offline_entities import extract",
        "from medscribe.domain.transcript_lines import Line",
        "turns = [Line(1, 'clinician', 0.0, 0.0, 'Any fever?', None), Line(2, 'patient', 0.0, 0.0, 'No.', None),",
        "         Line(3, 'patient', 0.0, 0.0, 'She denies chest pain.', None)]",
        "print(sorted((e.text, e.negated) for e in extract('enc', turns, 'en-US').entities))",
    ])
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[('chest pain', True), ('fever', True)]"


def test_the_lexicons_compile_for_both_languages() -> None:
    assert lexicon("en-US").terms["chest pain"].icd10cm == "R07.9"
    assert lexicon("ko-KR").terms["두통"].icd10cm == "R51.9"
