"""The language an upload asks for, and the kind of Transcribe job it gets. Pure: the caller reads
the key and the object's tags (ingest reads the tags once, for this and for domain.template_choice).

Three ways, the first that names a language wins:
1. the S3 object tag `medscribe-language` = en-US | ko-KR | identify;
2. the key: a `language=<code>` folder segment anywhere below the kind prefix (the innermost wins), else
   the first folder below the kind prefix when it is a language, e.g. `audio/ko-KR/visit.mp3` or
   `text/ko-KR/note.txt` (the file name is never read);
3. neither: recordings take the deployment's `language`; text notes take the language of their text
   (the EMR structuring detects it, as it did before languages were chosen per upload).
The tag wins over the key, as it does for note templates: a tag is set on one object, a folder
holds many, so the tag is the more specific statement (and one rule for both choices).

Codes are matched in any letter case and recorded as Transcribe writes them (`ko-kr` -> `ko-KR`). A
tag or a `language=` segment naming anything else rejects the upload; so does a first folder shaped
like a Transcribe locale (two lower-case letters, '-', two upper-case letters: `fr-FR`, `ja-JP`) that
is not a supported language, because transcribing it in another language would quietly produce a
wrong transcript. Any other first folder (`clinic-a`, `2026`) is just a folder. Reasons never repeat
the key or the tag value.

Amazon Transcribe Medical transcribes US English only (`LanguageCode` en-US; no language
identification): with `transcribe_medical` on, an upload in ko-KR or `identify` gets a standard
Transcribe job instead (`medical_job`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from medscribe.domain.template_choice import key_segment

LANGUAGE_TAG = "medscribe-language"
LANGUAGE_SEGMENT = "language"
IDENTIFY = "identify"
LANGUAGES = ("en-US", "ko-KR", IDENTIFY)  # what an upload or the deployment may ask for
MEDICAL_LANGUAGE = "en-US"  # the only language of Amazon Transcribe Medical
_BY_LOWER = {code.lower(): code for code in LANGUAGES}
_LOCALE_SHAPE = re.compile(r"^[a-z]{2}-[A-Z]{2}$")  # a Transcribe locale, e.g. fr-FR (case-sensitive)
_SUPPORTED = "en-US, ko-KR or identify"


class LanguageSource(StrEnum):
    TAG = "tag"
    KEY = "key"
    SETTING = "setting"  # neither: the deployment's language (recordings) or the text's own (text notes)


class LanguageChoiceError(ValueError):
    """The tag or key names a language this pipeline does not transcribe (the message does not repeat it)."""


@dataclass(frozen=True)
class LanguageChoice:
    language: str | None  # en-US | ko-KR | identify; None: neither tag nor key chose
    source: LanguageSource


def supported_language(value: str) -> str | None:
    """`value` as a supported language code (any letter case, surrounding spaces ignored), else None."""
    return _BY_LOWER.get(value.strip().lower())


def language_in_key(key: str) -> str | None:
    """The language the key names (see the module docstring), None when it names none; raises
    LanguageChoiceError for a `language=` segment or a locale-shaped first folder that is unsupported."""
    segment = key_segment(key, LANGUAGE_SEGMENT)
    if segment is not None:
        chosen = supported_language(segment)
        if chosen is None:
            raise LanguageChoiceError(f"the key's {LANGUAGE_SEGMENT}= folder names a language this pipeline "
                                      f"does not transcribe (it takes {_SUPPORTED})")
        return chosen
    folders = key.split("/")[1:-1]
    if not folders:
        return None
    first = supported_language(folders[0])
    if first is None and _LOCALE_SHAPE.fullmatch(folders[0]):
        raise LanguageChoiceError("the key's first folder names a language this pipeline does not transcribe "
                                  f"(it takes {_SUPPORTED})")
    return first


def choose_language(key: str, tags: Mapping[str, str]) -> LanguageChoice:
    """The language an upload asks for by its tag, else by its key; raises LanguageChoiceError."""
    tagged = tags.get(LANGUAGE_TAG)
    if tagged is not None:
        language = supported_language(tagged)
        if language is None:
            raise LanguageChoiceError(f"the {LANGUAGE_TAG} tag names a language this pipeline does not transcribe "
                                      f"(it takes {_SUPPORTED})")
        return LanguageChoice(language, LanguageSource.TAG)
    in_key = language_in_key(key)
    if in_key is not None:
        return LanguageChoice(in_key, LanguageSource.KEY)
    return LanguageChoice(None, LanguageSource.SETTING)


def medical_job(language: str, transcribe_medical: bool) -> bool:
    """Whether a recording in `language` gets a Transcribe Medical job: only en-US under
    `transcribe_medical`; Korean and language identification fall back to standard Transcribe."""
    return transcribe_medical and language == MEDICAL_LANGUAGE
