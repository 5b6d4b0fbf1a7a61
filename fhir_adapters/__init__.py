"""FHIR R4 access and feature extraction. The leaf of the import graph: no Flask, no torch."""

# Feature kinds defined outside features.py register themselves with @extractor when imported.
from . import kinds_labs, kinds_orders, kinds_vitals  # noqa: E402,F401  (issue #5)
from . import kinds_encounter  # noqa: E402,F401  (issue #4: length of stay, first vitals, this stay's diagnosis)
from . import kinds_window  # noqa: E402,F401  (issue #3: count, any, min, max, mean, trend, bmi)
from . import kinds_history  # noqa: E402,F401  (issue #12: condition onset, family history)
from . import kinds_population, observation_sets  # noqa: E402,F401  (issue 12: who a service is for; one observation set)
