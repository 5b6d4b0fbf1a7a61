"""Comments say why, or cite the specification or guideline line they enforce; they do not narrate which
issue brought a line in. An issue number in code goes stale as soon as the issue closes, and git log
already keeps that history (architecture habit: comments that say why)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("cds_service", "fhir_adapters", "models", "hooks", "tests", "bench", "scripts")
SUFFIXES = {".py", ".toml"}
# "issue #7", "issue 12", "Issues 3", "issue-17", "(#12)", "#13": an issue number however it is written.
HISTORY = re.compile(r"\bissues?[\s-]*#?\d+|\(#\d+\)|(?<![\w&#/])#1?\d\b", re.IGNORECASE)


def checked_files() -> list[Path]:
    files = [ROOT / "pyproject.toml"]
    for folder in FOLDERS:
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in SUFFIXES
                  and "node_modules" not in p.parts and ".venv" not in p.parts]
    # This file holds the forbidden forms as test data.
    return sorted(p for p in files if p.resolve() != Path(__file__).resolve())


def history_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for n, line in enumerate(text.splitlines(), 1) if HISTORY.search(line)]


def test_no_code_or_service_file_narrates_issue_numbers():
    found = [hit for path in checked_files() for hit in history_lines(path)]
    assert not found, "say why or cite the spec/guideline instead of the issue:\n" + "\n".join(found)


@pytest.mark.parametrize("line", [
    "# Optional response cache (issue #8).",
    '"""Issue 12 item 2: results that could not be obtained."""',
    "x = 1  # see issues 3",
    "# measured on the issue-17 branch",
    "# the co-medication card (#12)",
    "# moved here by #13",
])
def test_the_check_finds_each_form(line):
    assert HISTORY.search(line)


@pytest.mark.parametrize("line", [
    'COLOUR = "#1f77b4"',
    "# SEC-10: no token in any log record",
    "# OperationOutcome.issue[0].code is 'timeout'",
    "# RCP NEWS2 2017 chart 3",
    "url = 'https://example.org/page#12'",
])
def test_the_check_leaves_other_text_alone(line):
    assert not HISTORY.search(line)
