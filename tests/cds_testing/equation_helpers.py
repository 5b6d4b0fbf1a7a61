"""A FeatureVector built from plain values, for equation tests (no FHIR needed)."""
from __future__ import annotations

from datetime import datetime, timezone

from models.feature_vector import Feature, FeatureVector


def vector(**values) -> FeatureVector:
    return FeatureVector(tuple(Feature(k, k, None if v is None else float(v)) for k, v in values.items()),
                         datetime(2026, 6, 1, tzinfo=timezone.utc))
