"""The entity shape: offsets map back to line spans, pieces keep offsets, JSON round-trips."""

from __future__ import annotations

from medscribe.domain.clinical_entities import (
    Attribute,
    Code,
    Entity,
    EntitySet,
    LineText,
    Span,
    entity_set_from_dict,
)
from medscribe.domain.transcript_lines import Line


def lines(*texts: str) -> list[Line]:
    return [Line(n, "spk_0", float(n), float(n) + 1, text, None) for n, text in enumerate(texts, start=1)]


def test_an_offset_maps_back_to_the_line_and_the_characters_it_came_from() -> None:
    joined = LineText(lines("No fever.", "I take lisinopril 10 mg daily.", "Chest pain since Monday."))
    begin = joined.text.index("lisinopril")
    assert joined.spans(begin, begin + len("lisinopril")) == (Span(2, 7, 17),)
    [span] = joined.spans(begin, begin + 10)
    assert joined.lines[span.line - 1].text[span.begin:span.end] == "lisinopril"


def test_a_span_across_a_line_break_names_both_lines_and_never_the_separator() -> None:
    joined = LineText(lines("pain in the", "left arm"))
    begin = joined.text.index("the")
    spans = joined.spans(begin, joined.text.index("left") + 4)
    assert spans == (Span(1, 8, 11), Span(2, 0, 4))


def test_out_of_range_and_empty_offsets_map_to_nothing() -> None:
    joined = LineText(lines("a", "b"))
    assert joined.spans(5, 9) == ()
    assert joined.spans(1, 1) == ()
    assert LineText([]).spans(0, 3) == ()


def test_pieces_keep_their_offsets_and_cut_between_lines() -> None:
    joined = LineText(lines("x" * 30, "y" * 30, "z" * 30))
    pieces = joined.chunks(70)
    assert "".join(text for _, text in pieces) == joined.text
    assert all(len(text) <= 70 for _, text in pieces)
    for offset, text in pieces:
        assert joined.text[offset:offset + len(text)] == text
    assert pieces[0][1].endswith("\n")  # the cut is at a line boundary


def test_a_line_longer_than_the_limit_is_cut_at_a_space() -> None:
    joined = LineText(lines("word " * 40))
    pieces = joined.chunks(50)
    assert "".join(text for _, text in pieces) == joined.text
    assert all(len(text) <= 50 and (text.endswith(" ") or offset + len(text) == len(joined.text))
               for offset, text in pieces)


def test_an_entity_set_round_trips_through_json() -> None:
    entity = Entity(id="e1", category="MEDICATION", type="GENERIC_NAME", text="lisinopril",
                    spans=(Span(2, 7, 17),), score=0.99, traits=(),
                    attributes=(Attribute("DOSAGE", "10 mg", (Span(2, 18, 23),), 0.9),),
                    codes=(Code("RxNorm", "29046", "lisinopril", 0.8),))
    negated = Entity(id="e2", category="MEDICAL_CONDITION", type="DX_NAME", text="fever",
                     spans=(Span(1, 3, 8),), traits=("NEGATION", "SYMPTOM"), not_coded="offline: no match")
    found = EntitySet("enc-1", "offline", "en-US", (entity, negated), ("RxNorm: not available offline",))
    assert entity_set_from_dict(found.as_dict()) == found
    assert negated.negated
    assert not entity.negated
    assert found.with_code("RxNorm", "29046") == (entity,)
    assert found.as_dict()["entities"][0]["lines"] == [2]
