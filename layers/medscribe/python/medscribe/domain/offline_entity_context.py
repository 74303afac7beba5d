"""Traits of the offline entity extractor (`domain.offline_entities`): negation and context.

English negation within a line is NegEx as negspacy implements it (its `en_clinical` termset) on a blank
spaCy pipeline (`spacy.blank("en")` and a sentencizer: no model, nothing downloaded). A clinician's
question answered "No." by the next speaker negates what the question asked about; `negative_answer`
and `question_span` find those turns (the extractor adds the answer to the entity's evidence).
PERTAINS_TO_FAMILY, HYPOTHETICAL and PAST_HISTORY come from cue words in the entity's sentence (ConText's
idea, with a short rule list of our own: negspacy has none for them). Korean negation is rules for the
common forms (없어요/없습니다/없음, 않아요, 안 ..., 아니요).

spaCy and negspacy are imported on first use, never at import time (cold-start rule), and belong to the
local/development install (requirements-dev.txt): in AWS, entities come from Amazon Comprehend Medical.
Why negspacy and not medspaCy's ConText (which has family, hypothetical and historical rules built in):
medspacy 1.3.1 (2024-11, the latest) resolves to spaCy 3.7.5 (so thinc 8.2 and numpy below 2) and pulls QuickUMLS,
UnQLite, NLTK and pytest into the runtime; negspacy 1.1.0 (2026-04) runs on the current spaCy 3.8 and needs
nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

_SENTENCE_END = re.compile(r"[.?!;](?=\s|$)")
_FAMILY_EN = re.compile(
    r"\b(?:family history|(?:my|your|his|her) (?:father|mother|dad|mom|brother|sister|sibling|grandmother|"
    r"grandfather|grandparents?|aunt|uncle|parents?)|runs? in (?:the|your|my) family)\b", re.IGNORECASE)
_HYPOTHETICAL_EN = re.compile(r"\b(?:if|in case|should you|watch (?:out )?for|look out for)\b", re.IGNORECASE)
_PAST_EN = re.compile(
    r"\b(?:history of|in the past|previous(?:ly)?|prior|\w+ years? ago|used to|had (?:a|an)|back in \d{4})\b",
    re.IGNORECASE)
_FAMILY_KO = re.compile(r"가족력|가족 중|아버지|어머니|아빠|엄마|형제|자매|할머니|할아버지|부모님")
_PAST_KO = re.compile(r"과거|예전|전에|병력|앓았|진단받았|진단을 받았")
_HYPOTHETICAL_KO = re.compile(r"경우|(?:생기|있으|심해지|나타나)면")
# the Korean predicate of a clause denies what the clause names (열은 없어요, 아프지 않아요, 기침은 안 해요)
_NEGATED_KO = re.compile(r"없|않|(?<![가-힣])안\s|아니|아님|아뇨|부인|음성")
_CLAUSE_END_KO = re.compile(r"[.?!,;]|(?:으나|지만|는데|고)\s")
_NEGATIVE_ANSWER = re.compile(
    r"^\W*(?:(?:uh|um|oh|ah|hmm|well|so|mm)\W+)*(?:no|nope|nah|never|none|nothing|not really|not that i know|"
    r"i don'?t think so|i do n'?t think so|negative|아니요|아뇨|아니|없어요|없습니다|없었어요|없어|전혀)(?![a-z])",
    re.IGNORECASE)
_BUT = re.compile(r"\b(?:but|yes|yeah|actually|except)\b|그런데|근데|있어요|있습니다", re.IGNORECASE)
# "apart from the breathlessness, any other ...?": what the question sets aside is not asked about
_SET_ASIDE_EN = re.compile(r"\b(?:apart from|other than|besides|aside from|except for)\b[^,?]*", re.IGNORECASE)
_SET_ASIDE_KO = re.compile(r"[^,?]*(?:외에|말고|빼고)")
_ANY_QUESTION = re.compile(r"(?:^|[.!;]\s+)(?:(?:ok(?:ay)?|and|so|um|uh)\W+)*any(?:thing)?\b", re.IGNORECASE)
_QUESTION_KO = re.compile(r"(?:나요|까요|세요|니까|어요|에요|죠|가요)\s*\?|\?")


def sentence_of(text: str, begin: int, end: int) -> tuple[int, int]:
    """The sentence of `text` around [begin, end): from after the previous sentence end to the next one."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() <= begin:
            start = match.end()
        elif match.start() >= end:
            return start, match.end()
    return start, len(text)


def context_traits(text: str, begin: int, end: int, korean: bool) -> tuple[str, ...]:
    """PERTAINS_TO_FAMILY / HYPOTHETICAL / PAST_HISTORY by cue words in the entity's sentence."""
    start, stop = sentence_of(text, begin, end)
    sentence, before = text[start:stop], text[start:begin]
    family, hypothetical, past = (_FAMILY_KO, _HYPOTHETICAL_KO, _PAST_KO) if korean else (
        _FAMILY_EN, _HYPOTHETICAL_EN, _PAST_EN)
    traits = []
    if family.search(sentence):
        traits.append("PERTAINS_TO_FAMILY")
    if hypothetical.search(sentence if korean else before):
        traits.append("HYPOTHETICAL")
    if past.search(sentence):
        traits.append("PAST_HISTORY")
    return tuple(traits)


def negative_answer(text: str) -> re.Match[str] | None:
    """The "No" that opens an answer denying what was asked (not one that goes on "no, but ... yes")."""
    match = _NEGATIVE_ANSWER.match(text)
    if match is None:
        return None
    first = _SENTENCE_END.search(text, match.end())
    if _BUT.search(text, match.end(), first.start() if first else len(text)):
        return None
    return match


def question_span(text: str, korean: bool) -> tuple[int, int] | None:
    """Characters of the line's last question (the sentence ending in "?"), or None when it asks none."""
    if korean and not _QUESTION_KO.search(text):
        return None
    mark = text.rfind("?")
    if mark >= 0:
        return sentence_of(text, mark, mark + 1)[0], mark + 1
    asking = list(_ANY_QUESTION.finditer(text))  # "Any fevers or chills." is asked without a "?"
    return sentence_of(text, asking[-1].end(), asking[-1].end())[:2] if asking and not korean else None


def set_aside(text: str, begin: int, end: int, korean: bool) -> bool:
    """Whether the question sets the entity aside ("apart from the cough, any ...?")."""
    pattern = _SET_ASIDE_KO if korean else _SET_ASIDE_EN
    return any(m.start() <= begin and end <= m.end() for m in pattern.finditer(text))


def korean_negated(text: str, end: int) -> bool:
    """A Korean clause that denies what it names: the negative form follows the term in its clause."""
    clause_end = _CLAUSE_END_KO.search(text, end)
    return bool(_NEGATED_KO.search(text[end:clause_end.start() if clause_end else len(text)]))


@cache
def _negex_pipeline() -> Any:
    try:
        import spacy  # heavy: loaded on first use only
        from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)
        from negspacy.termsets import termset
    except ImportError as error:  # the local/development install has them (requirements-dev.txt)
        raise RuntimeError("the offline entity extractor needs spaCy and negspacy (requirements-dev.txt)") from error
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("negex", config={"neg_termset": termset("en_clinical").get_patterns()})
    return nlp


def english_negated(text: str, spans: Sequence[tuple[int, int]]) -> list[bool]:
    """NegEx (negspacy) over one line: for each (begin, end) of `spans` (not overlapping), whether negated."""
    if not spans:
        return []
    nlp = _negex_pipeline()
    doc = nlp.make_doc(text)
    ents = [doc.char_span(begin, end, label="ENTITY", alignment_mode="expand") for begin, end in spans]
    kept: list[Any] = []
    for ent in ents:  # two terms inside one token expand to the same tokens: keep the first
        if ent is not None and all(ent.end <= k.start or ent.start >= k.end for k in kept):
            kept.append(ent)
    doc.ents = kept
    for _, component in nlp.pipeline:
        doc = component(doc)
    negated = {(ent.start_char, ent.end_char): bool(ent._.negex) for ent in doc.ents}
    return [bool(ent is not None and negated.get((ent.start_char, ent.end_char), False)) for ent in ents]
