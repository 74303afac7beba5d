"""Claim checker vs a labelled set: does it flag the claims its cited lines do not support?

Input: tests/fixtures/claims/labelled.jsonl (see SOURCE.txt there): note claims, each with the 1-3
transcript lines it cites and a label, `supported`, `unsupported` or `contradicted`, written blind to
the checker's rules. Each checker gets (claim, lines) and returns a status in the same vocabulary.

"Flagged" (the positive class) is any status other than `supported`: precision, recall and F1 of
flagging, recall on the contradicted and on the unsupported items separately, the 3x3 confusion
matrix (label x status), the hit rate per (label, kind) (flagged for contradicted/unsupported items,
not flagged for supported ones) and the figures per language. Three checkers run in the same pass:
  verify_claim      medscribe.domain.evidence.verify_claim (skipped, with a note, when absent)
  citation-exists   the check the pipeline made before: a claim whose citations resolve passes, so
                    nothing is flagged
  content-overlap   flags a claim when fewer than half of its content words (lower-cased letters or
                    digits, English stop words dropped) appear among the cited lines' words
False positives and negatives of verify_claim are listed by id; --verbose adds claim, lines, reasons.

Reproduce: .venv/bin/python bench/claims.py [--verbose] [--set PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "claims" / "labelled.jsonl"
SUPPORTED, UNSUPPORTED, CONTRADICTED = "supported", "unsupported", "contradicted"
STATUSES = (SUPPORTED, UNSUPPORTED, CONTRADICTED)
FLAGGED = (UNSUPPORTED, CONTRADICTED)
_WORD = re.compile(r"[^\W_]+")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "did", "do", "does", "for", "from",
    "had", "has", "have", "he", "her", "his", "i", "in", "is", "it", "its", "me", "my", "no", "not", "of",
    "on", "or", "our", "she", "so", "that", "the", "their", "them", "then", "there", "they", "this", "to",
    "up", "was", "we", "were", "what", "when", "which", "who", "with", "you", "your", "about", "after",
    "all", "also", "any", "before", "more", "over", "some", "than", "very",
))


class HasStatus(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...


Checker = Callable[[str, Sequence[str]], "str | HasStatus"]


@dataclass(frozen=True)
class Item:
    id: str
    source: str
    lines: tuple[str, ...]
    claim: str
    label: str
    kind: str

    @property
    def language(self) -> str:
        return "ko" if _HANGUL.search(self.claim) else "en"


@dataclass(frozen=True)
class Outcome:
    item: Item
    status: str
    reasons: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return self.status != SUPPORTED

    @property
    def hit(self) -> bool:
        """The right side of the flag: flagged when the label is, not flagged when supported."""
        return self.flagged == (self.item.label != SUPPORTED)


@dataclass(frozen=True)
class Metrics:
    n: int
    true_pos: int
    false_pos: int
    false_neg: int
    true_neg: int
    precision: float | None  # None when nothing was flagged
    recall: float | None  # None when no item should be flagged
    f1: float | None
    recall_contradicted: float | None
    recall_unsupported: float | None
    confusion: dict[tuple[str, str], int]  # (label, status) -> count


def load_items(path: Path = LABELLED) -> list[Item]:
    items = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        data = json.loads(raw)
        if data["label"] not in STATUSES:
            raise ValueError(f"line {number}: label {data['label']!r} is not one of {STATUSES}")
        items.append(Item(id=data["id"], source=data["source"], lines=tuple(data["lines"]),
                          claim=data["claim"], label=data["label"], kind=data["kind"]))
    return items


def run(checker: Checker, items: Iterable[Item]) -> list[Outcome]:
    outcomes = []
    for item in items:
        verdict = checker(item.claim, item.lines)
        status, reasons = (verdict, ()) if isinstance(verdict, str) else (verdict.status, tuple(verdict.reasons))
        if status not in STATUSES:
            raise ValueError(f"{item.id}: the checker returned {status!r}, not one of {STATUSES}")
        outcomes.append(Outcome(item, status, reasons))
    return outcomes


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def metrics(outcomes: Sequence[Outcome]) -> Metrics:
    confusion = Counter((o.item.label, o.status) for o in outcomes)
    should = [o for o in outcomes if o.item.label != SUPPORTED]
    true_pos = sum(o.flagged for o in should)
    false_neg = len(should) - true_pos
    false_pos = sum(o.flagged for o in outcomes if o.item.label == SUPPORTED)
    true_neg = len(outcomes) - len(should) - false_pos
    precision = _ratio(true_pos, true_pos + false_pos)
    recall = _ratio(true_pos, len(should))
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall else None)

    def recall_of(label: str) -> float | None:
        of_label = [o for o in outcomes if o.item.label == label]
        return _ratio(sum(o.flagged for o in of_label), len(of_label))

    return Metrics(n=len(outcomes), true_pos=true_pos, false_pos=false_pos, false_neg=false_neg,
                   true_neg=true_neg, precision=precision, recall=recall, f1=f1,
                   recall_contradicted=recall_of(CONTRADICTED), recall_unsupported=recall_of(UNSUPPORTED),
                   confusion={(label, status): confusion.get((label, status), 0)
                              for label in STATUSES for status in STATUSES})


def hit_rates(outcomes: Sequence[Outcome]) -> dict[tuple[str, str], tuple[int, int]]:
    """(label, kind) -> (items, hits)."""
    table: dict[tuple[str, str], tuple[int, int]] = {}
    for o in outcomes:
        n, hits = table.get((o.item.label, o.item.kind), (0, 0))
        table[(o.item.label, o.item.kind)] = (n + 1, hits + o.hit)
    return dict(sorted(table.items(), key=lambda kv: (STATUSES.index(kv[0][0]), kv[0][1])))


def citation_exists(claim: str, lines: Sequence[str]) -> str:
    """Baseline: the pipeline's check before issue 14 (every citation resolves) flags nothing."""
    return SUPPORTED


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS and (len(w) > 1 or w.isdigit())]


def content_overlap(claim: str, lines: Sequence[str]) -> str:
    """Baseline: unsupported when fewer than half of the claim's content words are in the lines."""
    words = content_words(claim)
    present = set(content_words(" ".join(lines)))
    if not words:
        return SUPPORTED
    return SUPPORTED if 2 * sum(w in present for w in words) >= len(words) else UNSUPPORTED


def medscribe_checker() -> Checker | None:
    try:
        from medscribe.domain.evidence import verify_claim
    except ImportError as error:
        print(f"verify_claim not available ({error}): baselines only\n")
        return None
    checker: Checker = verify_claim
    return checker


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _print_summary(named: dict[str, list[Outcome]], seconds: dict[str, float]) -> None:
    print("| checker | flagged | precision | recall | F1 | recall contradicted | recall unsupported | ms/claim |")
    print("|---|---|---|---|---|---|---|---|")
    for name, outcomes in named.items():
        m = metrics(outcomes)
        print(f"| {name} | {m.true_pos + m.false_pos} | {_pct(m.precision)} | {_pct(m.recall)} | {_pct(m.f1)} "
              f"| {_pct(m.recall_contradicted)} | {_pct(m.recall_unsupported)} "
              f"| {1000 * seconds[name] / max(m.n, 1):.2f} |")
    print()


def _print_confusion(name: str, outcomes: Sequence[Outcome]) -> None:
    m = metrics(outcomes)
    print(f"{name}: confusion (rows: label, columns: status)")
    print("| label \\ status | " + " | ".join(STATUSES) + " |")
    print("|---|" + "---|" * len(STATUSES))
    for label in STATUSES:
        print(f"| {label} | " + " | ".join(str(m.confusion[(label, status)]) for status in STATUSES) + " |")
    print()


def _print_per_kind(named: dict[str, list[Outcome]]) -> None:
    names = list(named)
    tables = {name: hit_rates(outcomes) for name, outcomes in named.items()}
    print("hit rate per (label, kind): flagged if contradicted/unsupported, passed if supported")
    print("| label | kind | n | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for (label, kind), (n, _) in tables[names[0]].items():
        cells = " | ".join(_pct(tables[name][(label, kind)][1] / n) for name in names)
        print(f"| {label} | {kind} | {n} | {cells} |")
    print()


def _print_per_language(named: dict[str, list[Outcome]]) -> None:
    print("per language: precision / recall / F1 of flagging")
    print("| language | n | " + " | ".join(named) + " |")
    print("|---|---|" + "---|" * len(named))
    for language in ("en", "ko"):
        cells = []
        for outcomes in named.values():
            m = metrics([o for o in outcomes if o.item.language == language])
            cells.append(f"{_pct(m.precision)} / {_pct(m.recall)} / {_pct(m.f1)}")
        n = sum(1 for o in next(iter(named.values())) if o.item.language == language)
        print(f"| {language} | {n} | " + " | ".join(cells) + " |")
    print()


def _print_errors(outcomes: Sequence[Outcome], verbose: bool) -> None:
    false_pos = [o for o in outcomes if o.item.label == SUPPORTED and o.flagged]
    false_neg = [o for o in outcomes if o.item.label != SUPPORTED and not o.flagged]
    for title, rows in (("false positives (supported, flagged)", false_pos),
                        ("false negatives (contradicted/unsupported, passed)", false_neg)):
        print(f"verify_claim {title}: {len(rows)}")
        if not verbose:
            print("  " + (" ".join(o.item.id for o in rows) or "-"))
            continue
        for o in rows:
            print(f"  {o.item.id} [{o.item.label}/{o.item.kind} -> {o.status}] {o.item.claim}")
            for line in o.item.lines:
                print(f"      | {line}")
            if o.reasons:
                print(f"      reasons: {'; '.join(o.reasons)}")
    print()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--set", type=Path, default=LABELLED, help="labelled JSON lines file")
    parser.add_argument("--verbose", action="store_true", help="print the text of each false positive/negative")
    args = parser.parse_args(argv)
    items = load_items(args.set)
    labels = Counter(item.label for item in items)
    languages = Counter(item.language for item in items)
    print(f"{len(items)} labelled claims ({args.set.name}): "
          + ", ".join(f"{label} {labels[label]}" for label in STATUSES)
          + f"; English {languages['en']}, Korean {languages['ko']}\n")

    checkers: dict[str, Checker] = {}
    verify = medscribe_checker()
    if verify is not None:
        checkers["verify_claim"] = verify
    checkers["citation-exists"] = citation_exists
    checkers["content-overlap"] = content_overlap
    named: dict[str, list[Outcome]] = {}
    seconds: dict[str, float] = {}
    for name, checker in checkers.items():
        started = time.perf_counter()
        named[name] = run(checker, items)
        seconds[name] = time.perf_counter() - started

    _print_summary(named, seconds)
    for name, outcomes in named.items():
        _print_confusion(name, outcomes)
    _print_per_kind(named)
    _print_per_language(named)
    if "verify_claim" in named:
        _print_errors(named["verify_claim"], args.verbose)
    print("Reproduce: .venv/bin/python bench/claims.py [--verbose]")


if __name__ == "__main__":
    main()
