"""Offline entity extractor vs a hand-labelled set: precision, recall and F1, negation and ICD-10-CM codes.

Input: tests/fixtures/entities/labelled.json (see SOURCE.txt there): whole encounters (their numbered
lines) and every entity an annotator marked in them (category, type, text, line, characters, negated,
ICD-10-CM code where one clearly applies). Two splits: "dev" (labelled before the extractor existed, but
its term lexicon was then written by the same person, so these figures flatter it) and "held-out"
(labelled after the extractor was frozen, never used to change it: the figures to quote).

The extractor (medscribe.domain.offline_entities.extract) reads each encounter's lines. An entity
matches a label when one of its spans is on the label's line and overlaps the label's characters and
the category is the same (one-to-one, in order). Printed: precision / recall / F1 per split and language and
per category; on matched entities, negation accuracy (and precision / recall of NEGATION); on matched
conditions, ICD-10-CM code precision (emitted codes equal to the label's code; a code where the label
has none counts as wrong) and recall (labelled codes reproduced); false positives and negatives with
--verbose.

Reproduce: .venv/bin/python bench/entities.py [--verbose] [--set PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medscribe.domain.clinical_entities import Entity
from medscribe.domain.offline_entities import extract
from medscribe.domain.transcript_lines import Line

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "entities" / "labelled.json"
COMMAND = ".venv/bin/python bench/entities.py [--verbose]"
CATEGORIES = ("MEDICAL_CONDITION", "MEDICATION", "TEST_TREATMENT_PROCEDURE", "ANATOMY")


@dataclass(frozen=True)
class Label:
    encounter: str
    line: int
    begin: int
    end: int
    text: str
    category: str
    negated: bool
    icd10cm: str | None


def _overlaps(entity: Entity, label: Label) -> bool:
    return entity.category == label.category and any(
        s.line == label.line and s.begin < label.end and label.begin < s.end for s in entity.spans)


def match(entities: Sequence[Entity], labels: Sequence[Label]) -> tuple[list[tuple[Label, Entity]], list[Label],
                                                                           list[Entity]]:
    """One-to-one matches (labels in order, first unused overlapping entity), missed labels, extra entities."""
    used: set[str] = set()
    pairs: list[tuple[Label, Entity]] = []
    missed: list[Label] = []
    for label in labels:
        entity = next((e for e in entities if e.id not in used and _overlaps(e, label)), None)
        if entity is None:
            missed.append(label)
        else:
            used.add(entity.id)
            pairs.append((label, entity))
    return pairs, missed, [e for e in entities if e.id not in used and e.category in CATEGORIES]


def _ratio(part: int, whole: int) -> str:
    return "n/a" if whole == 0 else f"{100 * part / whole:.1f}%"


def _f1(tp: int, fp: int, fn: int) -> str:
    return "n/a" if tp == 0 else f"{100 * 2 * tp / (2 * tp + fp + fn):.1f}%"


@dataclass
class Result:
    """One encounter's matches."""

    encounter: str
    split: str
    language: str
    pairs: list[tuple[Label, Entity]]
    missed: list[Label]
    extra: list[Entity]


def evaluate(encounter: dict[str, Any]) -> Result:
    lines = [Line(n=int(r["n"]), speaker=str(r["speaker"]), start=0.0, end=0.0, text=str(r["text"]),
                  confidence=None) for r in encounter["lines"]]
    labels = [Label(encounter["id"], int(e["line"]), int(e["begin"]), int(e["end"]), str(e["text"]),
                    str(e["category"]), bool(e["negated"]), e["icd10cm"]) for e in encounter["entities"]]
    found = extract(encounter["id"], lines, encounter["language"])
    pairs, missed, extra = match(found.entities, labels)
    return Result(encounter["id"], encounter["split"], encounter["language"], pairs, missed, extra)


def _row(name: str, results: Sequence[Result], wanted: Sequence[str] = CATEGORIES) -> str:
    tp = sum(label.category in wanted for r in results for label, _ in r.pairs)
    fn = sum(label.category in wanted for r in results for label in r.missed)
    fp = sum(entity.category in wanted for r in results for entity in r.extra)
    return (f"| {name} | {tp + fn} | {tp + fp} | {tp} | {_ratio(tp, tp + fp)} | {_ratio(tp, tp + fn)} | "
            f"{_f1(tp, fp, fn)} |")


def _traits_and_codes(name: str, results: Sequence[Result]) -> None:
    pairs = [pair for r in results for pair in r.pairs]
    right = sum(label.negated == entity.negated for label, entity in pairs)
    neg_tp = sum(label.negated and entity.negated for label, entity in pairs)
    neg_fp = sum(entity.negated and not label.negated for label, entity in pairs)
    neg_fn = sum(label.negated and not entity.negated for label, entity in pairs)
    conditions = [(label, entity) for label, entity in pairs if label.category == "MEDICAL_CONDITION"]
    coded = [(label, entity) for label, entity in conditions if entity.codes]
    correct = sum(label.icd10cm in {c.code for c in entity.codes} for label, entity in coded)
    labelled = [(label, entity) for label, entity in conditions if label.icd10cm]
    reproduced = sum(label.icd10cm in {c.code for c in entity.codes} for label, entity in labelled)
    print(f"| {name} | {len(pairs)} | {_ratio(right, len(pairs))} | {_ratio(neg_tp, neg_tp + neg_fp)} | "
          f"{_ratio(neg_tp, neg_tp + neg_fn)} ({neg_tp}/{neg_tp + neg_fn}) | {len(conditions)} | "
          f"{_ratio(correct, len(coded))} ({correct}/{len(coded)}) | "
          f"{_ratio(reproduced, len(labelled))} ({reproduced}/{len(labelled)}) |")


def _errors(results: Sequence[Result]) -> None:
    for r in results:
        for label in r.missed:
            print(f"  missed   [{r.split}] {r.encounter}:{label.line} {label.category} {label.text!r}")
        for entity in r.extra:
            print(f"  extra    [{r.split}] {r.encounter}:{entity.lines[0]} {entity.category} {entity.text!r}")
        for label, entity in r.pairs:
            if label.negated != entity.negated:
                print(f"  negation [{r.split}] {r.encounter}:{label.line} {label.text!r} labelled "
                      f"{'negated' if label.negated else 'not negated'}")
            codes = [c.code for c in entity.codes]
            if codes and label.icd10cm not in codes:
                print(f"  code     [{r.split}] {r.encounter}:{label.line} {label.text!r} labelled {label.icd10cm}, "
                      f"found {codes}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--set", type=Path, default=LABELLED, help="labelled JSON file")
    parser.add_argument("--verbose", action="store_true",
                        help="list false positives and negatives, negation and code errors")
    args = parser.parse_args(argv)
    print(f"Reproduce: {COMMAND}\n")
    data: dict[str, Any] = json.loads(args.set.read_text(encoding="utf-8"))
    started = time.perf_counter()
    results = [evaluate(encounter) for encounter in data["encounters"]]
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for encounter in data["encounters"]:
        evaluate(encounter)
    warm = time.perf_counter() - started
    n_lines = sum(len(encounter["lines"]) for encounter in data["encounters"])
    n_labels = sum(len(encounter["entities"]) for encounter in data["encounters"])
    print(f"{n_labels} labelled entities in {len(results)} encounters ({n_lines} lines, {args.set.name}); "
          f"extraction {1000 * warm / n_lines:.2f} ms per line warm, {cold:.1f} s for the first pass (it loads "
          "spaCy, negspacy and simple-icd-10-cm)\n")

    groups = [("dev", [r for r in results if r.split == "dev"]),
              ("held-out", [r for r in results if r.split == "held-out"]),
              ("held-out English", [r for r in results if r.split == "held-out" and not r.language.startswith("ko")]),
              ("held-out Korean", [r for r in results if r.split == "held-out" and r.language.startswith("ko")]),
              ("all", results)]
    print("Entities (same line, overlapping text, same category)")
    print("| set | labelled | found | matched | precision | recall | F1 |")
    print("|---|---|---|---|---|---|---|")
    for name, group in groups:
        print(_row(name, group))
    print()
    print("Per category, held-out")
    print("| category | labelled | found | matched | precision | recall | F1 |")
    print("|---|---|---|---|---|---|---|")
    held_out = groups[1][1]
    for category in CATEGORIES:
        print(_row(category, held_out, (category,)))
    print()
    print("Negation on matched entities; ICD-10-CM on matched conditions (precision: emitted codes equal to the "
          "label's, a code where the label has none counts as wrong; recall: labelled codes emitted)")
    print("| set | matched | negation accuracy | NEGATION precision | NEGATION recall | conditions | "
          "ICD-10-CM precision | ICD-10-CM recall |")
    print("|---|---|---|---|---|---|---|---|")
    for name, group in groups:
        _traits_and_codes(name, group)
    print()
    if args.verbose:
        _errors(results)
        print()
    print(f"Reproduce: {COMMAND}")


if __name__ == "__main__":
    main()
