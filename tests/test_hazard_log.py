"""The clinical safety case (docs/clinical-safety/) stays tied to the suite: every hazard has every field,
every control names at least one test, and every named test exists."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAFETY = ROOT / "docs" / "clinical-safety"
FIELDS = ("Service", "Hazard", "Cause", "Effect", "Severity", "Likelihood", "Controls", "Residual risk")
TEST_REF = re.compile(r"`(tests/[\w/.-]+\.py)::([\w:\[\]-]+)`")


def hazard_sections() -> list[tuple[str, str, str]]:
    """(file name, hazard id, section text) for every `## HAZ-…` section."""
    found = []
    for path in sorted((SAFETY / "hazards").glob("*.md")):
        parts = re.split(r"^## (HAZ-[A-Z0-9-]+)\b", path.read_text(encoding="utf-8"), flags=re.M)
        found += [(path.name, parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]
    return found


def functions_in(path: Path) -> set[str]:
    """`name` and `Class::name` of every test function in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{n.name}" for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def missing_tests(section: str) -> list[str]:
    missing = []
    for file, node in TEST_REF.findall(section):
        path = ROOT / file
        name = node.split("[", 1)[0]  # a parametrised id names its function
        if not path.is_file() or name not in functions_in(path):
            missing.append(f"{file}::{node}")
    return missing


def controls(section: str) -> list[str]:
    block = section.split("**Controls:**", 1)[1].split("- **Residual risk:**", 1)[0]
    return [c for c in re.split(r"^\s+- (?=C\d+\.)", block, flags=re.M)[1:]]


def test_the_log_has_hazards():
    ids = [h for _, h, _ in hazard_sections()]
    assert ids, "docs/clinical-safety/hazards/ holds no HAZ- entries"
    assert len(ids) == len(set(ids)), f"duplicate hazard ids: {sorted(h for h in ids if ids.count(h) > 1)}"


@pytest.mark.parametrize("file,hazard,section", hazard_sections(), ids=[h for _, h, _ in hazard_sections()])
def test_hazard_entry_is_complete_and_its_tests_exist(file, hazard, section):
    for name in FIELDS:
        assert f"- **{name}:**" in section, f"{file} {hazard}: no '{name}' field"
    assert re.search(r"\*\*Severity:\*\* [1-5] ", section), f"{file} {hazard}: severity must be 1-5 with its name"
    assert re.search(r"\*\*Likelihood:\*\* [1-5] ", section), f"{file} {hazard}: likelihood must be 1-5 with its name"
    cs = controls(section)
    assert cs, f"{file} {hazard}: no control (write them as '  - C1. …')"
    for c in cs:
        assert TEST_REF.search(c), f"{file} {hazard}: control '{c.strip()[:60]}…' names no test"
    assert not missing_tests(section), f"{file} {hazard}: named tests do not exist: {missing_tests(section)}"


def test_missing_test_is_detected(tmp_path):
    """The check can fail: a reference to a test that does not exist is reported."""
    section = "- **Controls:**\n  - C1. x. Tests: `tests/test_hazard_log.py::test_no_such_test`\n- **Residual risk:** 1"
    assert missing_tests(section) == ["tests/test_hazard_log.py::test_no_such_test"]
    assert missing_tests(section.replace("test_no_such_test", "test_the_log_has_hazards")) == []


# DCB0129 risk matrix, as the safety case's README states it: MATRIX[likelihood][severity].
MATRIX = {5: (3, 4, 4, 5, 5), 4: (2, 3, 3, 4, 5), 3: (2, 2, 3, 3, 4), 2: (1, 2, 2, 3, 4), 1: (1, 1, 2, 2, 3)}
RESIDUAL = re.compile(r"\*\*Residual risk:\*\* ([1-5]) × ([1-5]) → ([1-5]): (acceptable with review|acceptable|unacceptable)")


def residual_problem(section: str) -> str | None:
    """Why a residual risk line is wrong (arithmetic, or the word for the cell), or None."""
    m = RESIDUAL.search(section)
    if not m:
        return "residual risk must read 'S × L → R: acceptable|acceptable with review|unacceptable'"
    severity, likelihood, risk, word = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
    if MATRIX[likelihood][severity - 1] != risk:
        return f"{severity} × {likelihood} is {MATRIX[likelihood][severity - 1]} in the DCB0129 matrix, not {risk}"
    expected = "acceptable" if risk <= 2 else "acceptable with review" if risk == 3 else "unacceptable"
    return None if word == expected else f"risk {risk} is '{expected}', not '{word}'"


@pytest.mark.parametrize("file,hazard,section", hazard_sections(), ids=[h for _, h, _ in hazard_sections()])
def test_residual_risk_follows_the_matrix(file, hazard, section):
    assert residual_problem(section) is None, f"{file} {hazard}: {residual_problem(section)}"


def test_the_matrix_check_can_fail():
    assert residual_problem("- **Residual risk:** 4 × 1 → 3: acceptable with review.") is not None
    assert residual_problem("- **Residual risk:** 4 × 1 → 2: acceptable with review.") is not None
    assert residual_problem("- **Residual risk:** 5 × 1 → 3: acceptable with review.") is None


def test_the_readme_lists_every_hazard_file_and_names_only_hazards_that_exist():
    readme = (SAFETY / "README.md").read_text(encoding="utf-8")
    files = {p.name for p in (SAFETY / "hazards").glob("*.md")}
    assert not {f for f in files if f"hazards/{f}" not in readme}, "hazard files missing from the README's table"
    ids = {h for _, h, _ in hazard_sections()}
    named = set(re.findall(r"HAZ-[A-Z]+-\d+", readme))
    ranges = re.findall(r"(HAZ-[A-Z]+-)(\d+) to HAZ-[A-Z]+-(\d+)", readme)
    named |= {f"{p}{n:0{len(a)}d}" for p, a, b in ranges for n in range(int(a), int(b) + 1)}
    assert named and not named - ids, f"the README names hazards that do not exist: {sorted(named - ids)}"
    for finding in range(1, 13):
        assert re.search(rf"^\| {finding}\. .+\| HAZ-", readme, re.M), f"finding {finding} has no hazard in the README's table"


def test_the_threshold_audit_names_only_tests_that_exist():
    """docs/clinical-safety/thresholds.md lists each threshold of the service files with the scenarios on each side."""
    text = (SAFETY / "thresholds.md").read_text(encoding="utf-8")
    assert len(TEST_REF.findall(text)) > 50
    assert not missing_tests(text), missing_tests(text)
