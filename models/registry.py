"""Resolve a service file's `model.ref` to a loaded model.

`equation:<id>` names a published equation in code; `artifact:<id>/<version>` names a trained
artifact under the model directory, verified against its sha256 manifest when loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .equations.ada_risk_test import AdaRiskTest
from .equations.cha2ds2_vasc import Cha2ds2Vasc
from .equations.ckd_epi import CkdEpi2021
from .equations.cockcroft_gault import CockcroftGault
from .equations.has_bled import HasBled
from .equations.news2 import News2
from .equations.pce import PooledCohortEquations
from .equations.qsofa import QSofa
from .protocol import Model

EQUATIONS: dict[str, type[Model]] = {
    "pce-goff-2013": PooledCohortEquations,
    "ckd-epi-2021": CkdEpi2021,
    "cockcroft-gault-1976": CockcroftGault,
    "cha2ds2-vasc": Cha2ds2Vasc,
    "has-bled": HasBled,
    "news2": News2,
    "qsofa": QSofa,
    "ada-risk-test": AdaRiskTest,
}


def make_loader(model_dir: str | Path) -> Callable[[str], object]:
    """A loader bound to `model_dir`; each model is loaded once per process and shared by services."""
    cache: dict[str, object] = {}

    def load(ref: str):
        if ref in cache:
            return cache[ref]
        kind, _, name = ref.partition(":")
        if kind == "equation":
            if name not in EQUATIONS:
                raise ValueError(f"unknown equation '{name}' (known: {', '.join(sorted(EQUATIONS))})")
            model = EQUATIONS[name]()
        elif kind == "artifact":
            from .artifacts import load_artifact  # torch is imported only when an artifact is used

            model = load_artifact(Path(model_dir), name)
        else:
            raise ValueError("model.ref must start with 'equation:' or 'artifact:'")
        cache[ref] = model
        return model

    return load
