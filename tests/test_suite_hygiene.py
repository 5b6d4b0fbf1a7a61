"""The suite reads nothing outside this repository, so a clone with nothing beside it passes.

Every path a test module builds from `__file__` (`Path(__file__).resolve().parent…`, `.parents[n]`,
`/ "..."`, `os.path.dirname/join`, and names bound to such paths) is worked out and must stay inside
the repository root; no test file may name a `shared` folder or the absolute directory the
repository happens to sit in. What the suite needs from elsewhere is copied into `tests/fixtures/`
with its source and licence (e.g. `fixtures/spec-examples/SOURCES.md`).
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CODE_SUFFIXES = {".py", ".js", ".sh", ".toml", ".cfg", ".ini"}
# The team's `shared` folder beside the repository: `../shared`, `/work/shared/…`, or `/ "shared"` in Python.
SHARED = re.compile(r"(?:\.\./|/)shared(?:/|[\"'])|/\s*[\"']shared[\"']|[\"']shared[\"']\s*/")


def suite_files() -> list[Path]:
    """Every code file of the suite but this one (which holds the forbidden forms as test data)."""
    return sorted(p for p in TESTS.rglob("*") if p.is_file() and p.suffix in CODE_SUFFIXES
                  and "node_modules" not in p.parts and p.resolve() != Path(__file__).resolve())


class _PathEvaluator:
    """Works out, without running it, each path expression of a module that starts at `__file__`."""

    def __init__(self, file: Path):
        self.file = file
        self.names: dict[str, str] = {}

    def value(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return str(self.file) if node.id == "__file__" else self.names.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            base = self.value(node.value)
            return os.path.dirname(base) if base else None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            base = self.value(node.value.value)
            index = node.slice.value if isinstance(node.slice, ast.Constant) else None
            if base is None or not isinstance(index, int):
                return None
            for _ in range(index + 1):
                base = os.path.dirname(base)
            return base
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            base = self.value(node.left)
            if base is not None and isinstance(node.right, ast.Constant) and isinstance(node.right.value, str):
                return os.path.normpath(os.path.join(base, node.right.value))
            return base
        if isinstance(node, ast.Call):
            return self._call(node)
        return None

    def _call(self, node: ast.Call) -> str | None:
        func = ast.unparse(node.func)
        args = [self.value(a) for a in node.args]
        if func in {"Path", "pathlib.Path", "os.path.abspath", "os.path.realpath", "os.path.normpath"} and args:
            return args[0]
        if func == "os.path.dirname" and args and args[0]:
            return os.path.dirname(args[0])
        if func == "os.path.join" and args and args[0]:
            parts = [a.value for a in node.args[1:] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            return os.path.normpath(os.path.join(args[0], *parts))
        if isinstance(node.func, ast.Attribute) and node.func.attr in {"resolve", "absolute"}:
            return self.value(node.func.value)
        return None

    def escapes(self, tree: ast.AST) -> list[str]:
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                path = self.value(node.value)
                if path is not None:
                    self.names[node.targets[0].id] = path
        for node in ast.walk(tree):
            path = self.value(node) if isinstance(node, (ast.Attribute, ast.Subscript, ast.BinOp, ast.Call)) else None
            if path is not None and not _inside(path, ROOT):
                found.append(f"line {node.lineno}: {ast.unparse(node)} -> {path}")
        return found


def _inside(path: str, root: Path) -> bool:
    return os.path.commonpath([os.path.normpath(path), str(root)]) == str(root)


def outside_references(path: Path, text: str) -> list[str]:
    """What in this file points outside the repository (empty when nothing does)."""
    found = [f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}" for m in SHARED.finditer(text)]
    here = str(ROOT.parent).rstrip("/") + "/"
    # The absolute directory this checkout sits in; not a system directory a test may name on purpose
    # (a clone in /tmp would flag every "/tmp/…" example).
    if here not in ("/", "/tmp/", "/var/tmp/") and here in text:
        found.append(f"names {here!r}")
    if path.suffix == ".py":
        found += _PathEvaluator(path).escapes(ast.parse(text, filename=str(path)))
    return found


def test_no_test_file_reads_outside_the_repository():
    files = suite_files()
    assert len(files) > 50 and TESTS / "conftest.py" in files  # the scan really covers the suite
    offenders = {str(p.relative_to(ROOT)): found for p in files
                 if (found := outside_references(p, p.read_text(encoding="utf-8")))}
    assert offenders == {}


@pytest.mark.parametrize("source", [
    'from pathlib import Path\nSPEC = Path(__file__).resolve().parent.parent.parent / "shared" / "spec"\n',
    'from pathlib import Path\nROOT = Path(__file__).resolve().parent.parent\nOUT = ROOT.parent / "x"\n',
    'from pathlib import Path\nUP = Path(__file__).parents[1] / ".." / "x"\n',
    'import os\nUP = os.path.join(os.path.dirname(__file__), "..", "..", "x")\n',
    'DATA = "../shared/spec/examples"\n',
    '# read at start: /work/shared/fhir/notes.md\nimport json\n',
])
def test_the_check_finds_each_way_out(source):
    assert outside_references(TESTS / "test_example.py", source)


def test_the_check_reads_scripts_too():
    assert outside_references(TESTS / "server.js", "// See /work/shared/fhir/notes.md\n")


@pytest.mark.parametrize("source", [
    'from pathlib import Path\nROOT = Path(__file__).resolve().parent.parent\nHOOKS = ROOT / "hooks"\n',
    'from pathlib import Path\nFIX = Path(__file__).parent / "fixtures" / "spec-examples"\n',
    'BAD_INPUT = "pima-diabetes/../../etc"  # a traversal the code under test must refuse\n',
])
def test_the_check_accepts_paths_inside_the_repository(source):
    assert outside_references(TESTS / "test_example.py", source) == []


def test_every_test_has_a_time_limit(pytestconfig):
    """pytest-timeout's default from pyproject.toml: a hung test fails instead of stalling the suite."""
    assert 0 < float(pytestconfig.getini("timeout")) <= 300
