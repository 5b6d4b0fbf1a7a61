"""Care gaps at appointment-book: monitoring due by the visit date, rule by rule from the guidelines.

Diabetes (ADA Standards of Care in Diabetes—2025):
- HbA1c (section 6): at least twice a year when meeting the goal with stable therapy; at least quarterly when
  the latest HbA1c is at or above the goal or a glucose-lowering drug was ordered, changed or stopped in the
  last quarter;
- eGFR and urine albumin/creatinine (11.1a, Fig. 11.1): yearly in type 2 diabetes from diagnosis and in type 1
  diabetes of 5 years or more (onset not recorded: the card says so and applies the yearly rule); a diabetes
  whose type is not recorded is treated like type 2 (from diagnosis);
- lipid profile (section 10): at diagnosis / the initial evaluation; on lipid-lowering therapy 4-12 weeks after
  starting it, then yearly; without it every 5 years under 40 (at 40 and over no repeat interval is set).
Hypertension without diabetes (2025 AHA/ACC high blood pressure guideline, 3.1.2, Table 6): eGFR, urine
albumin/creatinine and a lipid profile at diagnosis; the guideline sets no repeat interval, so only a test
that was never done is due.

Who it is for is declared in the service file (`[[population]]`): adults with diabetes or hypertension. A test
whose results could not be obtained (the `labs` prefetch) is a row "could not be checked — not available to the
service", never "due" and never "not recorded", and gets no order.

One info card lists the tests due, each with the rule and its source, and a draft ServiceRequest per test
(SUGG-1, ACT-1; `selectionBehavior` any). The visit date is the earliest `start` among the booked
appointments, read from a Bundle or a bare array (HOOK-AB-4); without one, the gaps are judged at booking.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Mapping

from cds_service.builders.base import (
    BuildContext,
    applicability_cards,
    applicability_notes,
    card,
    lab_order,
    missing_text,
    number,
    unavailable_sources,
    unavailable_text,
)
from cds_service.builders.equation_cards import check_secondary, extension, feature_def, require_feature
from cds_service.builders.markdown import literal
from fhir_adapters import resources as R
from fhir_adapters.orders import context_resources
from fhir_adapters.units import value_text
from hooks.definitions import OrderDef, ServiceDefinition
from hooks.loader import check_summary

SUMMARY_FIELDS = ("date", "count", "tests")
RULES = ("hba1c", "kidney", "uacr", "lipids")
NUMBERS = ("hba1c_goal", "hba1c_at_goal_days", "hba1c_quarterly_days", "kidney_days", "type1_kidney_years",
           "lipid_on_therapy_days", "lipid_after_start_days", "lipid_every_5y_days", "lipid_5y_under_age")
SOURCES = ("hba1c_goal", "hba1c_quarterly", "kidney", "lipid_start", "lipid_initiation", "lipid_on_therapy", "lipid_baseline",
           "lipid_5y", "hypertension")
# The features the rules read, besides each test's `days_since_latest` feature.
RULE_FEATURES = ("age", "diabetes", "type1", "type2", "type1_years", "hypertension", "hba1c", "lipid_therapy",
                 "glucose_therapy_change")


@dataclass(frozen=True, slots=True)
class Gap:
    name: str
    label: str
    feature: str
    order: OrderDef


@dataclass(frozen=True, slots=True)
class Rule:
    """How often a test is due for this patient: `interval` days (None: only when never done), why (Markdown:
    record text in it is escaped), and the source. `since` (ISO date): a result before it does not count (e.g. the start of lipid-lowering therapy),
    `not_before` (ISO date): not due before it."""

    interval: int | None
    why: str
    source: str
    since: str | None = None
    not_before: str | None = None


def parse_gaps(service: ServiceDefinition) -> tuple[Gap, ...]:
    out = []
    for i, g in enumerate(service.data.get("gaps") or ()):
        where = f"data.gaps[{i}]"
        if not isinstance(g, Mapping) or not all(isinstance(g.get(k), str) and g[k] for k in ("name", "label")):
            raise ValueError(f"{where} needs name and label")
        if g["name"] not in RULES:
            raise ValueError(f"{where}.name: '{g['name']}' has no rule (known: {', '.join(RULES)})")
        feature = require_feature(service, g.get("feature"), f"{where}.feature")
        if feature_def(service, feature).kind != "days_since_latest":
            raise ValueError(f"{where}.feature must be a feature of kind 'days_since_latest'")
        out.append(Gap(g["name"], g["label"], feature, OrderDef.parse(g.get("order"), f"{where}.order")))
    if not out:
        raise ValueError("data.gaps must declare at least one monitoring test")
    return tuple(out)


def check(service: ServiceDefinition) -> set[str]:
    check_secondary(service)  # intervals, not models
    data = service.data
    if list(data.get("conditions") or ()) != ["diabetes", "hypertension"]:
        raise ValueError("data.conditions must be [\"diabetes\", \"hypertension\"]: the rules are written for these")
    for name in NUMBERS:
        if not isinstance(data.get(name), (int, float)) or data[name] <= 0:
            raise ValueError(f"data.{name} must be a positive number")
    for name in SOURCES:
        if not isinstance((data.get("sources") or {}).get(name), str):
            raise ValueError(f"data.sources.{name} is required (every rule cites its source)")
    for name in RULE_FEATURES:
        require_feature(service, name, "the care-gap rules")
    gaps = parse_gaps(service)
    longest = {"date": "2026-12-31", "count": str(len(gaps)), "tests": ", ".join(g.label for g in gaps)}
    check_summary(service.path, "data.summary", data.get("summary"), longest)
    check_summary(service.path, "data.unchecked_summary", data.get("unchecked_summary"), longest)
    return set(RULE_FEATURES) | {g.feature for g in gaps}


def visit_time(context: Mapping[str, Any]) -> tuple[datetime | None, str | None]:
    """The earliest start among the appointments being booked, with its reference."""
    starts = []
    for a in context_resources(context.get("appointments")):
        if a.get("resourceType") == "Appointment" and a.get("status") not in ("cancelled", "entered-in-error"):
            when = R.parse_datetime(a.get("start"))
            if when is not None:
                starts.append((when, R.reference_of(a)))
    return min(starts) if starts else (None, None)


def _flag(ctx: BuildContext, name: str) -> bool:
    return (ctx.features[name].value or 0) >= 0.5


def _meds_unavailable(ctx: BuildContext) -> bool:
    return bool(unavailable_sources(ctx, "lipid_therapy"))


def _hba1c(ctx: BuildContext) -> Rule | None:
    f, data, src = ctx.features, ctx.service.data, ctx.service.data["sources"]
    if not _flag(ctx, "diabetes"):
        return None
    reasons = []
    a1c = f["hba1c"]
    if a1c.value is not None and a1c.value >= data["hba1c_goal"]:
        reasons.append(f"latest HbA1c {value_text(a1c.value, 'hba1c')}% ({literal(a1c.date)}) is not below the goal of {value_text(data['hba1c_goal'], 'hba1c')}%")
    if _flag(ctx, "glucose_therapy_change"):
        change = f["glucose_therapy_change"]
        reasons.append(f"glucose-lowering therapy ordered or changed on {literal(change.date)}")
    if reasons:
        return Rule(int(data["hba1c_quarterly_days"]), "; ".join(reasons), src["hba1c_quarterly"])
    why = f"latest HbA1c {value_text(a1c.value, 'hba1c')}% below the goal of {value_text(data['hba1c_goal'], 'hba1c')}%" if a1c.value is not None else "diabetes"
    if _meds_unavailable(ctx):
        why += "; therapy changes could not be checked (medications not available to the service)"
    return Rule(int(data["hba1c_at_goal_days"]), why, src["hba1c_goal"])


def _kidney(ctx: BuildContext) -> Rule | None:
    f, data, src = ctx.features, ctx.service.data, ctx.service.data["sources"]
    if not _flag(ctx, "diabetes"):
        return Rule(None, "hypertension: test at diagnosis", src["hypertension"]) if _flag(ctx, "hypertension") else None
    if _flag(ctx, "type2"):
        return Rule(int(data["kidney_days"]), "type 2 diabetes", src["kidney"])
    if not _flag(ctx, "type1"):
        return Rule(int(data["kidney_days"]), "diabetes of unrecorded type: yearly from diagnosis, as in type 2", src["kidney"])
    years, limit = f["type1_years"].value, data["type1_kidney_years"]
    if years is None:
        onset = missing_text(ctx, "type1_years", short=True)
        return Rule(int(data["kidney_days"]), f"type 1 diabetes, onset {onset}: yearly from {number(limit)} years after "
                                              "diagnosis, applied because the duration is unknown", src["kidney"])
    if years < limit:
        return None  # not yet: the card says so when it lists other tests
    return Rule(int(data["kidney_days"]), f"type 1 diabetes for {number(years)} years", src["kidney"])


def _lipids(ctx: BuildContext) -> Rule | None:
    f, data, src = ctx.features, ctx.service.data, ctx.service.data["sources"]
    if not _flag(ctx, "diabetes"):
        return Rule(None, "hypertension: test at diagnosis", src["hypertension"]) if _flag(ctx, "hypertension") else None
    if _meds_unavailable(ctx):
        return Rule(int(data["lipid_on_therapy_days"]), "lipid-lowering therapy could not be checked (medications not "
                                                         "available to the service): the yearly on-therapy interval is applied",
                    src["lipid_on_therapy"])
    if _flag(ctx, "lipid_therapy"):
        therapy = f["lipid_therapy"]
        started = therapy.date
        last = f["days_since_lipids"]
        drug = literal((therapy.note or "lipid-lowering therapy").removeprefix("active: "))
        if started and (last.date is None or last.date < started):
            if last.value is None or last.value > data["lipid_on_therapy_days"]:
                # No profile in the year before the order: the one at initiation is missing (and an order date may be a
                # renewal of a long-standing statin): due now, then 4-12 weeks after.
                return Rule(int(data["lipid_on_therapy_days"]), f"{drug} ordered {literal(started)}; no lipid profile in the year "
                            "before: a profile at initiation", src["lipid_initiation"])
            not_before = date.fromordinal(date.fromisoformat(started).toordinal() + int(data["lipid_after_start_days"]))
            return Rule(None, f"{drug} ordered {literal(started)}: no lipid profile since", src["lipid_start"], since=started,
                        not_before=not_before.isoformat())
        return Rule(int(data["lipid_on_therapy_days"]), "on lipid-lowering therapy", src["lipid_on_therapy"])
    age = f["age"].value
    if age is None:
        return Rule(int(data["lipid_every_5y_days"]), "no lipid-lowering therapy; age not known, so the 5-year interval "
                                                      "of the under-40s is applied", src["lipid_5y"])
    if age < data["lipid_5y_under_age"]:
        return Rule(int(data["lipid_every_5y_days"]), f"no lipid-lowering therapy, age {number(age, 0)}", src["lipid_5y"])
    return Rule(None, "no lipid-lowering therapy: at diagnosis or the initial evaluation", src["lipid_baseline"])


RULE_OF: Mapping[str, Callable[[BuildContext], Rule | None]] = {"hba1c": _hba1c, "kidney": _kidney, "uacr": _kidney,
                                                                "lipids": _lipids}


def _due(ctx: BuildContext, gap: Gap, rule: Rule, lead: float, visit_day: date) -> bool:
    last = ctx.features[gap.feature]
    if rule.not_before is not None and visit_day < date.fromisoformat(rule.not_before):
        return False
    if last.value is None or (rule.since is not None and (last.date or "") < rule.since):
        return True
    return rule.interval is not None and last.value + lead > rule.interval


def build(ctx: BuildContext) -> list:
    f, data = ctx.features, ctx.service.data
    outside = applicability_cards(ctx)  # `[[population]]`: adults with diabetes or hypertension (silent otherwise)
    if outside is not None:
        return outside
    present = [c for c in data["conditions"] if _flag(ctx, c)]
    now = f.as_of
    visit, _ = visit_time(ctx.request.context)
    if visit is not None and visit < now:  # a start in the past cannot be prepared for: judge at booking time
        visit = None
    lead = max(0.0, (visit - now).total_seconds() / 86400) if visit else 0.0
    visit_day = (visit or now).date()
    due, unchecked = [], []
    for gap in parse_gaps(ctx.service):
        rule = RULE_OF[gap.name](ctx)
        if rule is None:
            continue
        if unavailable_sources(ctx, gap.feature):  # unavailable is not absent: never "due" from missing results
            unchecked.append((gap, rule))
        elif _due(ctx, gap, rule, lead, visit_day):
            due.append((gap, rule))
    if not due and not unchecked:
        return []
    day = visit_day.isoformat()
    if due:
        summary = data["summary"].format(date=day, count=len(due), tests=", ".join(g.label for g, _ in due))
    else:
        summary = data["unchecked_summary"].format(date=day, count=len(unchecked), tests=", ".join(g.label for g, _ in unchecked))
    when = f"the visit on **{day}**" if visit else "this booking"
    lines = [f"Monitoring for {', '.join(f[c].label.lower() for c in present)} that will be due by {when}; "
             "ordering now lets the results be ready for it." if due else
             f"Monitoring for {', '.join(f[c].label.lower() for c in present)} by {when} could not be checked: the results "
             "were not available to the service. Nothing is ordered; check the results in the record.", "",
             "| Test | Last result | Rule | Why | Source |", "| --- | --- | --- | --- | --- |"]
    for gap, rule in due + unchecked:
        feat = f[gap.feature]
        if (gap, rule) in unchecked:
            last = f"**could not be checked** — {missing_text(ctx, gap.feature)}"
        else:
            last = missing_text(ctx, gap.feature, short=True) if feat.value is None else f"{literal(feat.date)} ({feat.value:.0f} days ago)"
        every = f"every {rule.interval} days" if rule.interval else ("4-12 weeks after the start" if rule.since else "once")
        lines.append(f"| {gap.label} | {last} | {every} | {rule.why} | {rule.source} |")
    lines += _notes(ctx)
    suggestions = [lab_order(ctx, f"order-{gap.name}", gap.order) for gap, _ in due]
    names = set(present) | {g.feature for g, _ in due + unchecked} | {"type1", "type2", "type1_years", "hba1c", "lipid_therapy",
                                                                      "glucose_therapy_change", "age"}
    return [card(ctx, "care-gaps", summary, "info", "\n".join(lines), suggestions=suggestions, selection_behavior="any",
                 extension=extension(ctx, names))]


def _notes(ctx: BuildContext) -> list[str]:
    """What shaped the rules and is not a row of the table: type 1 diabetes too recent for kidney screening,
    an individual HbA1c goal, data that was not available."""
    f, data = ctx.features, ctx.service.data
    notes = []
    years = f["type1_years"].value
    if _flag(ctx, "diabetes") and _flag(ctx, "type1") and not _flag(ctx, "type2") and years is not None \
            and years < data["type1_kidney_years"]:
        notes.append(f"Type 1 diabetes for {number(years)} years: yearly eGFR and urine albumin/creatinine start "
                     f"{number(data['type1_kidney_years'])} years after diagnosis (ADA 2025, 11.1a).")
    if _flag(ctx, "diabetes"):
        notes.append(f"The HbA1c goal used is the general one (< {value_text(data['hba1c_goal'], 'hba1c')}% for many nonpregnant adults, "
                     "ADA 2025 section 6); an individualized goal changes the interval.")
    for key, reason in ctx.unavailable.items():
        notes.append(f"Data not obtained for '{key}': {unavailable_text(reason)}.")
    notes += applicability_notes(ctx)
    return ["", *(f"- {n}" for n in notes)] if notes else []
