"""The HTML review page and the run index: self-contained, CSP-locked, escaped, citations that resolve."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from medscribe.domain.clinical_entities import Code, Entity, EntitySet, Span
from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.note_writing import write_note
from medscribe.review import IndexEntry, render_index_page, render_review_page
from medscribe.review.page import content_security_policy
from tests.dialogues import DIALOGUES

ATTACK = "<script>alert(1)</script>"


class Page(HTMLParser):
    """What a browser would see: elements with their attributes, script and style bodies, text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._raw: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style"):
            self._raw = tag

    def handle_endtag(self, tag: str) -> None:
        self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw == "script":
            self.scripts.append(data)
        elif self._raw == "style":
            self.styles.append(data)
        else:
            self.text.append(data)

    def all(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and (cls is None or cls in a.get("class", "").split())]

    @property
    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.elements if "id" in a}


def sample_note(**changes: Any) -> dict[str, Any]:
    note: dict[str, Any] = {
        "template": "hp", "engine": "offline",
        "lines": [
            {"n": 1, "speaker": "spk_0", "role": "clinician", "text": "What brings you in today?"},
            {"n": 2, "speaker": "spk_1", "role": "patient", "text": "Chest pain when I climb stairs."},
            {"n": 3, "speaker": "spk_1", "role": "patient", "text": ATTACK + ' "quoted" & <b>bold</b>'},
            {"n": 4, "speaker": "spk_0", "role": "clinician", "text": "We'll book a stress test."},
        ],
        "sections": [
            {"name": "Chief complaint", "items": [{"text": "Chest pain on exertion", "lines": [2]}]},
            {"name": "Plan", "items": [{"text": "Stress test <i>soon</i>", "lines": [1, 4]},
                                       {"text": "Unsupported", "lines": []},
                                       {"text": "Cites a ghost", "lines": [99]}]},
            {"name": "Physical examination", "items": []},
        ],
        "problems": [], "status": "DOCUMENTED",
    }
    note.update(changes)
    return note


def digest(content: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(content.encode()).digest()).decode() + "'"


def test_every_citation_link_targets_an_existing_transcript_line() -> None:
    page = Page(render_review_page(sample_note(), encounter_id="enc-1", title="Review"))
    links = page.all("a", "cite")
    assert [a["href"] for a in links] == ["#L2", "#L1", "#L4"]
    assert all(a["href"][1:] in page.ids for a in links)
    assert {f"L{n}" for n in (1, 2, 3, 4)} <= page.ids
    assert len(page.all("li", "line")) == 4
    assert [a["data-line"] for a in links] == ["2", "1", "4"]


def test_claims_without_a_resolving_citation_are_marked_not_linked() -> None:
    html = render_review_page(sample_note(), encounter_id="enc-1", title="Review")
    page = Page(html)
    assert len(page.all("span", "cite-missing")) == 1
    assert "[99]" in html
    assert 'href="#L99"' not in html
    assert len(page.all("span", "uncited")) == 1
    assert "Nothing documented." in "".join(page.text)


def test_transcript_lines_show_number_speaker_role_and_text() -> None:
    page = Page(render_review_page(sample_note(), encounter_id="enc-1", title="Review"))
    text = " ".join("".join(page.text).split())
    assert "1 spk_0(clinician) What brings you in today?" in text
    assert "2 spk_1(patient) Chest pain when I climb stairs." in text


def test_sections_the_offline_engine_could_not_fill_are_named() -> None:
    text = " ".join("".join(Page(render_review_page(sample_note(unfilled=["Physical examination", "<b>x"]),
                                                    encounter_id="enc-1", title="Review")).text).split())
    assert "Not filled offlinePhysical examination, <b>x" in text  # escaped: shown as text
    assert "Not filled offline" not in render_review_page(sample_note(), encounter_id="enc-1", title="Review")


def test_untrusted_text_is_escaped_everywhere() -> None:
    hostile = '"><img src=x onerror=alert(2)>'
    html = render_review_page(sample_note(engine=hostile), encounter_id=hostile, title=ATTACK)
    assert ATTACK not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    assert "<b>bold" not in html
    assert "<i>soon" not in html
    page = Page(html)
    assert len(page.all("script")) == 1  # the page's own script only
    assert not page.all("img")
    assert ATTACK + ' "quoted" & <b>bold</b>' in "".join(page.text)  # shown to the reader as text


def test_page_is_self_contained_and_csp_allows_only_its_own_inline_code() -> None:
    html = render_review_page(sample_note(), encounter_id="enc-1", title="Review")
    page = Page(html)
    [meta] = [a for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    csp = meta["content"]
    assert csp == content_security_policy()
    assert f'content="{csp}"' in html  # written literally: no quote or markup character to escape
    assert not set(csp) & set("\"<>&")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == digest(page.scripts[0])
    assert directives["style-src"] == digest(page.styles[0])
    assert "unsafe" not in csp
    for pattern in (r"https?://", r"\bsrc=", r"<link\b", r"@import", r"url\(", r"//[a-z]"):
        assert not re.search(pattern, html, re.IGNORECASE), pattern
    assert not any("style" in attrs for _, attrs in page.elements)  # inline style attributes would be blocked


def test_needs_review_shows_the_problems_in_a_banner() -> None:
    problems = [{"code": "line_not_found", "message": "Plan item 3 cites line(s) 99 <x>"}, "free text problem"]
    html = render_review_page(sample_note(status="NEEDS_REVIEW", problems=problems), encounter_id="e",
                              title="Review")
    page = Page(html)
    assert len(page.all("section", "banner")) == 1
    text = "".join(page.text)
    assert "Plan item 3 cites line(s) 99 <x>" in text
    assert "line_not_found" in text
    assert "free text problem" in text
    assert "<x>" not in html
    assert not Page(render_review_page(sample_note(), encounter_id="e", title="R")).all("section", "banner")


def test_engine_template_and_status_are_shown() -> None:
    page = Page(render_review_page(sample_note(engine="bedrock:claude"), encounter_id="enc-7", title="T"))
    text = "".join(page.text)
    assert "bedrock:claude" in text
    assert "enc-7" in text
    assert "hp" in text
    assert page.all("span", "status-documented")


def test_emr_record_is_shown_with_its_problems_when_it_needs_review() -> None:
    emr = {"record": {"Anatomy": ["오른쪽 무릎"], "Age": "47", "Date": "2026-11-03", "Summary": ATTACK,
                      "Future Plans": []},
           "problems": [{"code": "summary_identifiers", "message": "Summary: contains a personal name"}],
           "status": "NEEDS_REVIEW", "engine": "offline"}
    html = render_review_page(sample_note(), encounter_id="e", title="R", emr=emr)
    page = Page(html)
    text = "".join(page.text)
    assert "오른쪽 무릎" in text
    assert "Summary: contains a personal name" in text
    assert ATTACK not in html
    assert len(page.all("script")) == 1
    assert len(page.all("section", "emr")) == 1
    assert len(page.all("section", "banner")) == 1
    bare = Page(render_review_page(sample_note(), encounter_id="e", title="R", emr=emr["record"]))
    assert "47" in "".join(bare.text)
    assert not bare.all("section", "banner")


def test_korean_transcripts_set_the_page_language() -> None:
    note = sample_note(lines=[{"n": 1, "speaker": "spk_0", "role": "patient", "text": "무릎이 아파요."}],
                       sections=[])
    assert '<html lang="ko">' in render_review_page(note, encounter_id="e", title="R")


def test_index_links_every_encounter_page() -> None:
    entries = [IndexEntry("enc-1", "enc-1.html", "DOCUMENTED", "offline", "visit.txt"),
               IndexEntry("enc-2", "pages/enc%202.html", "NEEDS_REVIEW", "bedrock:x", ATTACK)]
    html = render_index_page(entries, title="Run report")
    page = Page(html)
    assert [a["href"] for a in page.all("a")] == ["enc-1.html", "pages/enc%202.html"]
    assert ATTACK not in html
    assert len(page.all("script")) == 1
    assert page.all("span", "status-needs_review")


@pytest.mark.parametrize("href", ["javascript:alert(1)", "https://example.com/x.html", "//evil/x", "/etc/passwd"])
def test_index_refuses_links_that_are_not_relative(href: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        render_index_page([IndexEntry("e", href, "DOCUMENTED")], title="Run")


def test_a_note_from_the_offline_engine_renders_with_every_citation_resolving() -> None:
    lines = dialogue_lines((DIALOGUES / "fareez-osce" / "GAS0001.txt").read_text(encoding="utf-8"))
    note = write_note(lines, template="soap").to_dict()
    page = Page(render_review_page(note, encounter_id="enc-gas0001", title="GAS0001"))
    links = page.all("a", "cite")
    cited = {f"L{n}" for section in note["sections"] for item in section["items"] for n in item["lines"]}
    assert links
    assert {a["href"][1:] for a in links} == cited
    assert cited <= page.ids
    assert len(page.all("li", "line")) == len(lines)


def test_a_claim_its_lines_do_not_support_is_flagged_with_its_reasons() -> None:
    """Issue 14, item 1: the reviewer sees which claims failed verification and why, next to the claim."""
    note = {"template": "hp", "engine": "fake", "status": "NEEDS_REVIEW",
            "lines": [{"n": 1, "speaker": "spk_1", "role": "patient", "text": "I'm allergic to penicillin."}],
            "sections": [{"name": "Past medical history", "items": [
                {"text": "Allergic to penicillin", "lines": [1]}, {"text": "No known drug allergies", "lines": [1]}]}],
            "problems": [{"code": "contradicted_claim", "section": "Past medical history", "item": 2,
                          "message": "Past medical history item 2 is contradicted by its cited line(s) 1: it states "
                                     "an allergy status its cited lines contradict"}]}
    html = render_review_page(note, encounter_id="enc-1", title="Encounter enc-1")
    page = Page(html)
    flagged = [attrs for tag, attrs in page.elements if tag == "li" and "claim-flagged" in attrs.get("class", "")]
    assert flagged == [{"class": "claim claim-flagged", "data-verdict": "contradicted"}]
    claims = re.findall(r'<li class="claim[^"]*"[^>]*>.*?</li>', html)
    assert "No known drug allergies" in claims[1]
    assert "allergy status" in html.split("No known drug allergies", 1)[1]
    assert "claim-flagged" not in claims[0]


def coded(text: str = "chest pain", line: int = 2, **changes: Any) -> EntitySet:
    entities = (
        Entity(id="e1", category="MEDICAL_CONDITION", type="DX_NAME", text=text, spans=(Span(line, 0, 10),),
               codes=(Code("ICD-10-CM", "R07.9", "Chest pain, unspecified"),
                      Code("SNOMED CT", "29857009", "Chest pain (finding)"))),
        Entity(id="e2", category="TEST_TREATMENT_PROCEDURE", type="TEST_NAME", text="stress test",
               spans=(Span(4, 13, 24),), not_coded="offline: SNOMED CT is not available"),
        Entity(id="e3", category="MEDICAL_CONDITION", type="DX_NAME", text="fever", spans=(Span(3, 0, 5),),
               traits=("NEGATION",), codes=(Code("ICD-10-CM", "R50.9", "Fever, unspecified"),)),
    )
    return EntitySet(encounter_id="enc-1", engine="offline", language="en-US", entities=entities, **changes)


def test_each_claim_shows_the_coded_entities_of_its_cited_lines() -> None:
    html = render_review_page(sample_note(), encounter_id="enc-1", title="Review", entities=coded())
    claims = html.split('<li class="claim"')[1:]  # each claim up to the next one
    by_claim = {c.split('class="claim-text">', 1)[1].split("<", 1)[0]: c for c in claims}
    complaint = by_claim["Chest pain on exertion"]  # cites line 2: the chest pain entity, with both codes
    assert '<span class="entity-text">chest pain</span>' in complaint
    assert "ICD-10-CM R07.9" in complaint
    assert "SNOMED CT 29857009" in complaint
    assert "stress test" not in complaint
    plan = by_claim["Stress test &lt;i&gt;soon&lt;/i&gt;"]  # cites 1 and 4: the test, not coded
    assert '<span class="entity-text">stress test</span>' in plan
    assert 'title="offline: SNOMED CT is not available">not coded<' in plan
    assert "entity-text" not in by_claim["Unsupported"]  # no cited line, no entity
    assert "entity-text" not in by_claim["Cites a ghost"]
    assert '<span class="entity-category">medical condition</span>' in complaint


def test_a_negated_entity_says_so_and_entity_markup_stays_text() -> None:
    note = sample_note(sections=[{"name": "Review of systems", "items": [{"text": "Denies fever", "lines": [3]}]}])
    page = Page(render_review_page(note, encounter_id="enc-1", title="Review", entities=coded(text=ATTACK, line=3)))
    [fever] = [a for a in page.all("li", "entity") if "entity-negated" in a["class"].split()]
    assert fever["data-category"] == "MEDICAL_CONDITION"
    assert page.all("span", "negated")
    html = render_review_page(note, encounter_id="enc-1", title="Review", entities=coded(text=ATTACK, line=3))
    assert ATTACK not in html
    assert len(page.all("script")) == 1
    assert ATTACK in "".join(page.text)  # the hostile entity text is shown as text


def test_without_entities_no_entity_markup_and_a_page_without_claims_lists_them() -> None:
    assert 'class="claim-entities"' not in render_review_page(sample_note(), encounter_id="e", title="R")
    emr = {"record": {"Summary": "x"}, "problems": [], "status": "DOCUMENTED", "engine": "offline"}
    note = sample_note(sections=[], lines=[])
    page = Page(render_review_page(note, encounter_id="e", title="R", emr=emr,
                                   entities=coded(notes=("offline: RxNorm is not coded",))))
    [panel] = page.all("section", "coded")
    assert panel["aria-label"] == "Coded entities"
    assert len(page.all("li", "entity")) == 3
    assert "lines 2" in "".join(page.text)
    assert "offline: RxNorm is not coded" in "".join(page.text)
