"""What every model takes: a `FeatureVector` of named values with their provenance.

A neutral module (standard library only): `fhir_adapters` builds feature vectors from FHIR data and
`models` reads them, so neither has to import the other's machinery for the type (architecture 2.2:
`models` never imports `fhir_adapters`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a value came from: a resource reference and the clinical date, if any."""

    reference: str
    date: str | None = None


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    label: str
    value: float | None
    unit: str | None = None
    evidence: tuple[Evidence, ...] = ()
    note: str | None = None  # why it is missing, or which default was used and why
    imputed: bool = False
    # A value was recorded but none could be used (not a finite number, implausible, unit not
    # convertible): the input is invalid, which a card words differently from "not recorded".
    invalid: bool = False

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def date(self) -> str | None:
        return self.evidence[0].date if self.evidence else None

    def number(self) -> float:
        """The value of a feature already known to be present (`missing` checked first): ValueError otherwise."""
        if self.value is None:
            raise ValueError(f"{self.name} has no value")
        return self.value


@dataclass(frozen=True, slots=True)
class FeatureVector:
    features: tuple[Feature, ...]
    as_of: datetime

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def values(self, names: Sequence[str]) -> list[float | None]:
        return [self[n].value for n in names]

    def missing(self, names: Iterable[str] | None = None) -> tuple[Feature, ...]:
        wanted = set(names) if names is not None else None
        return tuple(f for f in self.features if f.missing and (wanted is None or f.name in wanted))

    def require(self, names: Sequence[str]) -> None:
        """A model's guard before predicting: `ValueError` naming every missing input, in `names` order."""
        missing = [n for n in names if self[n].missing]
        if missing:
            raise ValueError(f"missing inputs: {', '.join(missing)}")

    def number(self, name: str) -> float:
        """The value of an input the model cannot do without (checked by `require` first, so a missing one
        is a programming error): `ValueError` naming it."""
        value = self[name].value
        if value is None:
            raise ValueError(f"missing input: {name}")
        return float(value)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in self.features:
            item: dict[str, Any] = {"value": f.value} if f.value is not None else {"missing": True}
            if f.unit:
                item["unit"] = f.unit
            if f.date:
                item["date"] = f.date
            if f.evidence:
                item["evidence"] = [e.reference for e in f.evidence]
            if f.note:
                item["note"] = f.note
            if f.imputed:
                item["imputed"] = True
            if f.invalid:
                item["invalid"] = True
            out[f.name] = item
        return out
