"""Transcript accuracy: WER (English) and CER (Korean) of a hypothesis against a reference. Pure.

Both texts go through the same normaliser before alignment, so case, punctuation, contractions
and numbers never count as errors on their own.

English: OpenAI Whisper's `EnglishTextNormalizer` (package `whisper-normalizer`, the Whisper code
as a library) with a thin wrapper. Whisper lower-cases; drops bracketed/parenthesised asides and
the fillers hmm, mm, mhm, mmm, uh, um as whole words (never inside "umbrella"); expands
contractions ("can't" -> "can not", "let's" -> "let us"; note possessives become "is":
"patient's" -> "patient is", identically on both sides); writes spelled numbers as digits ("five
milligrams" -> "5 milligrams", "ninety percent" -> "90%", "1" -> "one"); Americanises spelling;
removes the remaining punctuation and symbols. The wrapper, before Whisper runs:
- maps typographic apostrophes to "'" so "I\u2019m" expands like "I'm" (Whisper would split it);
- writes "cannot" as "can not", as Whisper writes "can't";
- also removes the fillers hm, umm, uhm, uhh, erm (whole words; not "er", which may be the ER);
- keeps "mm" after a number as the unit ("5 mm"), where Whisper would drop it as a filler;
- attaches currency signs and percent to an adjacent number ("$ 20" -> "$20", "5 %" -> "5%"),
  as upstream Whisper does and whisper-normalizer 0.1.15 does not;
- does not apply the package's own "cause" -> "because" rule (not upstream Whisper; it rewrites
  the noun "cause");
and after it drops tokens left without a letter or digit (Whisper leaves "." from a final "...").

Korean: NFKC, case folding (Latin terms such as "CT"), punctuation and symbols (Unicode P*/S*)
removed. CER is computed with all whitespace removed, because Korean spacing varies between
transcribers and spacing differences should not count; WER uses the whitespace-split words.
Numbers (3 vs 삼) and Korean fillers are not normalised.

An empty reference (nothing left after normalisation) raises `EmptyReferenceError`: WER is
undefined there (jiwer 4 would return the number of inserted words as the "rate").
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

from medscribe.domain.transcript_lines import TranscriptFormatError

LANGUAGES = ("en", "ko")
_CHARACTER_SCORED = frozenset({"ko"})

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})
_EXTRA_FILLERS = re.compile(r"\b(?:hm|umm+|uhm+|uhh+|erm)\b", re.IGNORECASE)
_CANNOT = re.compile(r"\bcannot\b", re.IGNORECASE)
_MILLIMETRES = re.compile(r"(\d)\s+mm\b", re.IGNORECASE)
_CURRENCY_GAP = re.compile(r"([$¢€£])\s+(\d)")
_PERCENT_GAP = re.compile(r"(\d)\s+%")


class EmptyReferenceError(ValueError):
    """The reference has no words after normalisation, so an error rate is undefined."""


class _WhisperEnglish(EnglishTextNormalizer):
    def __init__(self) -> None:
        super().__init__()
        self.replacers.pop(r"\bcause\b", None)


@functools.cache
def _whisper_english() -> _WhisperEnglish:
    return _WhisperEnglish()


def score_language(language_code: str | None) -> str:
    """The scoring language of a transcript's language code: "ko" (characters) or "en" (words)."""
    return "ko" if (language_code or "").lower().startswith("ko") else "en"


def _language(language: str) -> str:
    """Language code as Transcribe writes it ("en", "en-US", "ko-KR") -> "en" / "ko"."""
    code = language.split("-")[0].lower()
    if code not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return code


def _normalise_english(text: str) -> str:
    text = text.translate(_APOSTROPHES)
    text = _EXTRA_FILLERS.sub(" ", text)
    text = _CANNOT.sub("can not", text)
    text = _MILLIMETRES.sub(r"\1mm", text)
    text = _CURRENCY_GAP.sub(r"\1\2", text)
    text = _PERCENT_GAP.sub(r"\1%", text)
    normalised: str = _whisper_english()(text)
    return " ".join(token for token in normalised.split() if any(ch.isalnum() for ch in token))


def _normalise_korean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text).split())


def normalise(text: str, language: str = "en") -> str:
    """The text as it is scored: normalised words separated by single spaces (see module docstring)."""
    if _language(language) == "ko":
        return _normalise_korean(text)
    return _normalise_english(text)


@dataclass(frozen=True)
class Score:
    """Accuracy of one hypothesis against one reference.

    `wer`, `mer` and the counts are word-level on the normalised text; `cer` is set only for
    character-scored languages (Korean), and `metric` names the headline rate (`error_rate`).
    `missed_words` lists the normalised reference words that were deleted or substituted, once
    per occurrence, in reference order.
    """

    language: str
    wer: float
    mer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference_words: int
    missed_words: tuple[str, ...]
    cer: float | None = None

    @property
    def metric(self) -> Literal["wer", "cer"]:
        return "wer" if self.cer is None else "cer"

    @property
    def error_rate(self) -> float:
        return self.wer if self.cer is None else self.cer

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "language": self.language,
            "metric": self.metric,
            "wer": self.wer,
            "mer": self.mer,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "hits": self.hits,
            "reference_words": self.reference_words,
            "missed_words": list(self.missed_words),
        }
        if self.cer is not None:
            document["cer"] = self.cer
        return document


def _align(reference: str, hypothesis: str, language: str) -> tuple[str, str, jiwer.WordOutput]:
    ref = normalise(reference, language)
    if not ref:
        raise EmptyReferenceError(
            f"the reference has no words after {language} normalisation; an error rate is undefined"
        )
    hyp = normalise(hypothesis, language)
    return ref, hyp, jiwer.process_words(ref, hyp)


def _reference_hits(output: jiwer.WordOutput) -> list[bool]:
    """For each reference word position: was it matched (True) or deleted/substituted (False)?"""
    hits = [False] * len(output.references[0])
    for chunk in output.alignments[0]:
        if chunk.type == "equal":
            hits[chunk.ref_start_idx : chunk.ref_end_idx] = [True] * (chunk.ref_end_idx - chunk.ref_start_idx)
    return hits


def score(reference: str, hypothesis: str, *, language: str = "en") -> Score:
    """Score a hypothesis against a reference; raises `EmptyReferenceError` for an empty reference."""
    code = _language(language)
    ref, hyp, output = _align(reference, hypothesis, code)
    words = output.references[0]
    cer = None
    if code in _CHARACTER_SCORED:
        cer = float(jiwer.cer(ref.replace(" ", ""), hyp.replace(" ", "")))
    return Score(
        language=code,
        wer=float(output.wer),
        mer=float(output.mer),
        substitutions=output.substitutions,
        deletions=output.deletions,
        insertions=output.insertions,
        hits=output.hits,
        reference_words=len(words),
        missed_words=tuple(word for word, hit in zip(words, _reference_hits(output), strict=True) if not hit),
        cer=cer,
    )


def fixed_words(reference: str, baseline_hypothesis: str, candidate_hypothesis: str, language: str = "en") -> list[str]:
    """Reference word occurrences the baseline missed and the candidate got right, in reference order."""
    code = _language(language)
    _, _, baseline = _align(reference, baseline_hypothesis, code)
    _, _, candidate = _align(reference, candidate_hypothesis, code)
    return [
        word
        for word, before, after in zip(
            baseline.references[0], _reference_hits(baseline), _reference_hits(candidate), strict=True
        )
        if after and not before
    ]


def _transcribe_transcript(document: Mapping[str, Any]) -> str:
    results = document.get("results")
    transcripts = results.get("transcripts") if isinstance(results, Mapping) else None
    if not isinstance(transcripts, list):
        raise TranscriptFormatError("not an Amazon Transcribe output: results.transcripts is missing")
    if not transcripts:
        return ""
    return str(transcripts[0].get("transcript", ""))


def hypothesis_text(data: str | bytes | Mapping[str, Any]) -> str:
    """The text to score from plain text or an Amazon Transcribe output (parsed, or as JSON text/bytes).

    A Transcribe output gives `results.transcripts[0].transcript` ("" when the list is empty);
    a JSON object of another shape raises `TranscriptFormatError`. Anything else is plain text.
    """
    if isinstance(data, Mapping):
        return _transcribe_transcript(data)
    text = (data.decode("utf-8") if isinstance(data, bytes) else data).removeprefix("\ufeff")
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            return text
        if isinstance(document, dict):
            return _transcribe_transcript(document)
    return text
