"""medscribe's tests. Test material lives in the repository, under FIXTURES (tests/fixtures): one folder per
source, each with a SOURCE.txt (where it came from, what was copied) and its licence."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
