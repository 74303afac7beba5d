"""Which learned keywords may enter a vocabulary: clinical terms only, never a name, a date or an identifier.

The self-heal loop learns keywords from the words its incumbent model missed. Those words come from
ground truths and transcripts, so the rarest of them are often what matters least to a vocabulary and
most to privacy: a patient's name, a street, a date, a record number. A learned keyword is therefore
kept only when

1. it has the shape of a word (letters only: no digits, so no dates, doses, phone or record numbers;
   no "@", ":" or "/", so no e-mail addresses or links), is not a month or weekday name, and
2. it is a clinical term: on the term list of its language (`medscribe/terms/`, shipped with the
   package; see SOURCE.txt there) or among the terms of the clinic's uploaded keywords files.

English: the words of ICD-10-CM's code titles and inclusion terms. A candidate matches a listed word
case-insensitively, or by its singular or plural in "s"/"es" ("palpitation" for "palpitations").
A candidate of several words (a Comprehend Medical entity, a keywords term) needs every word listed.
Both: the medication names (generic, brand and Korean) of `lexicon/medications.txt`, the list the
claim checker uses, count as listed.
Korean: a short reviewed list; a candidate matches when it is a listed term or a compound of listed
terms ("무릎관절염" = "무릎" + "관절염"). Every listed term has two syllables or more, so a name cannot
be assembled from one-syllable pieces.

Pure apart from reading the shipped lists once (cached): no SDKs, no network.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from medscribe.domain.claim_text import medications

TERM_FILES = {"en": "en-icd10cm.txt", "ko": "ko-clinical.txt"}
_NOT_A_WORD = re.compile(r"[\d@:/\\#_=+%&<>|]")
_ENGLISH_WORD = re.compile(r"[A-Za-z]+(?:['\u2019-][A-Za-z]+)*")
_HANGUL = re.compile(r"[\uac00-\ud7a3]+")
_SEPARATORS = re.compile(r"[\s\-/_\u2013\u2014\u00b7]+")
_CALENDAR_WORDS = frozenset([
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
])


@cache
def term_list(language: str) -> frozenset[str]:
    """The shipped clinical term list of `language` ("en-US", "ko-KR", "en", ...), casefolded."""
    lang = _lang(language)
    name = TERM_FILES.get(lang)
    if name is None:
        raise ValueError(f"no clinical term list for language {language!r}")
    text = resources.files("medscribe").joinpath("terms", name).read_text(encoding="utf-8")
    return frozenset(unicodedata.normalize("NFC", line.strip()).casefold() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def looks_like_identifier(token: str) -> bool:
    """A token that is no word: digits (dates, doses, phone, record and ID numbers), an e-mail address,
    a link or path, a code with symbols, or a month or weekday name."""
    text = unicodedata.normalize("NFKC", token).strip()
    return (not text or bool(_NOT_A_WORD.search(text)) or "." in text.strip(".")
            or text.casefold() in _CALENDAR_WORDS)


@dataclass(frozen=True)
class Vetting:
    kept: list[str]
    rejected: int  # candidates dropped: not a clinical term, or shaped like a name part, date or identifier


class ClinicalTermGate:
    """Decides whether a learned keyword is a clinical term (see the module docstring). `allowed` are
    the terms of the clinic's keywords files: each of their words counts as listed."""

    def __init__(self, language: str, allowed: Iterable[str] = ()) -> None:
        self.language = language
        self.lang = _lang(language)
        self.terms = term_list(language)
        allowed_words: set[str] = set()
        for term in allowed:
            allowed_words.add(_fold(term))
            for word in (_fold(word) for word in _SEPARATORS.split(term) if word):
                allowed_words.update({word, word.removesuffix("'s")})
        self.allowed = frozenset(allowed_words)

    def is_clinical(self, candidate: str) -> bool:
        words = [word for word in _SEPARATORS.split(candidate.strip()) if word]
        if not words or any(looks_like_identifier(word) for word in words):
            return False
        if _fold(candidate) in self.allowed:
            return True
        return all(self._listed(word) for word in words)

    def vet(self, candidates: Iterable[str]) -> Vetting:
        """The clinical terms among `candidates`, in their order, and how many were dropped."""
        kept: list[str] = []
        rejected = 0
        for candidate in candidates:
            if self.is_clinical(candidate):
                kept.append(candidate)
            else:
                rejected += 1
        return Vetting(kept, rejected)

    def _listed(self, word: str) -> bool:
        key = _fold(word)
        if key in self.allowed or key in medications():
            return True
        if self.lang == "en":
            return bool(_ENGLISH_WORD.fullmatch(word)) and self._english(key)
        return bool(_HANGUL.fullmatch(key)) and self._compound(key)

    def _english(self, key: str) -> bool:
        forms = {key, key.removesuffix("'s"), f"{key}s", f"{key}es"}
        if key.endswith("s"):
            forms.add(key[:-1])
        if key.endswith("es"):
            forms.add(key[:-2])
        return any(form in self.terms for form in forms)

    def _compound(self, word: str) -> bool:
        """`word` is a listed term or listed terms written together (dynamic programming over prefixes)."""
        reachable = [True] + [False] * len(word)
        for end in range(2, len(word) + 1):
            reachable[end] = any(reachable[start] and word[start:end] in self.terms for start in range(end - 1))
        return reachable[len(word)]


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().replace("\u2019", "'").split())


def _lang(language: str) -> str:
    return language.split("-")[0].lower()
