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
