"""Care gaps at appointment-book (issue #5, item 5).

For a patient with one of `data.conditions`, each `[[data.gaps]]` test whose latest result will be
older than its interval on the visit date (or that was never done) is due: one info card lists them
before the visit, with a draft ServiceRequest per test (SUGG-1, ACT-1; `selectionBehavior` any).
The visit date is the earliest `start` among the booked appointments, read from a Bundle or a bare
array (HOOK-AB-4); without one, the gaps are judged at the time of booking.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from fhir_adapters import resources as R
from fhir_adapters.orders import context_resources
from hooks.definitions import ServiceDefinition
from hooks.loader import check_summary

from cds_service.builders.base import BuildContext, card, order_suggestion
from cds_service.builders.equation_cards import check_secondary, extension, feature_def, require_feature
from cds_service.builders.markdown import literal

LAB_CATEGORY = "http://snomed.info/sct|108252007"  # Laboratory procedure
SUMMARY_FIELDS = ("date", "count", "tests")


@dataclass(frozen=True, slots=True)
class Gap:
    name: str
    label: str
    feature: str
    intervals: Mapping[str, int]
    code: str
    display: str
    source: str


def parse_gaps(service: ServiceDefinition) -> tuple[Gap, ...]:
    conditions = service.data.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise ValueError("data.conditions must list the condition features the card is for")
    for c in conditions:
        require_feature(service, c, "data.conditions")
    out = []
    for i, g in enumerate(service.data.get("gaps") or ()):
        where = f"data.gaps[{i}]"
        if not isinstance(g, Mapping) or not all(isinstance(g.get(k), str) and g[k] for k in ("name", "label", "source")):
            raise ValueError(f"{where} needs name, label and source")
        feature = require_feature(service, g.get("feature"), f"{where}.feature")
        if feature_def(service, feature).kind != "days_since_latest":
            raise ValueError(f"{where}.feature must be a feature of kind 'days_since_latest'")
        intervals = g.get("intervals")
        if not isinstance(intervals, Mapping) or not intervals:
            raise ValueError(f"{where}.intervals must map conditions to days")
        for cond, days in intervals.items():
            if cond not in conditions or not isinstance(days, int) or days <= 0:
                raise ValueError(f"{where}.intervals.{cond}: must be one of data.conditions with a positive whole number of days")
        order = g.get("order")
        if not (isinstance(order, Mapping) and "|" in str(order.get("code", "")) and order.get("display")):
            raise ValueError(f"{where}.order needs code = 'system|code' and a display")
        out.append(Gap(g["name"], g["label"], feature, dict(intervals), order["code"], order["display"], g["source"]))
    if not out:
        raise ValueError("data.gaps must declare at least one monitoring test")
    return tuple(out)


def check(service: ServiceDefinition) -> set[str]:
    check_secondary(service)  # intervals, not models
    gaps = parse_gaps(service)
    longest = {"date": "2026-12-31", "count": str(len(gaps)), "tests": ", ".join(g.label for g in gaps)}
    check_summary(service.path, "data.summary", service.data.get("summary"), longest)
    return set(service.data["conditions"]) | {g.feature for g in gaps}


def visit_time(context: Mapping[str, Any]) -> tuple[datetime | None, str | None]:
    """The earliest start among the appointments being booked, with its reference."""
    starts = []
    for a in context_resources(context.get("appointments")):
        if a.get("resourceType") == "Appointment" and a.get("status") not in ("cancelled", "entered-in-error"):
            when = R.parse_datetime(a.get("start"))
            if when is not None:
                starts.append((when, R.reference_of(a)))
    return min(starts) if starts else (None, None)


def build(ctx: BuildContext) -> list:
    f, data = ctx.features, ctx.service.data
    present = [c for c in data["conditions"] if (f[c].value or 0) >= 0.5]
    if not present:
        return []
    now = f.as_of
    visit, appointment = visit_time(ctx.request.context)
    if visit is not None and visit < now:  # a start in the past cannot be prepared for: judge at booking time
        visit, appointment = None, None
    lead = max(0.0, (visit - now).total_seconds() / 86400) if visit else 0.0
    due = []
    for gap in parse_gaps(ctx.service):
        applicable = {c: d for c, d in gap.intervals.items() if c in present}
        if not applicable:
            continue
        interval = min(applicable.values())
        because = [f[c].label.lower() for c, d in applicable.items() if d == interval]
        days = f[gap.feature].value
        if days is None or days + lead > interval:
            due.append((gap, days, interval, because))
    if not due:
        return []
    date = (visit or now).date().isoformat()
    summary = data["summary"].format(date=date, count=len(due), tests=", ".join(g.label for g, *_ in due))
    when = f"the visit on **{date}**" + (f" ({literal(appointment)})" if appointment else "") if visit else "this booking"
    lines = [f"Monitoring for {', '.join(f[c].label.lower() for c in present)} that will be overdue by {when}; "
             "ordering now lets the results be ready for it.", "",
             "| Test | Last result | Interval | For | Source |", "| --- | --- | --- | --- | --- |"]
    for gap, days, interval, because in due:
        feat = f[gap.feature]
        last = "never on record" if days is None else f"{literal(feat.date)} ({days:.0f} days ago)"
        lines.append(f"| {gap.label} | {last} | {interval} days | {', '.join(because)} | {gap.source} |")
    for key, reason in ctx.unavailable.items():
        lines.append(f"\nData unavailable for '{key}': {literal(reason)}.")
    suggestions = [order_suggestion(ctx, f"order-{gap.name}", f"Order {gap.display}", gap.code, gap.display, category=LAB_CATEGORY)
                   for gap, *_ in due]
    names = set(present) | {g.feature for g, *_ in due}
    return [card(ctx, "care-gaps", summary, "info", "\n".join(lines), suggestions=suggestions, selection_behavior="any",
                 extension=extension(ctx, names))]
