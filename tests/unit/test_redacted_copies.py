"""The de-identified copies (medscribe.domain.redacted_copies) and DetectPHI's spans in them
(medscribe.domain.redaction.service_span): offline rules alone, and rules plus a detector's spans lined
up with the document's free texts; structure, line numbers and citations kept; counts without text."""

from __future__ import annotations

from collections.abc import Sequence

from medscribe.domain.redacted_copies import redacted_keys, redacted_note, redacted_transcript, remembering
from medscribe.domain.redaction import PhiSpan, free_texts, redact_document, service_span
from medscribe.domain.transcript_lines import Line, lines_from_json

LINES = [Line(1, "spk_0", 0.0, 2.0, "Good morning, Mr. Alvarez. Your MRN is 448-2291.", 0.9),
         Line(2, "spk_1", 2.0, 4.0, "Morning. Okonkwo drove me, my neighbour.", 0.8),
         Line(3, "spk_1", 4.0, 6.0, "I've had a cough since March 3.", None)]


def okonkwo(texts: Sequence[str], language: str) -> list[list[PhiSpan]]:
    """A detector that finds what the rules cannot: a name outside the lists with no title."""
    assert language == "en-US"
    return [[PhiSpan("NAME", t.index("Okonkwo"), t.index("Okonkwo") + 7)] if "Okonkwo" in t else [] for t in texts]


def test_keys_are_per_encounter_under_redacted() -> None:
    assert redacted_keys("enc-1") == {"transcript": "redacted/enc-1/transcript.json",
                                      "note": "redacted/enc-1/note.json", "emr": "redacted/enc-1/emr.json"}


def test_the_transcript_copy_keeps_numbers_speakers_and_times_and_reads_as_lines() -> None:
    copy = redacted_transcript("enc-1", LINES, "en-US")
    assert copy["engine"] == "rules"
    assert [line["text"] for line in copy["lines"]] == [
        "Good morning, Mr. [NAME]. Your MRN is [ID].", "Morning. Okonkwo drove me, my neighbour.",
        "I've had a cough since [DATE]."]  # the rules miss an unlisted name said without a title
    assert copy["redacted"] == {"DATE": 1, "ID": 1, "NAME": 1}
    assert [(x.n, x.speaker, x.start, x.end, x.confidence) for x in lines_from_json(copy)] == [
        (x.n, x.speaker, x.start, x.end, x.confidence) for x in LINES]


def test_a_detector_adds_its_spans_to_the_rules() -> None:
    copy = redacted_transcript("enc-1", LINES, "en-US", detector=okonkwo, engine="comprehend-medical+rules")
    assert copy["lines"][1]["text"] == "Morning. [NAME] drove me, my neighbour."
    assert copy["engine"] == "comprehend-medical+rules"
    assert copy["redacted"]["NAME"] == 2


def test_the_note_copy_redacts_claims_and_lines_and_keeps_citations_and_structure() -> None:
    note = {"template": "SOAP", "status": "DOCUMENTED", "engine": "offline",
            "lines": [{"n": 2, "speaker": "spk_1", "role": "patient", "text": LINES[1].text}],
            "sections": [{"name": "Subjective", "items": [{"text": "Okonkwo, a neighbour, drove Mr. Alvarez.",
                                                           "lines": [2]}]}], "problems": []}
    copy = redacted_note("enc-1", note, "en-US", detector=okonkwo)
    document = copy["document"]
    assert document["sections"] == [{"name": "Subjective", "items": [
        {"text": "[NAME], a neighbour, drove Mr. [NAME].", "lines": [2]}]}]
    assert document["lines"][0] == {"n": 2, "speaker": "spk_1", "role": "patient",
                                    "text": "Morning. [NAME] drove me, my neighbour."}
    assert (document["template"], document["status"]) == ("SOAP", "DOCUMENTED")
    assert copy["redacted"] == {"NAME": 3}


def test_extra_spans_line_up_with_the_free_texts_in_document_order() -> None:
    document = {"status": "x", "a": "alpha", "b": ["beta", {"code": "c", "text": "gamma"}]}
    assert free_texts(document) == ["alpha", "beta", "gamma"]
    copy, counts = redact_document(document, extra=[[], [PhiSpan("ID", 0, 4)], [PhiSpan("NAME", 0, 5)]])
    assert copy == {"status": "x", "a": "alpha", "b": ["[ID]", {"code": "c", "text": "[NAME]"}]}
    assert counts == {"ID": 1, "NAME": 1}


def test_detect_phi_types_map_to_categories_and_ages_under_90_stay() -> None:
    assert service_span("NAME", "John Smith", 3, 13) == PhiSpan("NAME", 3, 13)
    assert service_span("PHONE_OR_FAX", "555-0100", 0, 8) == PhiSpan("PHONE", 0, 8)
    assert service_span("PROFESSION", "teacher", 0, 7) == PhiSpan("PROFESSION", 0, 7)
    assert service_span("AGE", "48", 0, 2) is None
    assert service_span("AGE", "92", 0, 2) == PhiSpan("AGE", 0, 2)
    assert service_span("AGE", "ninety-one", 0, 10) == PhiSpan("AGE", 0, 10)
    assert service_span("AGE", "103", 0, 3) == PhiSpan("AGE", 0, 3)
    assert service_span("DX_NAME", "fever", 0, 5) is None
    assert service_span("NAME", "x", 4, 4) is None  # nothing left after clipping


def test_a_remembering_detector_asks_about_each_text_once() -> None:
    asked: list[list[str]] = []

    def detector(texts: Sequence[str], language: str) -> list[list[PhiSpan]]:
        asked.append(list(texts))
        return okonkwo(texts, language)

    detect = remembering(detector)
    transcript = redacted_transcript("enc-1", LINES, "en-US", detector=detect)
    note = {"lines": [line.as_dict() for line in LINES], "sections": [{"name": "Plan", "items": [
        {"text": "Okonkwo to drive", "lines": [2]}]}]}
    copy = redacted_note("enc-1", note, "en-US", detector=detect)
    assert asked == [[line.text for line in LINES], ["Plan", "Okonkwo to drive"]]  # the lines were not sent again
    assert copy["document"]["lines"] == transcript["lines"]
    assert copy["document"]["sections"][0]["items"][0]["text"] == "[NAME] to drive"
