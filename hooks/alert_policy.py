"""`[alerts]` of a service file: shadow mode, repeat windows, silent info cards and snoozes (see
`definitions.AlertPolicy`). Checked at start-up; an error names the file and the field.

    [alerts]
    mode = "live"                                          # or "shadow": computed and recorded, no cards returned
    history = "renal-dosing"                               # shared with the services naming it (default: own id)
    repeat_window_s = { info = 604800, warning = 3600 }    # an exact repeat within the window is not shown again
    silent_info = ["risk"]                                 # info cards of these kinds that suggest nothing: not shown
    snooze_reasons = ["http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes|action-completed"]
    snooze_days = 90
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection
from types import MappingProxyType
from typing import Any

from .catalog import INDICATORS
from .definitions import AlertPolicy
from .schema import ALERTS

MODES = ("live", "shadow")
_HISTORY = re.compile(r"^[a-z0-9][a-z0-9\-]{1,62}$")  # a service id (hooks.loader)
MAX_WINDOW_S = 365 * 86400  # a year: longer is a typo (minutes or milliseconds written as seconds)
MAX_SNOOZE_DAYS = 365


def parse_alerts(raw: Any, *, override_reasons: Collection[tuple[str, str, str]], kinds: Collection[str] | None,
                 builder: str, err: Callable[[str, str], Exception]) -> AlertPolicy:
    """The service's `AlertPolicy` (everything shown, live, when the table is absent). `kinds`: the card
    kinds the service's builder can produce (None: not checked)."""
    if raw is None:
        return AlertPolicy()
    if not isinstance(raw, dict):  # its keys were checked with every other table's (hooks.schema)
        raise err("alerts", f"must be a table with any of: {', '.join(sorted(ALERTS))}")
    mode = raw.get("mode", "live")
    if mode not in MODES:
        raise err("alerts.mode", "must be 'live' (cards are returned) or 'shadow' (computed and recorded, never returned)")
    history = raw.get("history", "")
    if not isinstance(history, str) or (history and not _HISTORY.match(history)):
        raise err("alerts.history", "must be a service id (lower-case letters, digits and '-') whose card history this service shares")
    return AlertPolicy(mode, history, _windows(raw.get("repeat_window_s", {}), err),
                       _silent(raw.get("silent_info", []), kinds, builder, err), *_snooze(raw, override_reasons, err))


def _windows(raw: Any, err) -> MappingProxyType:
    if not isinstance(raw, dict):
        raise err("alerts.repeat_window_s", "must be a table of indicator = seconds, e.g. { info = 604800, warning = 3600 }")
    for indicator, seconds in raw.items():
        if indicator not in INDICATORS:
            raise err("alerts.repeat_window_s", f"unknown indicator '{indicator}' (known: {', '.join(INDICATORS)})")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= MAX_WINDOW_S:
            raise err(f"alerts.repeat_window_s.{indicator}",
                      f"must be a whole number of seconds from 0 (always shown) to {MAX_WINDOW_S} (a year)")
    return MappingProxyType(dict(raw))


def _silent(raw: Any, kinds: Collection[str] | None, builder: str, err) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(k, str) and k for k in raw):
        raise err("alerts.silent_info", "must be a list of card kinds, e.g. [\"risk\"]")
    for kind in raw:
        if kinds is not None and kind not in kinds:
            raise err("alerts.silent_info", f"'{kind}' is not a card kind of builder '{builder}' (known: {', '.join(sorted(kinds))})")
    return tuple(raw)


def _snooze(raw: dict, override_reasons: Collection[tuple[str, str, str]], err) -> tuple[tuple[str, ...], float]:
    reasons, days = raw.get("snooze_reasons", []), raw.get("snooze_days")
    declared = [f"{system}|{code}" for system, code, _ in override_reasons]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise err("alerts.snooze_reasons", "must be a list of override reasons written 'system|code'")
    for reason in reasons:
        if reason not in declared:
            raise err("alerts.snooze_reasons", f"'{reason}' is not one of cards.override_reasons "
                                               f"({', '.join(declared) or 'none declared'}): the EHR offers only those")
    if not reasons:
        if days is not None:
            raise err("alerts.snooze_days", "has no effect without snooze_reasons")
        return (), 0.0
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_SNOOZE_DAYS:
        raise err("alerts.snooze_days", f"must be a number of days above 0 and at most {MAX_SNOOZE_DAYS} when snooze_reasons are declared")
    return tuple(reasons), float(days)
