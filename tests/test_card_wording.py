"""Unavailable is not absent, in the source: a card claims that the record holds nothing ("not
recorded", "none on record", "no … recorded") only through the shared helpers of `cds_service/builders/base.py`
(`missing_text`, `missing_state(s)`, `absence_text`), which say "not available to the service" when the data
could not be read. A builder that writes such a text itself, or a service file text that no builder routes
through `absence_text`, is reported here; the simulator scenarios (tests/clinical/test_simulator_patients.py)
check the wording the cards actually carry."""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILDERS = ROOT / "cds_service" / "builders"
HOOKS = ROOT / "hooks"
ABSENCE = re.compile(r"\bnot recorded\b|\bnever on record\b|\bnot on record\b|\bnone (present )?on record\b"
                     r"|\bno\b[^.;|]{0,60}\b(recorded|on record)\b", re.I)
HELPERS = {"absence_text", "missing_text", "missing_state", "missing_states"}
# Service-file texts that claim an absence, each emitted by its builder through `absence_text` (or, for the
# default note, describing a Patient resource that was read: a feature's default is used only for a value absent
# from data that was obtained).
ROUTED = {
    ("af-anticoagulation", "data.summaries.low_stroke"), ("af-anticoagulation", "data.summaries.aspirin"),
    ("af-anticoagulation", "data.advice.aspirin_no_indication"),
    ("ascvd-10y-risk", "data.summaries.unconfirmed_diabetes"), ("ascvd-10y-risk", "data.advice.missing_ldl"),
    ("ascvd-10y-risk", "features.black.default_note"),
    ("deterioration-scores", "data.none_summary"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def unrouted_literals(source: str) -> list[str]:
    """String literals claiming an absence that are not inside a call to one of the shared helpers."""
    tree = ast.parse(source)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and ABSENCE.search(node.value)) or id(node) in skip:
            continue
        up, routed = parents.get(id(node)), False
        while up is not None and not routed:
            routed = isinstance(up, ast.Call) and getattr(up.func, "id", getattr(up.func, "attr", "")) in HELPERS
            up = parents.get(id(up))
        if not routed:
            found.append(node.value)
    return found


def _texts(value, path: str = ""):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _texts(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            name = v.get("name") if isinstance(v, dict) else None
            yield from _texts(v, f"{path}.{name}" if name else path)


def test_builders_claim_an_absence_only_through_the_shared_helpers():
    offenders = {p.name: unrouted_literals(p.read_text(encoding="utf-8")) for p in BUILDERS.glob("*.py") if p.name != "base.py"}
    assert not {k: v for k, v in offenders.items() if v}


def test_service_file_texts_claiming_an_absence_are_routed_through_absence_text():
    found = set()
    for path in HOOKS.glob("*.toml"):
        service = tomllib.loads(path.read_text(encoding="utf-8"))
        found |= {(service["id"], where) for where, text in _texts(service)
                  if ABSENCE.search(text) and not where.startswith(("description", "usage_requirements"))}
    assert found == ROUTED, (sorted(found - ROUTED), sorted(ROUTED - found))  # a stale entry is reported too


def test_the_check_can_fail():
    """A literal written by hand is reported; the same literal given to a helper is not."""
    assert unrouted_literals('x = "creatinine not recorded"') == ["creatinine not recorded"]
    assert unrouted_literals('x = absence_text(ctx, ["a"], "no stent on record")') == []
    assert unrouted_literals('def f():\n    """Never says not recorded by itself."""\n') == []
