"""Offline entity extractor vs a hand-labelled set: precision, recall and F1, negation and ICD-10-CM codes.

Input: tests/fixtures/entities/labelled.json (see SOURCE.txt there): whole encounters (their numbered
lines) and every entity an annotator marked in them (category, type, text, line, characters, negated,
ICD-10-CM code where one clearly applies), labelled before the extractor was run on them.

The extractor (medscribe.domain.offline_entities.extract) reads each encounter's lines. An entity
matches a label when one of its spans is on the label's line and overlaps the label's characters and
the category is the same (one-to-one, in order). Printed: precision / recall / F1 overall and per
category; on matched entities, negation accuracy (and precision / recall of NEGATION); on matched
conditions, ICD-10-CM code precision (emitted codes equal to the label's code; a code where the label
has none counts as wrong) and recall (labelled codes reproduced); false positives and negatives with
--verbose.

Reproduce: .venv/bin/python bench/entities.py [--verbose] [--set PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--set", type=Path, default=LABELLED, help="labelled JSON file")
    parser.add_argument("--verbose", action="store_true", help="list false positives and false negatives")
    args = parser.parse_args(argv)
    print(f"Reproduce: {COMMAND}\n")
    data: dict[str, Any] = json.loads(args.set.read_text(encoding="utf-8"))
    pairs: list[tuple[Label, Entity]] = []
    missed: list[Label] = []
    extra: list[tuple[str, Entity]] = []
    started = time.perf_counter()
    n_lines = 0
    for encounter in data["encounters"]:
        lines = [Line(n=int(r["n"]), speaker=str(r["speaker"]), start=0.0, end=0.0,
                     text=str(r["text"]), confidence=None)
                 for r in encounter["lines"]]
        n_lines += len(lines)
        labels = [Label(encounter["id"], int(e["line"]), int(e["begin"]), int(e["end"]), str(e["text"]),
                        str(e["category"]), bool(e["negated"]), e["icd10cm"]) for e in encounter["entities"]]
        found = extract(encounter["id"], lines, encounter.get("language", "en-US"))
        p, m, x = match(found.entities, labels)
        pairs += p
        missed += m
        extra += [(encounter["id"], e) for e in x]
    seconds = time.perf_counter() - started
    n_labels = len(pairs) + len(missed)
    print(f"{n_labels} labelled entities in {len(data['encounters'])} encounters ({n_lines} lines, {args.set.name}); "
          f"extraction {seconds:.2f} s (first call loads spaCy and simple-icd-10-cm)\n")

    print("| category | labelled | found | matched | precision | recall | F1 |")
    print("|---|---|---|---|---|---|---|")
    for category in (*CATEGORIES, "all"):
        wanted = set(CATEGORIES) if category == "all" else {category}
        tp = sum(label.category in wanted for label, _ in pairs)
        fn = sum(label.category in wanted for label in missed)
        fp = sum(entity.category in wanted for _, entity in extra)
        print(f"| {category} | {tp + fn} | {tp + fp} | {tp} | {_ratio(tp, tp + fp)} | {_ratio(tp, tp + fn)} | "
              f"{_f1(tp, fp, fn)} |")
    print()

    right = sum(label.negated == entity.negated for label, entity in pairs)
    neg_tp = sum(label.negated and entity.negated for label, entity in pairs)
    neg_fp = sum(entity.negated and not label.negated for label, entity in pairs)
    neg_fn = sum(label.negated and not entity.negated for label, entity in pairs)
    print(f"negation on {len(pairs)} matched entities: accuracy {_ratio(right, len(pairs))}; NEGATION precision "
          f"{_ratio(neg_tp, neg_tp + neg_fp)}, recall {_ratio(neg_tp, neg_tp + neg_fn)} "
          f"({neg_tp + neg_fn} labelled negated)")

    conditions = [(label, entity) for label, entity in pairs if label.category == "MEDICAL_CONDITION"]
    coded = [(label, entity) for label, entity in conditions if any(c.system == "ICD-10-CM" for c in entity.codes)]
    correct = sum(label.icd10cm in {c.code for c in entity.codes} for label, entity in coded)
    labelled_codes = [(label, entity) for label, entity in conditions if label.icd10cm]
    reproduced = sum(label.icd10cm in {c.code for c in entity.codes} for label, entity in labelled_codes)
    print(f"ICD-10-CM on {len(conditions)} matched conditions: precision {_ratio(correct, len(coded))} "
          f"({correct}/{len(coded)} emitted codes equal the label's), recall "
          f"{_ratio(reproduced, len(labelled_codes))} ({reproduced}/{len(labelled_codes)} labelled codes emitted)")
    by_kind = Counter(label.category for label in missed)
    print(f"missed by category: {dict(sorted(by_kind.items()))}; extra by category: "
          f"{dict(sorted(Counter(e.category for _, e in extra).items()))}\n")
    if args.verbose:
        for label in missed:
            print(f"  missed  {label.encounter}:{label.line} {label.category} {label.text!r}")
        for encounter_id, entity in extra:
            print(f"  extra   {encounter_id}:{entity.lines[0]} {entity.category} {entity.text!r}")
        for label, entity in pairs:
            if label.negated != entity.negated:
                print(f"  negation {label.encounter}:{label.line} {label.text!r} label={label.negated} "
                      f"found={entity.negated}")
        for label, entity in coded:
            if label.icd10cm not in {c.code for c in entity.codes}:
                print(f"  code    {label.encounter}:{label.line} {label.text!r} label={label.icd10cm} "
                      f"found={[c.code for c in entity.codes]}")
    print(f"Reproduce: {COMMAND}")


if __name__ == "__main__":
    main()
