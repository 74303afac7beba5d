"""Vocabulary self-heal inputs: keyword lists, Transcribe custom-vocabulary phrases, offline noun
candidates and custom-language-model (CLM) training text. Pure: no SDKs, no I/O.

Keyword lists use the format of the amazon-transcribe-single-click-clm framework's keywords.txt:
comma-separated terms, wrapped over lines, with trailing separators, extra spaces and possibly a BOM.

Custom-vocabulary phrase rules (Amazon Transcribe Developer Guide, "Custom vocabularies",
"Creating a custom vocabulary using a table / using a list", "Character sets for custom
vocabularies"; the API model's `Phrase` shape, max 256):
- no spaces: the words of a multi-word entry are joined with hyphens ("Los-Angeles");
- an entry may not exceed 256 characters; a vocabulary may not exceed 50 KB;
- only the language's character set: English a-z A-Z ' - . ; Korean: Hangul syllables
  (U+AC00-U+D7A3), with the hyphen of the multi-word rule (the Korean character-set page itself
  lists only the syllables);
- acronyms: pronounced letters separated by periods, trailing period included ("C.L.I."); a plural
  acronym takes a hyphen before the "s" ("A.B.C.-s"); a word and an acronym are separated by a
  hyphen ("Dynamo-D.B.");
- no digits: numbers are spelled out ("VX02Q" is "V.X.-zero-two-Q.").
How this module applies them (choices, not AWS rules):
- English: accents are stripped (NFKD) and typographic apostrophes straightened; capital runs of
  2-4 letters ("DNA", "ACTH", "PH") are read as initialisms and spelled with periods; longer capital
  runs ("COVID") are read as words; a term already written "C.L.I." stays an acronym; other periods
  ("Dr.") are dropped; a digit run of up to 3 digits is spelled as a cardinal ("B12" ->
  "B.-twelve"), a run with a leading zero digit by digit ("02" -> "zero-two", as in the AWS
  example); longer numbers and decimals are ambiguous to speak (years, doses), so the term is
  dropped. Any other character (parentheses, %, +, &) drops the term.
- Korean: anything outside Hangul syllables (Latin, digits, jamo, Hanja) drops the term; spelling
  out numbers would need a choice between Sino-Korean and native numerals.
- Separators between words: whitespace, "-", "/", "_", en and em dashes, the middle dot.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

VOCABULARY_MAX_BYTES = 50 * 1024  # "The size limit for each custom vocabulary file is 50 Kb"
PHRASE_MAX_CHARS = 256  # "Each entry within a custom vocabulary cannot exceed 256 characters"
TRAINING_TEXT_MAX_BYTES = 10 * 1024 * 1024  # far below the CLM limit (2 GB) and a Lambda's memory

_KEYWORD_SEPARATORS = re.compile(r"[,\r\n]+")
_WORD_SEPARATORS = re.compile(r"[\s\-/_\u2013\u2014\u00b7\u30fb]+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})
_DOTTED_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?\.?")
_DOTTED_PLURAL = re.compile(r"((?:[A-Za-z]\.)+)-?s")
_PLURAL_INITIALISM = re.compile(r"[A-Z]{2,4}s")
_LETTERS_OR_DIGITS = re.compile(r"[A-Za-z']+|[0-9]+")
_CAMEL_PIECES = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z']+|[A-Z]")
_ENGLISH_PHRASE = re.compile(r"[A-Za-z'.\-]+")
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")
_DECIMAL = re.compile(r"\d[.,]\d")
TABLE_HEADER = "Phrase\tSoundsLike\tIPA\tDisplayAs"
# Character sets for custom vocabularies (Developer Guide, "Character sets"), with the hyphen that
# joins the words of a phrase: English a-z A-Z ' - . ; Korean Hangul syllables.
_PHRASE_CHARSETS = {"en": _ENGLISH_PHRASE, "ko": re.compile(r"[\uac00-\ud7a3\-]+")}

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def keyword_entries(text: str) -> list[str]:
    """Entries of a keywords.txt as written: split on commas and line breaks, spaces collapsed, BOM and
    empty entries dropped; repeats kept (`select_keywords` drops and counts them)."""
    entries = (" ".join(raw.split()) for raw in _KEYWORD_SEPARATORS.split(text.replace("\ufeff", "")))
    return [entry for entry in entries if entry]


def parse_keywords(text: str) -> list[str]:
    """Terms of a keywords.txt: its entries without repeats (case-insensitive), first spelling kept."""
    return select_keywords([keyword_entries(text)]).terms


@dataclass(frozen=True)
class KeywordSelection:
    terms: list[str]
    duplicates: int  # entries dropped as repeats (case-insensitive) of an earlier one
    cut: int  # distinct terms dropped by the limit


def select_keywords(lists: Iterable[Iterable[str]], limit: int | None = None) -> KeywordSelection:
    """The distinct terms (case-insensitive, first spelling kept) of `lists` in order, at most `limit`:
    an earlier list keeps its priority over a later one."""
    terms: list[str] = []
    seen: set[str] = set()
    duplicates = cut = 0
    for term in (term for entries in lists for term in entries):
        if term.casefold() in seen:
            duplicates += 1
            continue
        seen.add(term.casefold())
        if limit is not None and len(terms) >= limit:
            cut += 1
        else:
            terms.append(term)
    return KeywordSelection(terms, duplicates, cut)


def vocabulary_phrase(term: str, language: str) -> str | None:
    """`term` as a custom-vocabulary Phrases entry for `language` (en-*, ko-KR), or None when it
    cannot be expressed in that language's character set (see the module docstring)."""
    words = [word for word in _WORD_SEPARATORS.split(term.strip()) if word]
    if not words:
        return None
    spell = _phrase_speller(language)
    parts: list[str] = []
    for word in words:
        spelled = spell(word)
        if spelled is None:
            return None
        parts.extend(piece for piece in spelled.split("-") if piece)
    phrase = "-".join(parts)
    if not phrase or len(phrase) > PHRASE_MAX_CHARS:
        return None
    return phrase


def vocabulary_entries(terms: Iterable[str], language: str, *,
                       max_bytes: int = VOCABULARY_MAX_BYTES) -> list[tuple[str, str]]:
    """(phrase, display form) of each usable term: valid, distinct (case-insensitive) phrases in the
    order given, whose vocabulary table (`vocabulary_table`) stays within `max_bytes` of UTF-8. An
    entry that does not fit is skipped, so a shorter later one may still be included: earlier terms
    keep their priority. The display form is the term as written when that differs from the phrase
    (Transcribe writes it in the transcript: "B12" for the phrase "B.-twelve"), else ""."""
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()
    used = len(TABLE_HEADER.encode("utf-8")) + 1
    for term in terms:
        phrase = vocabulary_phrase(term, language)
        if phrase is None or phrase.casefold() in seen:
            continue
        written = " ".join(term.split())
        display = written if written != phrase and len(written) <= PHRASE_MAX_CHARS else ""
        size = len(_table_row(phrase, display).encode("utf-8")) + 1
        if used + size > max_bytes:
            continue
        seen.add(phrase.casefold())
        entries.append((phrase, display))
        used += size
    return entries


def vocabulary_phrases(terms: Iterable[str], language: str, *, max_bytes: int = VOCABULARY_MAX_BYTES) -> list[str]:
    """The phrases of `vocabulary_entries`, in order."""
    return [phrase for phrase, _display in vocabulary_entries(terms, language, max_bytes=max_bytes)]


def vocabulary_table(entries: Iterable[tuple[str, str]]) -> str:
    """A vocabulary in Transcribe's table format, which standard and medical vocabularies share (list
    format is deprecated; medical vocabularies take only tables): a tab-separated header with the four
    columns, one row per phrase; SoundsLike and IPA stay empty (no longer supported for standard
    vocabularies), DisplayAs holds the display form."""
    return "\n".join([TABLE_HEADER, *(_table_row(phrase, display) for phrase, display in entries)]) + "\n"


def _table_row(phrase: str, display: str) -> str:
    return f"{phrase}\t\t\t{display}"


def phrase_problems(phrases: Iterable[str], language: str) -> list[str]:
    """Transcribe's rules for vocabulary phrases that `phrases` break (counts only: no phrase is
    repeated in a message): at most 256 characters, no spaces or digits, the language's character set."""
    listed = list(phrases)
    problems: list[str] = []
    too_long = sum(1 for phrase in listed if len(phrase) > PHRASE_MAX_CHARS)
    if too_long:
        problems.append(f"{too_long} phrase(s) longer than {PHRASE_MAX_CHARS} characters")
    spaced = sum(1 for phrase in listed if re.search(r"\s", phrase))
    if spaced:
        problems.append(f"{spaced} phrase(s) with spaces (join the words with hyphens)")
    digits = sum(1 for phrase in listed if re.search(r"\d", phrase))
    if digits:
        problems.append(f"{digits} phrase(s) with digits (numbers must be spelled out)")
    charset = _PHRASE_CHARSETS.get(language.split("-")[0].lower())
    if charset is not None:
        outside = sum(1 for phrase in listed if not re.search(r"[\s\d]", phrase) and not charset.fullmatch(phrase))
        if outside:
            problems.append(f"{outside} phrase(s) outside the {language} character set")
    return problems


def _phrase_speller(language: str) -> Callable[[str], str | None]:
    if language.lower().startswith("en"):
        return _english_word
    if language.lower().startswith("ko"):
        return _korean_word
    raise ValueError(f"no custom-vocabulary rules for language {language!r}")


def _english_word(word: str) -> str | None:
    word = _strip_accents(word.translate(_APOSTROPHES)).strip("'")
    if _DECIMAL.search(word):
        return None
    if _DOTTED_ACRONYM.fullmatch(word):
        return _initialism(word.replace(".", ""))
    if plural := _DOTTED_PLURAL.fullmatch(word):
        return _initialism(plural.group(1).replace(".", "")) + "-s"
    word = word.replace(".", "")
    if not word:
        return None
    if _PLURAL_INITIALISM.fullmatch(word):
        return _initialism(word[:-1]) + "-s"
    pieces: list[str] = []
    consumed = 0
    for match in _LETTERS_OR_DIGITS.finditer(word):
        if match.start() != consumed:  # a character outside a-z A-Z ' 0-9
            return None
        consumed = match.end()
        run = match.group()
        spelled = _number_words(run) if run.isdigit() else _letters(run)
        if spelled is None:
            return None
        pieces.append(spelled)
    if consumed != len(word):
        return None
    phrase = "-".join(piece for piece in pieces if piece)
    return phrase if phrase and _ENGLISH_PHRASE.fullmatch(phrase) else None


def _letters(run: str) -> str:
    run = run.strip("'")
    if len(run) == 1 and run.isupper():  # a pronounced letter ("Hepatitis B")
        return _initialism(run)
    if not re.search(r"[A-Z]{2,}", run):
        return run
    return "-".join(_initialism(piece) if _is_initialism(piece) else piece for piece in _CAMEL_PIECES.findall(run))


def _is_initialism(piece: str) -> bool:
    return piece.isupper() and len(piece) <= 4


def _initialism(letters: str) -> str:
    return "".join(f"{letter.upper()}." for letter in letters)


def _number_words(digits: str) -> str | None:
    if len(digits) > 1 and digits.startswith("0"):
        return "-".join(_ONES[int(digit)] for digit in digits)
    if len(digits) > 3:
        return None
    return _cardinal(int(digits))


def _cardinal(value: int) -> str:
    if value < 20:
        return _ONES[value]
    if value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(value, 100)
    return f"{_ONES[hundreds]}-hundred" + (f"-{_cardinal(rest)}" if rest else "")


def _strip_accents(text: str) -> str:
    return "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))


def _korean_word(word: str) -> str | None:
    word = unicodedata.normalize("NFC", word).replace(".", "")
    return word if _HANGUL_WORD.fullmatch(word) else None


# --- offline noun candidates -------------------------------------------------------------------

# Function words, auxiliaries, very common verbs/adverbs, conversation fillers and vague nouns:
# what a clinical conversation is mostly made of and what a vocabulary never needs.
_ENGLISH_STOPWORDS = frozenset([
    "a", "about", "above", "actually", "after", "again", "against", "ago", "all", "almost", "also", "always", "am",
    "an", "and", "another", "any", "anybody", "anyone", "anything", "anyway", "are", "around", "as", "ask", "asked",
    "at", "away", "back", "bad", "be", "because", "been", "before", "being", "below", "best", "better", "between",
    "big", "bit", "both", "but", "by", "call", "came", "can", "can't", "come", "coming", "could", "couldn't", "day",
    "days", "did", "didn't", "do", "does", "doesn't", "doing", "don't", "done", "down", "during", "each", "earlier",
    "either", "else", "enough", "even", "ever", "every", "everybody", "everyone", "everything", "exactly", "few",
    "fine", "first", "for", "from", "get", "gets", "getting", "give", "given", "go", "goes", "going", "gone",
    "good", "got", "great", "had", "hadn't", "has", "hasn't", "have", "haven't", "having", "he", "he's", "her",
    "here", "hers", "herself", "him", "himself", "his", "hour", "hours", "how", "however", "i", "i'd", "i'll",
    "i'm", "i've", "if", "in", "into", "is", "isn't", "it", "it's", "its", "itself", "just", "keep", "kind", "know",
    "last", "later", "let", "let's", "like", "little", "look", "looks", "lot", "lots", "made", "make", "many",
    "may", "maybe", "me", "might", "mine", "more", "most", "minute", "minutes", "month", "months", "much", "must",
    "my", "myself", "need", "needs", "never", "new", "next", "no", "nobody", "none", "nor", "not", "nothing", "now",
    "of", "off", "often", "oh", "ok", "okay", "on", "once", "one", "only", "or", "other", "others", "our", "ours",
    "ourselves", "out", "over", "own", "part", "people", "perhaps", "please", "pretty", "put", "quite", "rather",
    "really", "right", "said", "same", "saw", "say", "says", "see", "seem", "seems", "seen", "shall", "she",
    "she's", "should", "shouldn't", "since", "so", "some", "somebody", "someone", "something", "sometimes", "soon",
    "sort", "still", "such", "sure", "take", "taken", "tell", "than", "thank", "thanks", "that", "that's", "the",
    "their", "theirs", "them", "themselves", "then", "there", "there's", "these", "they", "they're", "thing",
    "things", "think", "this", "those", "though", "through", "time", "times", "to", "today", "together", "told",
    "tomorrow", "too", "took", "towards", "try", "trying", "two", "uh", "um", "under", "until", "up", "upon", "us",
    "use", "used", "very", "want", "wanted", "was", "wasn't", "way", "we", "we'll", "we're", "we've", "week",
    "weeks", "well", "went", "were", "weren't", "what", "what's", "when", "where", "whether", "which", "while",
    "who", "whom", "whose", "why", "will", "with", "within", "without", "won't", "would", "wouldn't", "yeah",
    "year", "years", "yes", "yesterday", "yet", "you", "you'd", "you'll", "you're", "you've", "your", "yours",
    "yourself", "yourselves"
])

# Korean: 하다-verbs and the copula end in a noun stem, which is kept; other predicate endings mark
# verbs and adjectives, which are dropped; particles are stripped from nouns. Particles that also
# end common clinical nouns are left out: 과 (내과, 소아과), 도 (심전도, 온도), 만 (비만), 나 (하나).
_KOREAN_NOUN_ENDINGS = tuple(sorted([
    "했습니다", "합니다", "했어요", "했는데", "하세요", "해요", "했다", "했고", "한다", "하다", "하고", "하는",
    "하면", "해서", "할", "한", "했", "되었습니다", "됩니다", "됐어요", "되었다", "되어", "되고", "되는", "되다",
    "돼요", "된", "될", "됐", "입니다", "이에요", "예요", "이다",
], key=len, reverse=True))
_KOREAN_PREDICATE_ENDINGS = tuple(sorted([
    "습니다", "니다", "세요", "어요", "아요", "네요", "는데", "지만", "니까", "어서", "아서", "었어", "았어",
    "었고", "았고", "었다", "았다", "요", "다", "죠",
], key=len, reverse=True))
_KOREAN_PARTICLES = tuple(sorted([
    "에서는", "으로는", "에게서", "에서", "에게", "께서", "한테", "까지", "부터", "처럼", "보다", "으로", "이나",
    "이랑", "에는", "와", "은", "는", "이", "가", "을", "를", "에", "로", "의", "랑",
], key=len, reverse=True))
_KOREAN_STOPWORDS = frozenset([
    "그리고", "그런데", "그래서", "그러면", "하지만", "그러니까", "그냥", "너무", "조금", "많이", "정말", "진짜",
    "혹시", "이제", "지금", "어떻게", "언제", "어디", "무엇", "그거", "이거", "저거", "여기", "거기", "저기",
    "우리", "저희", "제가", "내가", "당신", "이것", "그것", "저것", "때문", "정도", "경우", "다음", "오늘", "어제",
    "내일", "아니요", "네네",
])


def candidate_nouns_offline(words: Iterable[str], language: str) -> list[str]:
    """Likely content nouns in `words` (tokens or whole sentences), most specific first.

    A heuristic stand-in for Comprehend Medical in the local runtime and for Korean, not part-of-speech
    tagging: it drops stopwords, fillers, short tokens and anything with digits, so adjectives and
    some verbs survive. English: tokens of 3+ letters not in a compact stopword list, adverbs in
    -ly and past forms in -ed (6+ letters) dropped, possessive 's removed. Korean: Hangul runs of
    each 어절; a 하다/copula ending is cut to its noun stem ("수술했어요" -> "수술"), other
    predicate endings drop the word ("아파요"), one particle is stripped ("통증이" -> "통증")
    when a stem of 2+ syllables remains; 2+ syllables kept. Distinct (case-insensitive), first
    spelling kept. Ranking: by `wordfreq` Zipf frequency (rarest first) when that package is
    installed and the language is English, else by length (longer words are rarer on average),
    ties in order of appearance. No model is loaded.
    """
    lang = language.lower()[:2]
    if lang == "en":
        found = _english_candidates(words)
    elif lang == "ko":
        found = _korean_candidates(words)
    else:
        raise ValueError(f"no offline noun heuristics for language {language!r}")
    zipf = _zipf_frequency() if lang == "en" else None
    if zipf is not None:
        # everyday words ("changes", "worse": Zipf >= COMMON_ZIPF) are not what a vocabulary fixes
        rare = [word for word in found if zipf(word.lower(), "en") < COMMON_ZIPF]
        return sorted(rare, key=lambda word: zipf(word.lower(), "en"))
    return sorted(found, key=len, reverse=True)


def _english_candidates(words: Iterable[str]) -> list[str]:
    found: dict[str, str] = {}
    for text in words:
        for token in re.findall(r"[\w'\-]+", text.translate(_APOSTROPHES)):
            token = token.strip("'-")
            if token.lower().endswith("'s"):
                token = token[:-2]
            key = token.casefold()
            letters_only = token.replace("'", "").replace("-", "").isalpha()
            if (len(token) < 3 or not letters_only or key in _ENGLISH_STOPWORDS
                    or (len(token) > 4 and key.endswith("ly")) or (len(token) > 5 and key.endswith("ed"))):
                continue
            found.setdefault(key, token)
    return list(found.values())


def _korean_candidates(words: Iterable[str]) -> list[str]:
    found: dict[str, str] = {}
    for text in words:
        for eojeol in text.split():
            for run in _HANGUL_WORD.findall(unicodedata.normalize("NFC", eojeol)):
                noun = _korean_noun(run)
                if noun and noun not in _KOREAN_STOPWORDS:
                    found.setdefault(noun, noun)
    return list(found.values())


def _korean_noun(run: str) -> str | None:
    for ending in _KOREAN_NOUN_ENDINGS:
        if run.endswith(ending) and len(run) - len(ending) >= 2:
            return run[: -len(ending)]
    if run.endswith(_KOREAN_PREDICATE_ENDINGS):
        return None
    for particle in _KOREAN_PARTICLES:
        if run.endswith(particle) and len(run) - len(particle) >= 2:
            return run[: -len(particle)]
    return run if len(run) >= 2 else None


# Zipf frequency (log10 per billion words) from which an English word counts as everyday vocabulary
COMMON_ZIPF = 4.0


def _zipf_frequency() -> Callable[[str, str], float] | None:
    try:
        module = importlib.import_module("wordfreq")
    except ImportError:
        return None
    function: Callable[[str, str], float] = module.zipf_frequency
    return function


# --- CLM training text ------------------------------------------------------------------------

_HEADING = re.compile(r"^\s*=+.*=+\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002])\s+")
_SPECIAL = re.compile(r"[^\w\s.,'?!\-]")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,?!])")


def training_text(keywords: Iterable[str], documents: Mapping[str, str], *,
                  max_bytes: int = TRAINING_TEXT_MAX_BYTES) -> str:
    """CLM training text: UTF-8 plain text, one sentence per line, keywords first (one per line),
    then the sentences of each document in mapping order. Section headings ("== History ==", as
    MediaWiki plain extracts write them) and characters other than letters, digits, spaces and
    . , ' ? ! - are removed (the data may not contain special characters or formatting); repeated
    lines are dropped. Lines are added while the text stays within `max_bytes`."""
    lines: list[str] = []
    seen: set[str] = set()
    used = 0
    candidates = [*keywords, *(sentence for text in documents.values() for sentence in _sentences(text))]
    for candidate in candidates:
        cleaned = _SPECIAL.sub(" ", unicodedata.normalize("NFC", candidate.translate(_APOSTROPHES)))
        line = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(cleaned.replace("_", " ").split()))
        if not line or line in seen:
            continue
        size = len(line.encode("utf-8")) + 1
        if used + size > max_bytes:
            continue
        seen.add(line)
        lines.append(line)
        used += size
    return "".join(f"{line}\n" for line in lines)


def _sentences(text: str) -> list[str]:
    sentences: list[str] = []
    for paragraph in text.splitlines():
        if _HEADING.match(paragraph):
            continue
        sentences.extend(part for part in _SENTENCE_END.split(paragraph.strip()) if len(part.split()) >= 2)
    return sentences
