"""hooks.toml_text: the line of every key of a TOML file (tomllib gives none), and "did you mean"."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hooks import SERVICES_DIR
from hooks.toml_text import did_you_mean, key_lines

ROOT = Path(__file__).resolve().parent.parent


def paths(doc, prefix=()):
    """Every key and array-element path of a parsed document."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from paths(value, prefix + (key,))


@pytest.mark.parametrize("path", sorted(SERVICES_DIR.glob("*.toml")) + sorted((ROOT / "config").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_key_of_the_bundled_files_is_placed_on_the_line_that_writes_it(path):
    text = path.read_text(encoding="utf-8")
    lines, found = text.splitlines(), key_lines(text)
    expected = list(paths(tomllib.loads(text)))
    assert set(found) == set(expected)
    for p in expected:
        if isinstance(p[-1], str):
            assert p[-1] in lines[found[p] - 1], (p, found[p])


TRICKY = '''# a comment with [brackets] and key = "value"
title = "a # not a comment"   # a real one
"quoted key" = 1
dotted.inner = "x"
multi = """
line = 2
[not.a.table]
"""
literal = \'\'\'C:\\path\\\'\'\'

[[rules]]
min_score = 0.2
reasons = [
  { system = "s", code = "a" },
  { system = "s", code = "b" },  # an element per line
]

[rules.detail]
text = 'a "literal" with = and #'

[[rules]]
min_scor = 0.1
nested = [[1, 2], [3]]

[table."with dots.in".name]
key = true
'''


def test_tricky_toml_structures():
    found = key_lines(TRICKY)
    assert set(found) == set(paths(tomllib.loads(TRICKY)))
    assert found[("title",)] == 2 and found[("quoted key",)] == 3 and found[("dotted", "inner")] == 4
    assert found[("literal",)] == 9  # after a multi-line string holding key-like lines and a header
    assert found[("rules",)] == 11 and found[("rules", 0)] == 11 and found[("rules", 0, "min_score")] == 12
    assert found[("rules", 0, "reasons", 1)] == 15 and found[("rules", 0, "reasons", 1, "code")] == 15
    assert found[("rules", 0, "detail", "text")] == 19  # a sub-table of the latest [[rules]]
    assert found[("rules", 1)] == 21 and found[("rules", 1, "min_scor")] == 22
    assert found[("table", "with dots.in", "name", "key")] == 26


def test_invalid_toml_gives_what_was_placed_and_never_raises():
    assert key_lines('a = 1\nb = [1, 2\n') == {("a",): 1, ("b",): 2, ("b", 0): 2, ("b", 1): 2}
    assert key_lines("[[[x") == {}


def test_did_you_mean():
    known = ["min_score", "indicator", "summary", "suggestions", "advice"]
    assert did_you_mean("min_scor", known) == "min_score"
    assert did_you_mean("suggestion", known) == "suggestions"
    assert did_you_mean("window", ["kind", "codes", "lookback_days"]) is None
