"""Imports between the four top-level packages point one way: cds_service → hooks → {models, fhir_adapters}.

`models` never imports `fhir_adapters`: the type both share, `FeatureVector`, lives in the neutral
`models/feature_vector.py` (standard library only), the one module of `models` that `fhir_adapters`
may import. Every module is read as source (AST), so imports inside functions count too.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cds_service", "hooks", "models", "fhir_adapters")
NEUTRAL = "models.feature_vector"
# importer package -> packages it must never import
FORBIDDEN = {
    "models": {"fhir_adapters", "hooks", "cds_service"},
    "fhir_adapters": {"models", "hooks", "cds_service"},
    "hooks": {"cds_service"},
}
# importer package -> modules allowed despite FORBIDDEN
EXCEPTIONS = {"fhir_adapters": {NEUTRAL}}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` imports, at any depth (module level, functions, try/except), resolved to
    absolute dotted names; `from pkg import sub` counts as `pkg.sub` when `sub` is a module."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if _is_module(sub) else base)
    return found


def violations() -> list[str]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = module_name(path)
            for target in sorted(imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")):
                top = target.split(".")[0]
                allowed = any(target == e or target.startswith(e + ".") for e in EXCEPTIONS.get(package, ()))
                if top in FORBIDDEN.get(package, ()) and not allowed:
                    out.append(f"{path.relative_to(ROOT)} imports {target}")
    return out


def test_the_four_packages_import_one_way_only():
    assert violations() == []


@pytest.mark.parametrize("path", ["models/feature_vector.py", "models/__init__.py"])
def test_the_neutral_types_module_and_its_package_import_only_the_standard_library(path):
    """`fhir_adapters` imports `models.feature_vector`, which runs `models/__init__`: both stay free of
    third-party and project imports, so the leaf never pulls in torch or anything above it."""
    file = ROOT / path
    imported = imports_of(file.read_text(encoding="utf-8"), module_name(file), file.name == "__init__.py")
    assert {m.split(".")[0] for m in imported} <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_walker_sees_function_level_and_relative_imports():
    source = (
        "from . import resources as R\n"
        "from ..protocol import Prediction\n"
        "def late():\n"
        "    try:\n"
        "        from cds_service.runtime import get_runtime\n"
        "    except ImportError:\n"
        "        import hooks.loader\n"
        "    from models import feature_vector\n"
    )
    found = imports_of(source, "models.equations.points")
    assert {"models.equations", "models.protocol", "cds_service.runtime", "hooks.loader",
            "models.feature_vector"} <= found
    assert imports_of("from . import resources as R\n", "fhir_adapters.features") == {"fhir_adapters.resources"}
    assert imports_of("from .features import x\n", "fhir_adapters", is_package=True) == {"fhir_adapters.features"}
