"""FHIR R4 access and feature extraction. The leaf of the import graph: no Flask, no torch."""

# Feature kinds defined outside features.py register themselves with @extractor when imported, so importing
# fhir_adapters makes every kind a service file may name available.
from . import (  # noqa: F401
    kinds_encounter,  # length of stay, first vitals, this stay's diagnosis
    kinds_history,  # condition onset, family history
    kinds_labs,
    kinds_orders,
    kinds_population,  # who a service is for
    kinds_vitals,
    kinds_window,  # count, any, min, max, mean, trend, bmi
    observation_sets,  # the one home of each observation set
)
