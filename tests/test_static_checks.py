"""ruff and mypy with the project's configuration (`[tool.ruff]`, `[tool.mypy]` in pyproject.toml), run by
the README's test command: imports sorted, no pyflakes finding, no private name imported from another
package, and the type-checked packages free of type errors. A failure prints the tools' own output.

Both are in the `test` extra. mypy keeps its incremental cache in `.mypy_cache/` (ignored by git), so a
second run re-checks only what changed."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cds_testing.optional import require_module

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
INSTALLED_BY = "the test extra: pip install -e '.[test]'"


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    require_module(tool, INSTALLED_BY)
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=110)


@pytest.mark.timeout(120)
def test_ruff_finds_nothing():
    result = run("ruff", "check", "--output-format", "concise")
    assert result.returncode == 0, f"ruff check:\n{result.stdout}{result.stderr}"


@pytest.mark.timeout(120)
def test_mypy_finds_nothing():
    result = run("mypy")
    assert result.returncode == 0, f"mypy:\n{result.stdout}{result.stderr}"


# ---- the configuration catches what it is for -----------------------------------------------------------


def test_the_ruff_configuration_reports_private_imports_unsorted_imports_and_unused_names(tmp_path):
    source = tmp_path / "planted.py"
    source.write_text(textwrap.dedent("""\
        import sys
        import json
        from hooks.loader import _str
        from cds_service.config import Settings
        """))
    result = run("ruff", "check", "--no-cache", "--config", str(PYPROJECT), "--output-format", "json", str(source))
    assert result.returncode == 1, result.stderr
    assert {"I001", "PLC2701", "F401"} <= {finding["code"] for finding in json.loads(result.stdout)}, result.stdout


def test_the_mypy_configuration_reports_a_type_error(tmp_path):
    source = tmp_path / "planted.py"
    source.write_text("def half(x: float) -> float:\n    return x / 2\n\n\nhalf('one')\n")
    result = run("mypy", "--config-file", str(PYPROJECT), "--cache-dir", str(tmp_path / "cache"), str(source))
    assert result.returncode == 1 and "arg-type" in result.stdout, result.stdout
