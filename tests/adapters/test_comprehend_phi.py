"""Amazon Comprehend Medical's DetectPHI (medscribe.adapters.comprehend_medical.ComprehendMedicalEntities.
detect_phi) through botocore's Stubber, which validates every request and response against the service
model (comprehendmedical 2018-10-30): answers in the service's shape (the Detect PHI guide's example:
a NAME, an AGE, a PROFESSION and an ADDRESS, each PROTECTED_HEALTH_INFORMATION with its offsets), texts
joined and mapped back to the text each span falls in, a request over the size limit split in
multi-byte text with the offsets of the second piece right, and throttling retried, then given up as a
TransientError."""

from __future__ import annotations

from typing import Any

import pytest

from medscribe.adapters.comprehend_medical import DETECT_TEXT_BYTES, utf8_pieces
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.domain.redaction import PhiSpan
from tests.adapters.test_comprehend_medical import stubbed as stubbed  # the Stubber and the adapter, attempts=3

__all__ = ["stubbed"]

TEXTS = ["The patient is John Smith, a 48-year-old teacher and resident of Seattle, Washington.",
         "His father is 92 years old; call him at 206-555-0100."]
JOINED = "\n".join(TEXTS)


def phi(text: str, found: list[tuple[str, str]], after: int = 0) -> dict[str, Any]:
    """DetectPHI's answer: (type, phrase) in order of appearance, as the service gives them."""
    entities, position = [], after
    for n, (kind, phrase) in enumerate(found):
        begin = text.index(phrase, position)
        position = begin + len(phrase)
        entities.append({"Id": n, "BeginOffset": begin, "EndOffset": position, "Score": 0.99, "Text": phrase,
                         "Category": "PROTECTED_HEALTH_INFORMATION", "Type": kind, "Traits": []})
    return {"Entities": entities, "ModelVersion": "0.1.0"}


ANSWER = phi(JOINED, [("NAME", "John Smith"), ("AGE", "48"), ("PROFESSION", "teacher"),
                      ("ADDRESS", "Seattle, Washington"), ("AGE", "92"), ("PHONE_OR_FAX", "206-555-0100")])


def shown(texts: list[str], found: list[list[PhiSpan]]) -> list[list[tuple[str, str]]]:
    return [[(span.category, text[span.begin:span.end]) for span in spans] for text, spans in zip(texts, found,
                                                                                                   strict=True)]


def test_spans_come_back_per_text_with_their_categories_and_only_ages_over_89(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, _ = stubbed
    stubber.add_response("detect_phi", ANSWER, {"Text": JOINED})  # one request for both texts
    assert shown(TEXTS, engine.detect_phi(TEXTS, "en-US")) == [
        [("NAME", "John Smith"), ("PROFESSION", "teacher"), ("ADDRESS", "Seattle, Washington")],
        [("AGE", "92"), ("PHONE", "206-555-0100")]]  # 48 is an age Safe Harbor lets stay


def test_a_request_over_the_limit_is_split_in_bytes_with_offsets_mapped_back(stubbed) -> None:  # type: ignore[no-untyped-def]
    """400 lines of multi-byte text (about 25 kB, under 20,000 characters): two requests, the name in
    the second piece found at its own text's offsets."""
    stubber, engine, _ = stubbed
    texts = [f"Le café était froid, fièvre légère — {n:04d} vu." for n in range(1, 400)]
    texts.append("Rappeler Mme Dubois demain.")
    joined = "\n".join(texts)
    assert len(joined) < 20_000 < len(joined.encode("utf-8"))
    pieces = utf8_pieces(joined, DETECT_TEXT_BYTES)
    assert len(pieces) == 2
    assert all(len(piece.encode("utf-8")) < 20_000 for _, piece in pieces)
    stubber.add_response("detect_phi", {"Entities": [], "ModelVersion": "0.1.0"}, {"Text": pieces[0][1]})
    stubber.add_response("detect_phi", phi(pieces[1][1], [("NAME", "Dubois")]), {"Text": pieces[1][1]})
    found = engine.detect_phi(texts, "en")
    assert all(spans == [] for spans in found[:-1])
    assert shown(texts[-1:], found[-1:]) == [[("NAME", "Dubois")]]


def test_throttling_backs_off_then_succeeds(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, sleeps = stubbed
    stubber.add_client_error("detect_phi", service_error_code="TooManyRequestsException", http_status_code=429)
    stubber.add_response("detect_phi", ANSWER, {"Text": JOINED})
    assert len(engine.detect_phi(TEXTS, "en-US")[0]) == 3
    assert len(sleeps) == 1


def test_throttling_that_persists_is_a_transient_error(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, sleeps = stubbed
    for _ in range(3):
        stubber.add_client_error("detect_phi", service_error_code="TooManyRequestsException", http_status_code=429)
    with pytest.raises(TransientError, match="DetectPHI TooManyRequestsException after 3 attempts"):
        engine.detect_phi(TEXTS, "en-US")
    assert len(sleeps) == 2


def test_a_rejected_request_is_a_permanent_error(stubbed) -> None:  # type: ignore[no-untyped-def]
    stubber, engine, sleeps = stubbed
    stubber.add_client_error("detect_phi", service_error_code="InvalidEncodingException", http_status_code=400)
    with pytest.raises(PermanentError, match="InvalidEncodingException"):
        engine.detect_phi(TEXTS, "en-US")
    assert sleeps == []


@pytest.mark.parametrize("language", ["ko-KR", "ko", "identify"])
def test_other_languages_are_not_sent(stubbed, language: str) -> None:  # type: ignore[no-untyped-def]
    _, engine, _ = stubbed
    assert engine.detect_phi(["김민수 님, 010-1234-5678"], language) == [[]]  # the Stubber fails any request
