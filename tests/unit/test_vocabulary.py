"""Vocabulary self-heal domain: keywords.txt parsing (the CLM framework's own sample in
tests/fixtures/clm), Transcribe phrase rules (the AWS documentation's own examples), offline noun
candidates and CLM training text."""

from __future__ import annotations

import re
import sys
from types import ModuleType

import pytest

from medscribe.domain.vocabulary import (
    PHRASE_MAX_CHARS,
    KeywordSelection,
    candidate_nouns_offline,
    keyword_entries,
    parse_keywords,
    select_keywords,
    training_text,
    vocabulary_phrase,
    vocabulary_phrases,
)
from tests import FIXTURES

CLM = FIXTURES / "clm"
ENGLISH_CHARSET = re.compile(r"[A-Za-z'.\-]+")  # Transcribe's English character set
HANGUL_CHARSET = re.compile(r"[\uac00-\ud7a3\-]+")


@pytest.fixture(scope="module")
def keywords() -> list[str]:
    return parse_keywords((CLM / "keywords.txt").read_text(encoding="utf-8"))


def test_keywords_txt_is_parsed_into_distinct_trimmed_terms(keywords: list[str]) -> None:
    raw = (CLM / "keywords.txt").read_text(encoding="utf-8")
    assert keywords[:3] == ["Abdominal cavity", "Absorption", "Acclimation"]
    assert keywords[-1] == "Neurobiology"
    assert "Purkinje fibres" in keywords
    assert "Cell and molecular biology" in keywords
    assert all(term == term.strip() and term and "," not in term and "\n" not in term for term in keywords)
    assert len(keywords) == len({term.casefold() for term in keywords})
    # every comma/line separated entry of the file is there (the file has no duplicates)
    entries = [" ".join(entry.split()) for entry in re.split(r"[,\n]", raw) if entry.strip()]
    assert keywords == entries


def test_keywords_bom_blank_lines_spacing_and_case_duplicates() -> None:
    text = "\ufeffAcid,  Anterior  chamber ,\r\n\n, acid, ACID,PH,\nPh , Lung,"
    assert parse_keywords(text) == ["Acid", "Anterior chamber", "PH", "Lung"]
    assert parse_keywords("") == []
    assert parse_keywords(" , ,\n") == []


@pytest.mark.parametrize(("term", "phrase"), [
    # the AWS documentation's examples
    ("Los Angeles", "Los-Angeles"),
    ("Andorra la Vella", "Andorra-la-Vella"),
    ("CLI", "C.L.I."),
    ("C.L.I", "C.L.I."),
    ("ABCs", "A.B.C.-s"),
    ("A.B.C.-s", "A.B.C.-s"),
    ("DynamoDB", "Dynamo-D.B."),
    ("VX02Q", "V.X.-zero-two-Q."),
    # keywords.txt entries
    ("ACTH", "A.C.T.H."),
    ("PH", "P.H."),
    ("DNA", "D.N.A."),
    ("Purkinje fibres", "Purkinje-fibres"),
    ("Cell and molecular biology", "Cell-and-molecular-biology"),
    # this module's choices
    ("Alzheimer\u2019s disease", "Alzheimer's-disease"),
    ("Ménière's disease", "Meniere's-disease"),
    ("Vitamin B12", "Vitamin-B.-twelve"),
    ("Type 2 diabetes", "Type-two-diabetes"),
    ("COVID-19", "COVID-nineteen"),
    ("IL-6", "I.L.-six"),
    ("Hepatitis B", "Hepatitis-B."),
    ("pH", "pH"),
    ("Dr. Smith", "Dr-Smith"),
    ("fever / chills", "fever-chills"),
    ("room 101", "room-one-hundred-one"),
])
def test_english_phrases_follow_the_documented_rules(term: str, phrase: str) -> None:
    assert vocabulary_phrase(term, "en-US") == phrase
    assert ENGLISH_CHARSET.fullmatch(phrase)


@pytest.mark.parametrize("term", ["2.5 mg", "born 2019", "C++", "Crohn's (ileal)", "50%", "", "  ", "심근", "x" * 257])
def test_english_terms_that_cannot_be_expressed(term: str) -> None:
    assert vocabulary_phrase(term, "en-US") is None


def test_phrase_length_limit() -> None:
    assert vocabulary_phrase("a" * PHRASE_MAX_CHARS, "en-US") == "a" * PHRASE_MAX_CHARS
    assert vocabulary_phrase("a" * (PHRASE_MAX_CHARS + 1), "en-US") is None


@pytest.mark.parametrize(("term", "phrase"), [
    ("심근 경색", "심근-경색"),
    ("고혈압", "고혈압"),
    ("심근·경색", "심근-경색"),
    ("관상 동맥 질환", "관상-동맥-질환"),
])
def test_korean_phrases_are_hangul_joined_by_hyphens(term: str, phrase: str) -> None:
    assert vocabulary_phrase(term, "ko-KR") == phrase
    assert HANGUL_CHARSET.fullmatch(phrase)


@pytest.mark.parametrize("term", ["CT 검사", "혈압 120", "ㄱㄴ", "心筋", "Purkinje"])
def test_korean_terms_outside_hangul_syllables(term: str) -> None:
    assert vocabulary_phrase(term, "ko-KR") is None


def test_unknown_language_is_an_error() -> None:
    with pytest.raises(ValueError, match="fr-FR"):
        vocabulary_phrase("bonjour", "fr-FR")


def test_keywords_txt_becomes_a_valid_vocabulary(keywords: list[str]) -> None:
    phrases = vocabulary_phrases(keywords, "en-US")
    assert len(phrases) == len(keywords)  # every sample keyword is expressible
    assert all(ENGLISH_CHARSET.fullmatch(phrase) and " " not in phrase for phrase in phrases)
    assert {"A.C.T.H.", "P.H.", "D.N.A.", "White-blood-cell", "Purkinje-fibres"} <= set(phrases)
    assert sum(len(phrase.encode()) + 1 for phrase in phrases) <= 50 * 1024


def test_phrases_are_deduplicated_filtered_and_bounded() -> None:
    terms = ["Los Angeles", "los-angeles", "2.5 mg", "ACTH", "A.C.T.H.", "Anagen", "Boli"]
    assert vocabulary_phrases(terms, "en-US") == ["Los-Angeles", "A.C.T.H.", "Anagen", "Boli"]
    # the table: header 32 bytes; rows "Los-Angeles\t\t\tLos Angeles\n" 26, "A.C.T.H.\t\t\tACTH\n" 16,
    # "Anagen\t\t\t\n" 10, "Boli\t\t\t\n" 8: 82 bytes fit the first two and the last (the 10-byte
    # entry would overflow, the shorter later one still fits)
    assert vocabulary_phrases(terms, "en-US", max_bytes=82) == ["Los-Angeles", "A.C.T.H.", "Boli"]
    assert vocabulary_phrases(terms, "en-US", max_bytes=0) == []


def test_korean_phrase_size_counts_utf8_bytes() -> None:
    phrases = vocabulary_phrases(["심근", "경색"], "ko-KR", max_bytes=45)  # header 32, rows 6 + 4 bytes each
    assert phrases == ["심근"]


def test_offline_english_candidates_drop_function_words_numbers_and_fillers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wordfreq", None)  # as without wordfreq installed (import fails)
    sentences = ["Um, so the patient's chest pain started yesterday and it's radiating to the left arm.",
                 "I think it's angina, or maybe a myocardial infarction; troponin was 0.04 and 12 hours later normal.",
                 "Really, the PAIN is better today."]
    nouns = candidate_nouns_offline(sentences, "en-US")
    assert {"myocardial", "infarction", "troponin", "angina", "chest", "pain", "patient"} <= set(nouns)
    assert not {"um", "so", "the", "and", "it's", "started", "really", "today", "0.04", "12", "hours"} & {
        noun.casefold() for noun in nouns}
    assert len(nouns) == len({noun.casefold() for noun in nouns})
    assert "pain" in nouns  # the first spelling is kept, "PAIN" is a duplicate
    assert nouns.index("infarction") < nouns.index("pain")  # longer (rarer) words first without wordfreq


def test_offline_english_ranking_uses_wordfreq_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    frequencies = {"troponin": 1.5, "pain": 5.0, "angina": 2.5}
    fake = ModuleType("wordfreq")
    fake.zipf_frequency = lambda word, lang: frequencies[word]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wordfreq", fake)
    # rarest first; an everyday word (Zipf >= COMMON_ZIPF) is not a vocabulary term
    assert candidate_nouns_offline(["pain angina troponin"], "en") == ["troponin", "angina"]


def test_offline_korean_candidates_strip_particles_and_endings() -> None:
    sentences = ["환자가 어제부터 흉통이 있었고 왼쪽 가슴으로 방사되는 통증을 호소했어요.",
                 "심전도 검사를 했습니다. 많이 아파요. 소아과에서 비만 진단을 받았다. CT를 찍었어요 3번."]
    nouns = candidate_nouns_offline(sentences, "ko-KR")
    assert {"환자", "흉통", "가슴", "방사", "통증", "호소", "심전도", "검사", "소아과", "비만", "진단"} <= set(nouns)
    assert not {"있었고", "아파요", "받았다", "많이", "어제부터", "CT", "3번", "번"} & set(nouns)
    assert all(len(noun) >= 2 and HANGUL_CHARSET.fullmatch(noun) for noun in nouns)


def test_offline_candidates_unknown_language() -> None:
    with pytest.raises(ValueError, match="fr"):
        candidate_nouns_offline(["bonjour"], "fr-FR")


def test_training_text_is_one_clean_sentence_per_line_with_keywords_first() -> None:
    documents = {
        "en-purkinje": ("Purkinje fibers carry the impulse (fast). They lie beneath the endocardium.\n\n\n"
                        "== Structure ==\nThe fibers are <b>larger</b> than muscle cells! Short.\n"
                        "They lie beneath the endocardium."),
        "ko-myocardium": "심근은 심장의 근육이다. 수축한다.",
    }
    text = training_text(["Purkinje fibres", "ACTH", "ACTH"], documents)
    assert text.endswith("\n")
    assert text.splitlines() == [
        "Purkinje fibres",
        "ACTH",
        "Purkinje fibers carry the impulse fast.",
        "They lie beneath the endocardium.",
        "The fibers are b larger b than muscle cells!",
        "심근은 심장의 근육이다.",
    ]


def test_training_text_is_bounded_in_utf8_bytes() -> None:
    documents = {str(index): f"Sentence number {index} about the myocardium." for index in range(1000)}
    text = training_text(["myocardium"], documents, max_bytes=1000)
    assert len(text.encode("utf-8")) <= 1000
    assert text.startswith("myocardium\n")
    assert len(text.splitlines()) > 10
    assert training_text([], {}) == ""


def test_keywords_of_several_lists_are_deduplicated_and_capped_with_counts() -> None:
    assert keyword_entries("\ufeffAcid, acid,\n  Lung ,,PH\n") == ["Acid", "acid", "Lung", "PH"]
    selection = select_keywords([["sputum"], ["Acid", "acid", "Sputum"], ["Lung", "PH"]], limit=3)
    assert selection == KeywordSelection(["sputum", "Acid", "Lung"], duplicates=2, cut=1)
    assert select_keywords([["a", "b"]]) == KeywordSelection(["a", "b"], duplicates=0, cut=0)
