"""The clinical-term gate of learned keywords (medscribe.domain.clinical_terms) and its shipped lists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from medscribe.domain.clinical_terms import ClinicalTermGate, looks_like_identifier, term_list
from medscribe.domain.vocabulary import candidate_nouns_offline

ROOT = Path(__file__).resolve().parents[2]


def test_english_clinical_words_pass_and_names_dates_and_identifiers_do_not() -> None:
    gate = ClinicalTermGate("en-US")
    for word in ("sputum", "Dyspnea", "palpitations", "palpitation", "angina", "syncope", "hypertension", "knee",
                 "electrocardiogram", "insulin", "aspirin", "cholera"):
        assert gate.is_clinical(word), word
    for word in ("Zebulon", "zebulon", "Quackenbush", "QUACKENBUSH", "Ottoline", "brackenbury", "John", "Mary",
                 "1962-03-04", "03/04/1962", "48213377", "MRN48213377", "A1234567", "zebulon.q@example.com",
                 "example.com", "https://x.org", "March", "may", "Tuesday", "", "  "):
        assert not gate.is_clinical(word), word


def test_eponyms_that_are_also_surnames_are_not_on_the_english_list() -> None:
    """ICD-10-CM writes them capitalised or possessive ("Smith's fracture"); the build leaves such proper
    nouns out, since a patient may be called Smith. A clinic lists the ones it wants in a keywords file."""
    terms = term_list("en")
    for surname in ("smith", "graves", "parkinson", "hodgkin", "addison", "wilson", "barrett", "cushing", "crohn"):
        assert surname not in terms, surname
    assert ClinicalTermGate("en", allowed=["Parkinson's disease"]).is_clinical("Parkinson")


def test_keywords_file_terms_are_allowed_as_the_clinic_chose_them() -> None:
    gate = ClinicalTermGate("en-US", allowed=["metformin", "Tylenol", "tympanic membrane"])
    assert gate.is_clinical("metformin")
    assert gate.is_clinical("TYLENOL")
    assert gate.is_clinical("tympanic")
    assert not gate.is_clinical("quackenbush")  # not on any list, not in the file
    assert not ClinicalTermGate("en-US", allowed=["Dr Quackenbush 48213377"]).is_clinical("48213377")


def test_several_words_need_every_word_clinical() -> None:
    gate = ClinicalTermGate("en")
    assert gate.is_clinical("chest pain")
    assert not gate.is_clinical("Zebulon fracture")


def test_korean_terms_and_compounds_pass_and_names_do_not() -> None:
    gate = ClinicalTermGate("ko-KR")
    for word in ("가래", "기침", "당뇨병", "무릎관절염", "무릎통증", "메트포르민"):
        assert gate.is_clinical(word), word
    for word in ("홍길순", "김철수", "한지우", "이영희", "마포구", "등록번호", "일생이고", "1962년", "씨는"):
        assert not gate.is_clinical(word), word
    assert ClinicalTermGate("ko-KR", allowed=["무릎관절경"]).is_clinical("무릎관절경")


def test_vetting_counts_what_it_drops_and_keeps_the_order() -> None:
    candidates = candidate_nouns_offline(["The patient is Zebulon Quackenbush, MRN 48213377. I cough up sputum."],
                                         "en-US")
    assert {"Zebulon", "Quackenbush", "sputum"} <= set(candidates)
    vetting = ClinicalTermGate("en-US").vet(candidates)
    assert "sputum" in vetting.kept
    assert not {"Zebulon", "Quackenbush", "MRN"} & set(vetting.kept)
    assert vetting.rejected == len(candidates) - len(vetting.kept)


def test_identifier_shapes() -> None:
    for token in ("2026-11-21", "3/4", "010-2745-3381", "850412-2345678", "a@b.co", "C:\\x", "Dr.Smith", "#12"):
        assert looks_like_identifier(token), token
    for token in ("sputum", "B.", "가래"):
        assert not looks_like_identifier(token), token


def test_the_shipped_lists_are_clean() -> None:
    english, korean = term_list("en-US"), term_list("ko")
    assert 5000 < len(english) < 20000
    assert all(word.isalpha() and word.islower() and len(word) >= 3 for word in english)
    assert 200 < len(korean) < 2000
    assert all(len(term) >= 2 and all("\uac00" <= char <= "\ud7a3" for char in term) for term in korean)
    with pytest.raises(ValueError, match="fr-FR"):
        term_list("fr-FR")


def test_the_english_list_is_what_the_pinned_icd_10_cm_package_builds() -> None:
    """scripts/build_clinical_terms.py run on simple-icd-10-cm (requirements-dev.txt) gives the vendored file."""
    pytest.importorskip("simple_icd_10_cm")
    spec = importlib.util.spec_from_file_location("build_clinical_terms", ROOT / "scripts" / "build_clinical_terms.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == module.TARGET.read_text(encoding="utf-8")


def test_medication_names_of_the_shared_lexicon_are_clinical_terms() -> None:
    """Drug names (generic, brand, Korean) are learnable although ICD-10-CM's wording rarely names them."""
    from medscribe.domain.clinical_terms import ClinicalTermGate

    assert ClinicalTermGate("en-US").vet(["metformin", "Lisinopril", "tylenol", "Quackenbush"]).kept == [
        "metformin", "Lisinopril", "tylenol"]
    assert ClinicalTermGate("ko-KR").vet(["메트포르민", "홍길순"]).kept == ["메트포르민"]
