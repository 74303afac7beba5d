"""Amazon Comprehend Medical's entities and codes (medscribe.adapters.comprehend_medical) through
botocore's Stubber, which validates every request and response against the service model
(comprehendmedical 2018-10-30): DetectEntitiesV2, InferICD10CM, InferRxNorm and InferSNOMEDCT answers
in the service's own shapes (traits, attributes with their relationship, concepts, SNOMED CT edition
details), a transcript over the request size limit in multi-byte text (several calls, offsets
right), and throttling (TooManyRequestsException, the service's HTTP 429) retried, then given up as
a TransientError."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from medscribe.adapters.comprehend_medical import (
    DETECT_TEXT_BYTES,
    INFER_TEXT_BYTES,
    KOREAN_NOTE,
    ComprehendMedicalEntities,
    utf8_pieces,
)
from medscribe.domain.clinical_entities import Entity, LineText
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.domain.transcript_lines import Line

LINES = [
    Line(1, "spk_0", 0.0, 1.5, "What brings you in today?", 0.98),
    Line(2, "spk_1", 1.6, 4.0, "I have had a fever and a cough for three days.", 0.95),
    Line(3, "spk_0", 4.1, 5.0, "Are you taking anything for it?", 0.97),
    Line(4, "spk_1", 5.1, 9.0, "Ibuprofen 400 mg twice a day by mouth. No chest pain.", 0.93),
]
TEXT = LineText(LINES).text


def at(text: str, phrase: str, after: int = 0) -> tuple[int, int]:
    begin = text.index(phrase, after)
    return begin, begin + len(phrase)


def detected(text: str) -> dict[str, Any]:
    """DetectEntitiesV2's answer for TEXT, as the service gives it (the API reference's example shapes)."""
    fever, cough, drug, chest = (at(text, w) for w in ("fever", "cough", "Ibuprofen", "chest pain"))
    strength, frequency, route = (at(text, w) for w in ("400 mg", "twice a day", "by mouth"))
    days = at(text, "for three days")

    def attribute(kind: str, where: tuple[int, int], n: int, category: str = "MEDICATION") -> dict[str, Any]:
        return {"Type": kind, "Score": 0.99, "RelationshipScore": 0.98, "Id": n, "BeginOffset": where[0],
                "EndOffset": where[1], "Text": text[where[0]:where[1]], "Category": category, "Traits": []}

    return {"Entities": [
        {"Id": 0, "BeginOffset": fever[0], "EndOffset": fever[1], "Score": 0.99, "Text": "fever",
         "Category": "MEDICAL_CONDITION", "Type": "DX_NAME", "Traits": [{"Name": "SYMPTOM", "Score": 0.95}],
         "Attributes": [{**attribute("TIME_TO_DX_NAME", days, 1, "TIME_EXPRESSION"), "RelationshipType": "OVERLAP"}]},
        {"Id": 2, "BeginOffset": cough[0], "EndOffset": cough[1], "Score": 0.98, "Text": "cough",
         "Category": "MEDICAL_CONDITION", "Type": "DX_NAME", "Traits": [{"Name": "SYMPTOM", "Score": 0.93}]},
        {"Id": 3, "BeginOffset": drug[0], "EndOffset": drug[1], "Score": 0.997, "Text": "Ibuprofen",
         "Category": "MEDICATION", "Type": "GENERIC_NAME", "Traits": [],
         "Attributes": [{**attribute("STRENGTH", strength, 4), "RelationshipType": "STRENGTH"},
                        {**attribute("FREQUENCY", frequency, 5), "RelationshipType": "FREQUENCY"},
                        {**attribute("ROUTE_OR_MODE", route, 6), "RelationshipType": "ROUTE_OR_MODE"}]},
        {"Id": 7, "BeginOffset": chest[0], "EndOffset": chest[1], "Score": 0.96, "Text": "chest pain",
         "Category": "MEDICAL_CONDITION", "Type": "DX_NAME",
         "Traits": [{"Name": "NEGATION", "Score": 0.97}, {"Name": "SYMPTOM", "Score": 0.9}]},
        {"Id": 8, "BeginOffset": days[0] + 4, "EndOffset": days[1], "Score": 0.6, "Text": "three days",
         "Category": "PROTECTED_HEALTH_INFORMATION", "Type": "DATE", "Traits": []},
    ], "UnmappedAttributes": [], "ModelVersion": "2.4.0"}


def inferred(text: str, concepts_key: str, found: dict[str, tuple[str, str, list[tuple[str, str, float]]]],
             **extra: Any) -> dict[str, Any]:
    """An Infer* answer: phrase -> (category, type, concepts (code, description, score))."""
    entities = []
    for n, (phrase, (category, kind, concepts)) in enumerate(found.items()):
        begin, end = at(text, phrase)
        traits = [{"Name": "NEGATION", "Score": 0.95}] if phrase == "chest pain" else []
        entities.append({"Id": n, "Text": phrase, "Category": category, "Type": kind, "Score": 0.9,
                         "BeginOffset": begin, "EndOffset": end, "Attributes": [], "Traits": traits,
                         concepts_key: [{"Description": d, "Code": c, "Score": s} for c, d, s in concepts]})
    return {"Entities": entities, "ModelVersion": "0.1.0", **extra}


def icd(text: str) -> dict[str, Any]:
    return inferred(text, "ICD10CMConcepts", {
        "fever": ("MEDICAL_CONDITION", "DX_NAME", [("R50.9", "Fever, unspecified", 0.87),
                                                   ("R50.81", "Fever presenting with conditions classified elsewhere",
                                                    0.1)]),
        "cough": ("MEDICAL_CONDITION", "DX_NAME", [("R05.9", "Cough, unspecified", 0.8)]),
        "chest pain": ("MEDICAL_CONDITION", "DX_NAME", [("R07.9", "Chest pain, unspecified", 0.85)]),
    })


def rxnorm(text: str) -> dict[str, Any]:
    return inferred(text, "RxNormConcepts", {
        "Ibuprofen": ("MEDICATION", "GENERIC_NAME", [("5640", "ibuprofen", 0.6),
                                                     ("197806", "ibuprofen 400 MG Oral Tablet", 0.8)]),
    })


def snomed(text: str) -> dict[str, Any]:
    return inferred(text, "SNOMEDCTConcepts", {
        "fever": ("MEDICAL_CONDITION", "DX_NAME", [("386661006", "Fever (finding)", 0.9)]),
        "chest pain": ("MEDICAL_CONDITION", "DX_NAME", [("29857009", "Chest pain (finding)", 0.88)]),
        "mouth": ("ANATOMY", "SYSTEM_ORGAN_SITE", [("123851003", "Mouth region structure (body structure)", 0.7)]),
    }, SNOMEDCTDetails={"Edition": "US", "Language": "en", "VersionDate": "20200901"},
        Characters={"OriginalTextCharacters": len(text)})


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, ComprehendMedicalEntities, list[float]]]:
    client = boto3.client("comprehendmedical", region_name="us-east-1")
    sleeps: list[float] = []
    with Stubber(client) as stubber:
        yield stubber, ComprehendMedicalEntities(client, attempts=3, sleep=sleeps.append), sleeps
        stubber.assert_no_pending_responses()


def answer_all(stubber: Stubber, text: str) -> None:
    stubber.add_response("detect_entities_v2", detected(text), {"Text": text})
    stubber.add_response("infer_icd10_cm", icd(text), {"Text": text})
    stubber.add_response("infer_rx_norm", rxnorm(text), {"Text": text})
    stubber.add_response("infer_snomedct", snomed(text), {"Text": text})


def covered(entity: Entity) -> str:
    by_number = {line.n: line.text for line in LINES}
    return " ".join(by_number[s.line][s.begin:s.end] for s in entity.spans)


def test_entities_carry_codes_traits_attributes_scores_and_line_spans(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, _ = stubbed
    answer_all(stubber, TEXT)
    result = engine.extract("enc-1", LINES, "en-US")
    by_text = {entity.text: entity for entity in result.entities}
    assert result.engine == "comprehend-medical"
    assert list(by_text) == ["fever", "cough", "Ibuprofen", "mouth", "chest pain"]  # in text order; no PHI
    assert [e.id for e in result.entities] == ["e1", "e2", "e3", "e4", "e5"]
    for entity in result.entities:
        assert covered(entity) == entity.text  # the spans point at the words, line by line
    fever = by_text["fever"]
    assert fever.lines == (2,)
    assert fever.score == 0.99
    assert fever.traits == ("SYMPTOM",)
    assert [(c.system, c.code) for c in fever.codes] == [("ICD-10-CM", "R50.9"), ("SNOMED CT", "386661006")]
    assert [(a.type, a.text, a.spans[0].line) for a in fever.attributes] == [("TIME_TO_DX_NAME", "for three days", 2)]
    drug = by_text["Ibuprofen"]
    assert [(c.system, c.code, c.description) for c in drug.codes] == [
        ("RxNorm", "197806", "ibuprofen 400 MG Oral Tablet")]  # the best-scored concept
    assert [(a.type, a.text) for a in drug.attributes] == [
        ("STRENGTH", "400 mg"), ("FREQUENCY", "twice a day"), ("ROUTE_OR_MODE", "by mouth")]
    assert all(LINES[3].text[a.spans[0].begin:a.spans[0].end] == a.text for a in drug.attributes)
    chest = by_text["chest pain"]
    assert chest.negated
    assert chest.lines == (4,)
    assert {c.system for c in chest.codes} == {"ICD-10-CM", "SNOMED CT"}
    cough = by_text["cough"]
    assert [c.code for c in cough.codes] == ["R05.9"]
    assert cough.not_coded is None
    mouth = by_text["mouth"]  # SNOMED CT found what DetectEntitiesV2 did not: an entity of its own
    assert (mouth.category, mouth.type, mouth.codes[0].code) == ("ANATOMY", "SYSTEM_ORGAN_SITE", "123851003")
    assert result.with_code("ICD-10-CM", "R50.9") == (fever,)


def test_a_condition_no_ontology_codes_says_why(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, _ = stubbed
    stubber.add_response("detect_entities_v2", detected(TEXT), {"Text": TEXT})
    for method in ("infer_icd10_cm", "infer_rx_norm", "infer_snomedct"):
        stubber.add_response(method, {"Entities": [], "ModelVersion": "0.1.0"}, {"Text": TEXT})
    result = engine.extract("enc-1", LINES, "en-US")
    assert {e.text: e.not_coded for e in result.entities} == {
        "fever": "Comprehend Medical linked no ICD-10-CM or SNOMED CT concept",
        "cough": "Comprehend Medical linked no ICD-10-CM or SNOMED CT concept",
        "Ibuprofen": "Comprehend Medical linked no RxNorm concept",
        "chest pain": "Comprehend Medical linked no ICD-10-CM or SNOMED CT concept",
    }


def test_text_over_the_limit_is_split_at_lines_in_bytes_with_offsets_mapped_back(stubbed) -> None:  # type: ignore[no-untyped-def]
    """Multi-byte text: 400 lines of about 62 bytes but 50 characters: 25 kB, more than one
    DetectEntitiesV2 request and three Infer* requests, though under 20,000 characters."""
    stubber, engine, _ = stubbed
    lines = [Line(n, "spk_1", 0.0, 0.0, f"Le café était froid, fièvre légère — {n:04d} fever.", None)
             for n in range(1, 401)]
    joined = LineText(lines)
    assert len(joined.text) < 20_000 < len(joined.text.encode("utf-8"))
    detect_pieces = utf8_pieces(joined.text, DETECT_TEXT_BYTES)
    infer_pieces = utf8_pieces(joined.text, INFER_TEXT_BYTES)
    assert (len(detect_pieces), len(infer_pieces)) == (2, 3)
    for pieces, limit in ((detect_pieces, DETECT_TEXT_BYTES), (infer_pieces, INFER_TEXT_BYTES)):
        assert "".join(piece for _, piece in pieces) == joined.text
        assert all(len(piece.encode("utf-8")) <= limit and joined.text[offset:].startswith(piece)
                   for offset, piece in pieces)
        assert all(piece.endswith("\n") for _, piece in pieces[:-1])  # cut at line boundaries
    last = "Le café était froid, fièvre légère — 0400 fever."
    fever_at = last.index("fever")
    for _, piece in detect_pieces:  # the entity is on the last line, in the second piece only
        found = [] if last not in piece else [{
            "Id": 0, "BeginOffset": piece.index(last) + fever_at, "EndOffset": piece.index(last) + fever_at + 5,
            "Score": 0.9, "Text": "fever", "Category": "MEDICAL_CONDITION", "Type": "DX_NAME", "Traits": []}]
        stubber.add_response("detect_entities_v2", {"Entities": found, "ModelVersion": "2.4.0"}, {"Text": piece})
    for method, concepts in (("infer_icd10_cm", "ICD10CMConcepts"), ("infer_rx_norm", None),
                             ("infer_snomedct", None)):
        for _, piece in infer_pieces:
            found = [] if concepts is None or last not in piece else [{
                "Id": 0, "Text": "fever", "Category": "MEDICAL_CONDITION", "Type": "DX_NAME", "Score": 0.9,
                "BeginOffset": piece.index(last) + fever_at, "EndOffset": piece.index(last) + fever_at + 5,
                concepts: [{"Description": "Fever, unspecified", "Code": "R50.9", "Score": 0.8}]}]
            stubber.add_response(method, {"Entities": found, "ModelVersion": "0.1.0"}, {"Text": piece})
    [fever] = engine.extract("enc-1", lines, "en").entities
    (span,) = fever.spans
    assert span.line == 400
    assert lines[-1].text[span.begin:span.end] == "fever"
    assert [c.code for c in fever.codes] == ["R50.9"]  # merged across different pieces of the two limits


def test_pieces_never_cut_inside_a_character_and_skip_blank_text() -> None:
    text = "가" * 5000  # 3 bytes each, no line break or space: cut hard between characters
    pieces = utf8_pieces(text, 10_000)
    assert [len(p.encode("utf-8")) for _, p in pieces] == [9999, 5001]
    assert utf8_pieces("  \n \n", 100) == []
    with pytest.raises(ValueError, match="any one character"):
        utf8_pieces("abc", 3)


@pytest.mark.parametrize(("code", "status"), [("TooManyRequestsException", 429), ("ThrottlingException", 400),
                                              ("ServiceUnavailableException", 503)])
def test_throttling_backs_off_and_then_succeeds(stubbed, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, sleeps = stubbed
    stubber.add_client_error("detect_entities_v2", service_error_code=code, http_status_code=status)
    answer_all(stubber, TEXT)
    assert len(engine.extract("enc-1", LINES, "en-US").entities) == 5
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 0.5


def test_throttling_that_persists_is_a_transient_error(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, sleeps = stubbed
    stubber.add_response("detect_entities_v2", detected(TEXT), {"Text": TEXT})
    for _ in range(3):
        stubber.add_client_error("infer_icd10_cm", service_error_code="TooManyRequestsException", http_status_code=429)
    with pytest.raises(TransientError, match="InferICD10CM TooManyRequestsException after 3 attempts"):
        engine.extract("enc-1", LINES, "en-US")
    assert len(sleeps) == 2


def test_a_rejected_request_is_a_permanent_error_without_retries(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, sleeps = stubbed
    stubber.add_client_error("detect_entities_v2", service_error_code="TextSizeLimitExceededException",
                             http_status_code=400)
    with pytest.raises(PermanentError, match="TextSizeLimitExceededException"):
        engine.extract("enc-1", LINES, "en-US")
    assert sleeps == []


@pytest.mark.parametrize(("language", "note"), [("ko-KR", KOREAN_NOTE), ("ko", KOREAN_NOTE),
                                                ("identify", "Comprehend Medical reads English only; not coded")])
def test_other_languages_are_not_sent(stubbed, language: str, note: str) -> None:  # type: ignore[no-untyped-def]
    _, engine, _ = stubbed
    result = engine.extract("enc-1", LINES, language)
    assert (result.entities, result.notes, result.language) == ((), (note,), language)
