"""Where the suite's files are. Everything a test reads is inside the repository (test_suite_hygiene)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TESTS = ROOT / "tests"
FIXTURES = TESTS / "fixtures"
SPEC_EXAMPLES = FIXTURES / "spec-examples"  # copies of the CDS Hooks examples: origin and licence in SOURCES.md
