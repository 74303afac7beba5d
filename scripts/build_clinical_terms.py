"""Build layers/medscribe/python/medscribe/terms/en-icd10cm.txt: the words of the ICD-10-CM code titles
and inclusion terms, from the `simple-icd-10-cm` package (PyPI, MIT licence; the classification
itself is a U.S. government work of CDC/NCHS, in the public domain).

The self-heal loop keeps an English learned keyword only when it is one of these words (or a term
of an uploaded keywords file): see medscribe.domain.clinical_terms. Nothing is downloaded at run
time; this script runs at development time, and tests/unit/test_clinical_terms.py checks that the
vendored file is what it builds from the pinned package (requirements-dev.txt).

    python scripts/build_clinical_terms.py [--check]

Words: runs of letters, lower-cased, 3 letters or more. Chapter 20 (V00-Y99, external causes:
vehicles, places, sports) is left out: its titles describe circumstances, not clinical findings.
Proper nouns are left out too: a word written with a capital inside a title, or as a possessive
("Smith's fracture", "Graves' disease", "Parkinson's disease"), that is never written in lower case
elsewhere. They are eponyms and places, and many are also surnames, which a learned keyword must
never be; a clinic that wants one lists it in a keywords file.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import version
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "layers/medscribe/python/medscribe/terms/en-icd10cm.txt"
_WORD = re.compile(r"[A-Za-z]+(?:'s)?")
_EXTERNAL_CAUSES = ("V", "W", "X", "Y")


def words() -> list[str]:
    import simple_icd_10_cm as cm  # development-time only

    lower: set[str] = set()  # written in lower case somewhere
    initial: set[str] = set()  # capitalised only as a title's first word: a common word or a name
    proper: set[str] = set()  # capitalised inside a title, or a possessive
    for code in cm.get_all_codes(with_dots=False):
        if code.startswith(_EXTERNAL_CAUSES) or not cm.is_valid_item(code):
            continue
        for text in [cm.get_description(code), *cm.get_inclusion_term(code)]:
            for match in _WORD.finditer(text):
                word = match.group()
                possessive = word.endswith("'s") or text[match.end():match.end() + 1] == "'"
                word = word.removesuffix("'s")
                if word.islower() and not possessive:
                    lower.add(word)
                elif possessive or (match.start() > 0 and word[0].isupper()):
                    proper.add(word.lower())
                elif word[0].isupper():
                    initial.add(word.lower())
    return sorted(word for word in lower | (initial - proper) if len(word) >= 3)


def render() -> str:
    header = (f"# Words of ICD-10-CM code titles and inclusion terms (chapter 20, external causes, left out), "
              f"built by scripts/build_clinical_terms.py from simple-icd-10-cm {version('simple-icd-10-cm')}.\n"
              "# Source and licence: medscribe/terms/SOURCE.txt. One lower-case word a line.\n")
    return header + "".join(f"{word}\n" for word in words())


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run scripts/build_clinical_terms.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"{TARGET}: {text.count(chr(10)) - 2} words")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
