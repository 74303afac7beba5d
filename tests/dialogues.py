"""The dialogues in tests/fixtures/dialogues (see each source's SOURCE.txt) as (name, text) pairs, for tests over
all of them."""

from __future__ import annotations

import csv

from tests import FIXTURES

DIALOGUES = FIXTURES / "dialogues"


def shared_dialogues() -> list[tuple[str, str]]:
    """Fareez OSCE transcripts, PriMock57 derived dialogues and the ACI-BENCH `dialogue` cells."""
    found = [(f"fareez/{p.stem}", p.read_text(encoding="utf-8"))
             for p in sorted((DIALOGUES / "fareez-osce").glob("[A-Z][A-Z][A-Z]0*.txt"))]
    found += [(f"primock57/{p.stem}", p.read_text(encoding="utf-8"))
              for p in sorted((DIALOGUES / "primock57" / "derived_dialogues").glob("*.txt"))]
    for path in sorted((DIALOGUES / "aci-bench").glob("*.subset.csv")):
        if "metadata" in path.name:
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            found += [(f"aci-bench/{path.name.removesuffix('.subset.csv')}/{row['id']}", row["dialogue"])
                      for row in csv.DictReader(handle)]
    return found
