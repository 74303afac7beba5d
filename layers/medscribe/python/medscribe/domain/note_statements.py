"""Note statements from transcript lines by deterministic rewriting that can be checked against the lines. Pure.

Every rule only deletes words of its cited lines or adds words from `ADDED_WORDS` (pronouns, "the patient",
"denies", "reports" and the verb forms a change of person needs), so a statement says nothing its cited lines
do not; `offline_visit` also runs the project's claim checker on each one.

- clean: hesitations, stutters ("f- felt"), repeated words ("your , your"), discourse openers ("okay , so"),
  dictation-device commands ("hey , dragon , show me the x-ray") and tokenizer spacing ("do n't") removed;
- person: the patient's first person and the clinician's second person become the third person ("i hurt my
  back" -> "he hurt his back"), with the pronoun the transcript itself gives (the clinician's "57-year-old
  male", or a clear majority of he/his over she/her in the clinician's lines), else "the patient";
- question and answer: a clinician's yes/no question and a short reply become one statement citing both
  lines ("any fever ?" + "no ." -> "Denies fever."; "yes" -> "Reports ...");
- sentences: a line is split into sentences (at punctuation; unpunctuated speech-recognition text at
  discourse markers such as "okay", "alright") so each statement is one thought.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from medscribe.domain.notes import CLINICIAN, PATIENT, content_words, words
from medscribe.domain.transcript_lines import Line

SHORT_ANSWER_WORDS = 4  # content words in a reply that make it an answer to the question before it
MAX_TOPIC_WORDS = 16
UNPUNCTUATED_SPLIT_WORDS = 12  # an unpunctuated line longer than this is split at discourse markers

# Words a rewrite may add: everything else in a statement is a word of its cited lines.
PRONOUNS = {
    "male": ("he", "his", "him", "himself"),
    "female": ("she", "her", "her", "herself"),
    "unknown": ("the patient", "their", "them", "themselves"),
}
ADDED_WORDS = frozenset({word for forms in PRONOUNS.values() for form in forms for word in form.split()}) | {
    "denies", "reports", "is", "was", "has", "does", "did", "not", "would", "will", "can",
}

_YES = frozenset({"yes", "yeah", "yep", "yup", "yea", "correct", "sure", "uh-huh", "mm-hmm", "mhm", "right"})
_NO = frozenset({"no", "nope", "nah", "never", "none", "nothing", "negative"})
_NEGATING = re.compile(r"\b(?:no|not|n't|never|without|none|nothing|denies)\b|n't\b")

_SPACING = ((re.compile(r"\s+n't\b"), "n't"), (re.compile(r"\s+'(s|re|ve|ll|d|m)\b"), r"'\1"),
            (re.compile(r"\bgon na\b"), "gonna"), (re.compile(r"\bwan na\b"), "wanna"),
            (re.compile(r"\s+([,.?!;:])"), r"\1"))
_DEVICE = re.compile(r"\bhey,?\s+dragon\b[^.?!]*[.?!]?", re.IGNORECASE)
_HESITATION = re.compile(r"(?<![\w'-])(?:um+|uh+|umm+|uhm|er|ah|hmm+|mm+|mm-hmm|uh-huh|uh-|you know|i mean)"
                         r"(?![\w'-])[,.]?", re.IGNORECASE)
_SOFTENERS = re.compile(r"(?<![\w'-])(?:go ahead and|just|really|actually|basically|definitely|certainly|literally|"
                        r"kind of|sort of|kinda|sorta|pretty much)(?![\w'-])", re.IGNORECASE)
_INTENT = re.compile(r"(?<![\w'-])(?:i'm gonna|i'm going to|i am going to|i wanna|i want to|i would like to|"
                     r"i'd like to|we're gonna|we are going to|we're going to|we wanna|we want to|we'd like to|"
                     r"we would like to|let's|let us|we'll|i'll|we will|i will)\s+", re.IGNORECASE)
_ONES = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NUMBERS = {**{w: i for i, w in enumerate(_ONES, start=1)}, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
            "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
            "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
            "ninety": 90}
_NUMBER_WORD = "|".join(sorted(_NUMBERS, key=len, reverse=True))
# a number word before a unit (or "out of") is written as digits; the claim checker reads both the same way
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_COUNTED = re.compile(rf"\b(?:(?P<tens>{_TENS})[\s-]+(?P<n>{'|'.join(_ONES)})"
                      rf"|(?P<word>{_NUMBER_WORD}))"
                      r"(?=\s+(?:milligrams?|mg|days?|weeks?|months?|years?|hours?|minutes?|times|pounds|percent|"
                      r"out of|units?|tablets?|pills?|centimeters?|inches|degrees|cigarettes|drinks|packs?)\b)",
                      re.IGNORECASE)
_UNITS = ((re.compile(r"\bmilligrams?\b", re.IGNORECASE), "mg"),)
# contractions written out, as notes write them ("doesn't" -> "does not", "it's" -> "it is")
_CONTRACTIONS = ((re.compile(r"\b(do|does|did|is|was|are|were|has|have|had|would|could|should)n't\b", re.IGNORECASE),
                  r"\1 not"), (re.compile(r"\bca(?:n)?n't\b", re.IGNORECASE), "can not"),
                 (re.compile(r"\bwon't\b", re.IGNORECASE), "will not"),
                 (re.compile(r"\b(it|that|there|he|she|what|this)'s\b", re.IGNORECASE), r"\1 is"))
_STUTTER = re.compile(r"(?<![\w'-])[a-z]{1,3}-(?=\s)", re.IGNORECASE)
_REPEAT = re.compile(r"\b(\w+(?:'\w+)?)(?:\s*,?\s+\1\b)+", re.IGNORECASE)
_OPENER = re.compile(r"^(?:(?:okay|ok|alright|all right|so|and|well|now|yeah|yes|right|great|good|perfect|"
                     r"sure|oh|wow|gotcha|got it|i see|nice|cool|anyway|but)\b[\s,.!]*)+", re.IGNORECASE)
_MARKER_SPLIT = re.compile(r"\s+(?=(?:okay|alright|all right|so|and then|now)\s)", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.?!]+[.?!]*")

# Person rewriting (lower-case text): longest patterns first; {s} subject, {p} possessive, {o} object.
_FIRST_PERSON = (
    (r"\bi'm\b|\bi am\b", "{s} is"), (r"\bi haven't\b|\bi have not\b", "{s} has not"),
    (r"\bi've\b|\bi have\b", "{s} has"), (r"\bi'd\b", "{s} would"),
    (r"\bi'll\b", "{s} will"), (r"\bi don't\b|\bi do not\b", "{s} does not"), (r"\bi do\b", "{s} does"),
    (r"\bi\b", "{s}"), (r"\bmy\b", "{p}"), (r"\bme\b", "{o}"), (r"\bmyself\b", "{r}"),
)
_SECOND_PERSON = (
    (r"\byou're\b|\byou are\b", "{s} is"), (r"\byou haven't\b|\byou have not\b", "{s} has not"),
    (r"\byou've\b|\byou have\b", "{s} has"),
    (r"\byou don't\b|\byou do not\b", "{s} does not"), (r"\byou do\b", "{s} does"), (r"\byou'll\b", "{s} will"),
    (r"\byou'd\b", "{s} would"), (r"\byour\b", "{p}"), (r"\byourself\b", "{r}"),
)
# "you" is a subject at the start of a clause (after these words or punctuation), else an object
_SUBJECT_AFTER = frozenset({
    "and", "but", "if", "when", "that", "because", "so", "as", "since", "until", "unless", "or", "then", "whether",
    "where", "how", "what", "while", "once", "do", "did", "can", "will", "would", "should", "could", "are", "were",
    "have", "had", "think", "know", "hope", "sure", "also", "now", "maybe",
})
_YOU = re.compile(r"(?:(?P<before>[\w']+)(?P<gap>[\s,;:]+)|^)you\b", re.IGNORECASE)
_QUESTION_LEAD = re.compile(
    r"^(?:(?:and|so|okay|ok|alright|now|also|but|um|uh|any|other|else|how about|what about)\b[\s,]*)*"
    r"(?:(?:do|did|have|has|are|were|is|was|does)\s+(?:you|he|she)\s+(?:ever\s+)?"
    r"(?:have|had|having|get|got|getting|experienced?|experiencing|noticed?|notice|feel|felt|feeling|been)?\s*"
    r"|(?:you|you're|you've)\s+(?:have|had|having|been|not)?\s*)?(?:any\s+|other\s+|kind of\s+)*",
    re.IGNORECASE)
BARE_TOPIC_WORDS = 5  # a question without a verb ("nausea , vomiting ?") of at most this many words names a topic
_VAGUE = re.compile(r"^(?:or\s+)?(?:anything|something|any other|anything else)(?:\s+(?:like that|else))?\b")
_WH = re.compile(r"^(?:what|when|where|which|who|whom|why|how|can|could|would|will|should|okay|right|yeah|yes|"
                 r"sorry|really|correct|is it|is that|does that|did that)\b")
_POINTING = frozenset({"you", "your", "this", "that", "here", "there", "it", "these", "those"})
_YES_NO_QUESTION = re.compile(r"^(?:(?:and|so|okay|ok|alright|now|also|but|um|uh)\b[\s,]*)*"
                              r"(?:any|do|did|have|has|are|were|is|was|does|you|no|how about any|what about any)\b",
                              re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """A rewritten statement and the numbers of the lines it comes from. `kind`: "qa" (a question and its
    answer), "said" (a sentence of one line)."""

    text: str
    lines: tuple[int, ...]
    role: str  # the role of the speaker whose words the statement carries (the answerer for "qa")
    kind: str
    source: str  # the cleaned sentence before the change of person (what section cues are matched on)


def tidy(text: str) -> str:
    """Tokenizer spacing undone and hesitations, stutters, repeated words and device commands removed."""
    text = " " + " ".join(text.split()) + " "
    for pattern, replacement in _SPACING:
        text = pattern.sub(replacement, text)
    text = _DEVICE.sub(" ", text)
    text = _HESITATION.sub(" ", text)
    text = _STUTTER.sub(" ", text)
    text = _SOFTENERS.sub(" ", text)
    text = _INTENT.sub(" ", text)
    text = _REPEAT.sub(r"\1", text)
    text = re.sub(r"(?<=\w)-(?=\s|[,.?!]|$)", "", text)  # a word cut off ("in the past-")
    text = re.sub(r"([,.?!])(?:\s*[,.?!])+", r"\1", " ".join(text.split()))
    return text.strip(" ,")


def _digits(match: re.Match[str]) -> str:
    if match.group("word"):
        return str(_NUMBERS[match.group("word").lower()])
    return str(_NUMBERS[match.group("tens").lower()] + _NUMBERS[match.group("n").lower()])


def notation(text: str) -> str:
    """Counted number words as digits ("five pounds" -> "5 pounds"), milligrams as mg, contractions written out."""
    text = _COUNTED.sub(_digits, text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    for pattern, replacement in _UNITS:
        text = pattern.sub(replacement, text)
    return text


def sentences(text: str) -> list[str]:
    """The cleaned sentences of a line (openers such as "okay , so" dropped)."""
    found = [s.strip() for s in _SENTENCE.findall(tidy(text)) if s.strip()]
    split: list[str] = []
    for sentence in found:
        if not re.search(r"[.?!]", sentence) and len(sentence.split()) > UNPUNCTUATED_SPLIT_WORDS:
            split.extend(_MARKER_SPLIT.split(sentence))
        else:
            split.append(sentence)
    return [c for c in (_OPENER.sub("", s).strip(" ,") for s in split) if c and c not in ".?!"]


def patient_gender(lines: Sequence[Line], roles: Mapping[str, str]) -> str:
    """"male" / "female" when the transcript says so: the clinician's "57-year-old male", else a title
    (mr., mrs., ms.) in the clinician's lines, else the clinician's (or a companion's) he/his/him against
    she/her (at least two and half again as many as the other); otherwise "unknown"."""
    clinician = " ".join(line.text.lower() for line in lines if roles.get(line.speaker) == CLINICIAN)
    stated = re.search(r"\byear[- ]old\s+(male|female|man|woman|gentleman|lady|boy|girl)\b", clinician)
    if stated:
        return "male" if stated.group(1) in ("male", "man", "gentleman", "boy") else "female"
    tokens = words(clinician)
    titles = {"male": tokens.count("mr"), "female": sum(tokens.count(t) for t in ("mrs", "ms", "miss"))}
    if titles["male"] != titles["female"]:
        return max(titles, key=lambda k: titles[k])
    others = words(" ".join(line.text.lower() for line in lines if roles.get(line.speaker) != PATIENT))
    he = sum(others.count(w) for w in ("he", "his", "he's", "him", "himself"))
    she = sum(others.count(w) for w in ("she", "her", "she's", "hers", "herself"))
    if he >= 2 and 2 * he >= 3 * she:
        return "male"
    if she >= 2 and 2 * she >= 3 * he:
        return "female"
    return "unknown"


def third_person(sentence: str, gender: str, *, second_person: bool) -> str:
    """The sentence with the patient's first person (or the clinician's second person) in the third person."""
    subject, possessive, obj, reflexive = PRONOUNS[gender]
    values = {"s": subject, "p": possessive, "o": obj, "r": reflexive}
    text = sentence
    for pattern, replacement in (_SECOND_PERSON if second_person else _FIRST_PERSON):
        text = re.sub(pattern, replacement.format(**values), text, flags=re.IGNORECASE)
    if second_person:
        text = _YOU.sub(lambda m: _you(m, subject, obj), text)
    return text


def _you(match: re.Match[str], subject: str, obj: str) -> str:
    before = match.group("before")
    if before is None:
        return subject
    clause_start = before.lower() in _SUBJECT_AFTER or any(c in match.group("gap") for c in ",;:")
    return f"{before}{match.group('gap')}{subject if clause_start else obj}"


def as_statement(text: str) -> str:
    text = text.strip(" ,;:")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def reply_polarity(reply: str) -> str | None:
    """"yes" / "no" for a short reply that starts with one, else None."""
    tokens = words(tidy(reply))
    while tokens and tokens[0] in ("okay", "ok", "oh", "well", "um", "uh", "so"):
        tokens = tokens[1:]
    if not tokens or len(content_words(" ".join(tokens))) > SHORT_ANSWER_WORDS:
        return None
    if tokens[0] in _YES:
        return "yes"
    if tokens[0] in _NO:
        return "no"
    return None


def _asked_about(sentence: str) -> str | None:
    """The topic of one yes/no question sentence ("any fever or chills" -> "fever or chills", a bare "nausea"
    -> "nausea"), or None for an open question."""
    if _YES_NO_QUESTION.match(sentence):
        topic = _QUESTION_LEAD.sub("", sentence).strip(" ,")
        return re.sub(r"\s+(?:or|and)\s+(?:anything|something)(?:\s+like that)?$|\s+(?:at all|lately)$", "",
                      topic) or None
    tokens = words(sentence)
    if 0 < len(tokens) <= BARE_TOPIC_WORDS and not _WH.match(sentence) and not (_POINTING & set(tokens)) \
            and not any(c.isdigit() for c in sentence):
        return sentence
    return None


def question_topic(question: str, gender: str) -> str | None:
    """What a clinician's closing run of yes/no questions asks about ("any fatigue ? weight gain ? anything like
    that ?" -> "fatigue, weight gain"), in the third person; None for open questions, questions that already
    carry a negation, and topics of too few or many words."""
    parts: list[str] = []
    for sentence in reversed(sentences(question)):
        text = sentence.rstrip("?. ").lower().strip(" ,")
        if not sentence.endswith("?"):
            if parts:
                break
            continue
        if _NEGATING.search(text):
            return None
        if _VAGUE.match(text):
            continue
        topic = _asked_about(text)
        if topic is None:
            break
        parts.insert(0, topic)
    topic = ", ".join(parts)
    if not topic or len(content_words(topic)) < 1 or len(topic.split()) > MAX_TOPIC_WORDS:
        return None
    return third_person(topic, gender, second_person=True)


# "are you still on your metformin ?" + "yes" -> "He is still on his metformin."; questions about "any" symptom
# take the Reports/Denies form instead
_DECLARATIVE = (
    (re.compile(r"^(?:are you|you're|you are)\s+(?!any\b|having any\b)(?P<rest>.+)$"), "is"),
    (re.compile(r"^(?:were you|you were)\s+(?!any\b)(?P<rest>.+)$"), "was"),
    (re.compile(r"^(?:have you|you've|you have)\s+(?P<rest>(?:been|had|tried|taken|noticed|seen|lost|gained|started|"
                r"stopped|used)\s+(?!any\b).+)$"), "has"),
    (re.compile(r"^(?:did you|you did)\s+(?!have any\b|get any\b|notice any\b)(?P<rest>.+)$"), "did"),
    (re.compile(r"^(?:do you|you do)\s+(?!have any\b|get any\b|notice any\b)(?P<rest>.+)$"), "does"),
)


def _declarative(question: str, polarity: str, gender: str) -> str | None:
    asked = [s for s in sentences(question) if s.endswith("?")]
    if not asked:
        return None
    last = _OPENER.sub("", asked[-1].rstrip("?. ").lower()).strip(" ,")
    if _NEGATING.search(last):
        return None
    for pattern, verb in _DECLARATIVE:
        match = pattern.match(last)
        if match and len(match.group("rest").split()) <= MAX_TOPIC_WORDS:
            rest = third_person(match.group("rest"), gender, second_person=True)
            negated = " not" if polarity == "no" else ""
            return as_statement(notation(f"{PRONOUNS[gender][0]} {verb}{negated} {rest}"))
    return None


def question_answer(question: Line, reply: Line, gender: str) -> Statement | None:
    """A clinician's yes/no question and the short reply after it as one statement citing both lines."""
    polarity = reply_polarity(reply.text)
    if polarity is None:
        return None
    declarative = _declarative(question.text, polarity, gender)
    if declarative is not None:
        return Statement(declarative, (question.n, reply.n), "patient", "qa", declarative)
    topic = question_topic(question.text, gender)
    if topic is None:
        return None
    verb = "Denies" if polarity == "no" else "Reports"
    return Statement(f"{verb} {notation(topic)}.", (question.n, reply.n), "patient", "qa", topic)


def line_statements(line: Line, role: str, gender: str) -> list[Statement]:
    """The sentences of one line (questions left out) as statements in the third person."""
    found: list[Statement] = []
    for sentence in sentences(line.text):
        if sentence.endswith("?"):
            continue
        rewritten = third_person(sentence, gender, second_person=role == CLINICIAN)
        text = as_statement(notation(rewritten))
        if text:
            found.append(Statement(text, (line.n,), role, "said", sentence))
    return found
