"""Offline note engine vs clinician-written reference notes: ROUGE-L F1 beside a first-N-lines baseline.

Inputs (tests/fixtures/dialogues): every PriMock57 consultation (derived_dialogues/<id>.txt with the
clinician's note in notes/<id>.json, field "note") and every ACI-BENCH encounter (*.subset.csv rows:
dialogue -> note; the same encounter appears once per transcript variant: asr, asrcorr, humantrans).

For each encounter: the transcript becomes numbered lines (`medscribe.domain.dialogue`), the offline
engine (`medscribe.domain.offline_notes`, through `domain.note_writing.write_note`) writes the
note, and the note's text (its claims, one per line, without section headings) is scored against
the reference with ROUGE-L F1: the longest common subsequence of lower-cased alphanumeric tokens
(as rouge-score tokenises, without stemming), F = 2PR/(P+R). The baseline is the transcript's first
lines, cut to the same number of words as the note, so both get the same length budget. Because the
offline notes are much longer than the references (which caps precision), a second pair of columns
scores both cut to the reference's length ("@ref": the note's first words in template section order
vs the transcript's first words). Also shown: whether every citation resolves, and the wall time
to parse the transcript and write the note.

Reproduce: .venv/bin/python bench/notes.py [--template NAME] (a catalogue name or alias; default hp)

With --aci: the ACI-BENCH full-note table instead (ROUGE-1/2/L/Lsum on the benchmark's train and valid splits,
the engine beside the whole-transcript, first-12-doctor-turns and longest-doctor-turn baselines; see
bench/aci_notes.py). Reproduce: .venv/bin/python bench/notes.py --aci [--split valid|train|both] [--template VISIT]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aci_notes

from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.note_drafts import check_citations
from medscribe.domain.note_writing import write_note
from medscribe.domain.notes import TEMPLATE_NAMES, Note
from medscribe.domain.offline_notes import OfflineNoteEngine

DIALOGUES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "dialogues"
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Encounter:
    dataset: str
    name: str
    transcript: str
    reference: str


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Row:
    encounter: Encounter
    lines: int
    note_words: int
    reference_words: int
    note: Score
    baseline: Score
    note_at_ref: Score
    baseline_at_ref: Score
    citations_ok: bool
    seconds: float


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence length, O(len(a) * len(b)) time, O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            current[j] = previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1])
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> Score:
    cand, ref = tokens(candidate), tokens(reference)
    if not cand or not ref:
        return Score(0.0, 0.0, 0.0)
    common = lcs_length(cand, ref)
    precision, recall = common / len(cand), common / len(ref)
    f1 = 0.0 if common == 0 else 2 * precision * recall / (precision + recall)
    return Score(precision, recall, f1)


def note_text(note: Note) -> str:
    return "\n".join(claim.text for _, claim in note.claims())


def first_words(texts: Sequence[str], words: int) -> str:
    """The first `words` words of the texts, in order."""
    taken: list[str] = []
    for text in texts:
        taken.extend(text.split())
        if len(taken) >= words:
            break
    return " ".join(taken[:words])


def encounters() -> Iterator[Encounter]:
    primock = DIALOGUES / "primock57"
    for path in sorted((primock / "derived_dialogues").glob("*.txt")):
        reference = json.loads((primock / "notes" / f"{path.stem}.json").read_text(encoding="utf-8"))["note"]
        yield Encounter("primock57", path.stem, path.read_text(encoding="utf-8"), reference)
    for path in sorted((DIALOGUES / "aci-bench").glob("*.subset.csv")):
        if "metadata" in path.name:
            continue
        variant = path.name.removesuffix(".subset.csv").removeprefix("valid_")
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                yield Encounter("aci-bench", f"{variant}/{row['id']}", row["dialogue"], row["note"])


def score(encounter: Encounter, template: str) -> Row:
    began = time.perf_counter()
    lines = dialogue_lines(encounter.transcript)
    note = write_note(lines, template=template, engine=OfflineNoteEngine())
    seconds = time.perf_counter() - began
    text = note_text(note)
    words, reference_words = len(text.split()), len(encounter.reference.split())
    transcript = [line.text for line in lines]
    return Row(
        encounter=encounter, lines=len(lines), note_words=words, reference_words=reference_words,
        note=rouge_l(text, encounter.reference), baseline=rouge_l(first_words(transcript, words), encounter.reference),
        note_at_ref=rouge_l(first_words([text], reference_words), encounter.reference),
        baseline_at_ref=rouge_l(first_words(transcript, reference_words), encounter.reference),
        citations_ok=not check_citations(note.sections, [line.n for line in lines]), seconds=seconds,
    )


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def aci_main(template: str, split: str) -> int:
    results = [aci_notes.run_split(name, template) for name in (("valid", "train") if split == "both" else (split,))]
    for line in aci_notes.report(results, template):
        print(line)
    print(f"\nreproduce: .venv/bin/python bench/notes.py --aci --split {split} --template {template}")
    return 0 if aci_notes.all_ok(results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", choices=TEMPLATE_NAMES, default=None,
                        help="default: hp (VISIT with --aci)")
    parser.add_argument("--aci", action="store_true", help="the ACI-BENCH full-note ROUGE table")
    parser.add_argument("--split", choices=("valid", "train", "both"), default="both", help="with --aci")
    args = parser.parse_args()
    if args.aci:
        return aci_main(args.template or "VISIT", args.split)
    args.template = args.template or "hp"
    rows = [score(encounter, args.template) for encounter in encounters()]
    header = (f"{'dataset':<10} {'encounter':<30} {'lines':>5} {'note w':>6} {'ref w':>6} "
              f"{'note P':>6} {'note R':>6} {'note F1':>7} {'base F1':>7} {'@ref n':>7} {'@ref b':>7} "
              f"{'cites':>5} {'ms':>7}")
    print(f"offline note engine ({args.template}) vs reference notes: ROUGE-L F1 (LCS). base = the transcript's "
          "first N words (N = note length); @ref n / @ref b = note / transcript cut to the reference's length")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row.encounter.dataset:<10} {row.encounter.name:<30} {row.lines:>5} {row.note_words:>6} "
              f"{row.reference_words:>6} {row.note.precision:>6.3f} {row.note.recall:>6.3f} {row.note.f1:>7.3f} "
              f"{row.baseline.f1:>7.3f} {row.note_at_ref.f1:>7.3f} {row.baseline_at_ref.f1:>7.3f} "
              f"{'ok' if row.citations_ok else 'BAD':>5} {row.seconds * 1000:>7.1f}")
    print("-" * len(header))
    for dataset in [*sorted({r.encounter.dataset for r in rows}, reverse=True), "all"]:
        subset = [r for r in rows if dataset in ("all", r.encounter.dataset)]
        scores = [(r.note.precision, r.note.recall, r.note.f1, r.baseline.f1, r.note_at_ref.f1, r.baseline_at_ref.f1)
                  for r in subset]
        p, r_, f1, base, at_ref, base_at_ref = (_mean(column) for column in zip(*scores, strict=True))
        print(f"{'mean':<10} {dataset + f' ({len(subset)})':<30} {_mean([r.lines for r in subset]):>5.0f} "
              f"{_mean([r.note_words for r in subset]):>6.0f} {_mean([r.reference_words for r in subset]):>6.0f} "
              f"{p:>6.3f} {r_:>6.3f} {f1:>7.3f} {base:>7.3f} {at_ref:>7.3f} {base_at_ref:>7.3f} "
              f"{sum(r.citations_ok for r in subset):>5} {_mean([r.seconds * 1000 for r in subset]):>7.1f}")
    print(f"\nreproduce: .venv/bin/python bench/notes.py --template {args.template}")
    return 0 if all(r.citations_ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
