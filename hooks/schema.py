"""The keys each table of a service file may hold.

They are checked before any value is read, so that a misspelt key (`min_scor`) is reported as what it is —
an unknown key, with its line and the known key it was probably meant to be — rather than as the error its
absence causes further on (a rule without `min_score` counts as 0 and breaks the ordering of the rules).
`[data]` is the builder's own table and is checked by the builder.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from fhir_adapters.features import KIND_PARAMS

TOP_LEVEL = frozenset({"id", "hook", "title", "description", "usage_requirements", "builder", "model", "prefetch",
                       "observation_sets", "features", "population", "cards", "suggestions", "data", "alerts"})
MODEL = frozenset({"ref", "secondary"})
PREFETCH_ENTRY = frozenset({"query", "on_error"})
OBSERVATION_SET = frozenset({"source", "codes", "tolerance_minutes", "lookback_days", "panel_codes"})
FEATURE_COMMON = frozenset({"name", "kind", "source", "label", "unit", "default", "default_note", "order"})
FEATURE_ORDER = frozenset({"code", "display", "name"})
POPULATION = frozenset({"feature", "min", "max", "equals", "label", "not_applicable", "instead", "if_unknown", "unknown",
                        "on_not_applicable", "only_if", "scope"})
CARDS = frozenset({"source_label", "source_url", "rules", "on_missing", "on_not_applicable", "top_factors", "override_reasons"})
CARD_RULE = frozenset({"min_score", "indicator", "summary", "suggestions", "advice"})
OVERRIDE_REASON = frozenset({"system", "code", "display"})
SUGGESTION = frozenset({"label", "resource_type", "code", "display", "name", "text", "category", "unless", "recommended",
                        "ingredient", "dose"})
SUGGESTION_DOSE = frozenset({"value", "unit", "times_per_day", "route"})
ALERTS = frozenset({"mode", "history", "repeat_window_s", "silent_info", "snooze_reasons", "snooze_days"})  # hooks.alert_policy

Path = tuple[str | int, ...]

# Keys a service file no longer takes, with where their concern lives now (said in the error instead of a guess).
RETIRED = {"digits": "displayed values are rounded by the one rounding table, FIXED_DIGITS beside unit_text in "
                     "fhir_adapters/units.py"}


def unknown_keys(raw: Mapping[str, Any]) -> Iterator[tuple[Path, frozenset[str]]]:
    """(path of the unknown key, the keys allowed there) for every key no table of a service file defines.
    A table of the wrong type is left to the loader, which names what it must be."""
    yield from _check(raw, (), TOP_LEVEL)
    yield from _check(raw.get("model"), ("model",), MODEL)
    prefetch = raw.get("prefetch")
    if isinstance(prefetch, dict):
        for key, entry in prefetch.items():
            yield from _check(entry, ("prefetch", key), PREFETCH_ENTRY)
    sets = raw.get("observation_sets")
    if isinstance(sets, dict):
        for name, spec in sets.items():
            yield from _check(spec, ("observation_sets", name), OBSERVATION_SET)
    for i, feature in _items(raw.get("features")):
        kind = feature.get("kind")
        if kind in KIND_PARAMS:  # an unknown kind is reported as such by the loader
            yield from _check(feature, ("features", i), FEATURE_COMMON | KIND_PARAMS[kind])
        yield from _check(feature.get("order"), ("features", i, "order"), FEATURE_ORDER)
    for i, criterion in _items(raw.get("population")):
        yield from _check(criterion, ("population", i), POPULATION)
    cards = raw.get("cards")
    yield from _check(cards, ("cards",), CARDS)
    if isinstance(cards, dict):
        for i, rule in _items(cards.get("rules")):
            yield from _check(rule, ("cards", "rules", i), CARD_RULE)
        for i, reason in _items(cards.get("override_reasons")):
            yield from _check(reason, ("cards", "override_reasons", i), OVERRIDE_REASON)
    suggestions = raw.get("suggestions")
    if isinstance(suggestions, dict):
        for name, suggestion in suggestions.items():
            yield from _check(suggestion, ("suggestions", name), SUGGESTION)
            if isinstance(suggestion, dict):
                yield from _check(suggestion.get("dose"), ("suggestions", name, "dose"), SUGGESTION_DOSE)
    yield from _check(raw.get("alerts"), ("alerts",), ALERTS)


def _check(table: Any, path: Path, known: frozenset[str]) -> Iterator[tuple[Path, frozenset[str]]]:
    if isinstance(table, dict):
        for key in table:
            if key not in known:
                yield path + (key,), known


def _items(value: Any) -> Iterator[tuple[int, dict]]:
    if isinstance(value, list):
        yield from ((i, v) for i, v in enumerate(value) if isinstance(v, dict))
