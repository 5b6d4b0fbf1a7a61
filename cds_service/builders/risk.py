"""The generic risk card: population guard, missing inputs, then a card by declared thresholds."""
from __future__ import annotations

from cds_service.builders.base import (
    BuildContext,
    applicability_cards,
    applicability_notes,
    card,
    declared_suggestion,
    display_value,
    inputs_table,
    lab_order,
    missing_text,
    note_text,
    prediction_extension,
    unavailable_lines,
)
from cds_service.builders.equation_cards import check_secondary
from cds_service.builders.markdown import literal
from hooks.catalog import SUMMARY_MAX
from hooks.definitions import ServiceDefinition


def check(service: ServiceDefinition) -> set[str]:
    """Start-up check; the risk builder reads the model inputs (added by the loader) only."""
    check_secondary(service)  # the risk card shows one model
    return set()


def build(ctx: BuildContext) -> list:
    s = ctx.service
    model_names = ctx.require_model().info.feature_names
    # Outside the intended population → no score, never a silent extrapolation (`cards.on_not_applicable`
    # says whether a card says why); when it could not be checked, the missing-input card below names why.
    cards = applicability_cards(ctx, undecided=False)
    if cards is not None:
        return cards
    missing = [ctx.features[n] for n in ctx.require_model().info.required if ctx.features[n].missing]
    missing += [u.feature for u in ctx.applicability.unknown if u.criterion.if_unknown == "stop" and u.feature not in missing]
    if missing or ctx.prediction is None:
        return [] if s.cards.on_missing == "silent" else [missing_card(ctx, missing, model_names)]
    return [_risk_card(ctx, model_names)]


def pct(score: float) -> str:
    return f"{100 * score:.1f}%"


def risk_lines(ctx: BuildContext, names, advice: str = "", *, population_notes: bool = True) -> list[str]:
    """The detail of a risk card: the risk, the advice, the factors raising it most, every input, notes (`population_notes`:
    with the population criteria that could not be checked, unless the caller's card names them itself)."""
    s, p = ctx.service, ctx.require_prediction()
    info = ctx.require_model().info
    lines = [f"**{info.title}: {pct(p.score)}** (model version {p.version})."]
    if advice:
        lines += ["", advice]
    top = p.top_raising(s.cards.top_factors)
    if top:
        lines += ["", "**Factors raising this risk most** (contribution to the linear predictor against the reference profile):"]
        for name, value in top:
            f = ctx.features[name]
            when = f" ({literal(f.date)})" if f.date else ""
            lines.append(f"- {f.label}: {display_value(ctx, f)}{when}, +{value:.2f}")
    lines += ["", inputs_table(ctx, names)]
    notes = [f"{f.label}: {note_text(f)}" for f in ctx.features.features if f.imputed and f.note and f.name in names]
    if notes:
        lines += ["", "**Notes:** " + "; ".join(notes) + "."]
    if ctx.unavailable:
        lines += ["", "**Data not obtained:**", *unavailable_lines(ctx)]
    lines += [f"\n{note}" for note in applicability_notes(ctx)] if population_notes else []
    lines += ["", f"*Intended population:* {info.population}. *Outcome:* {info.outcome}. *Source:* {info.citation}."]
    return lines


def rule_for(ctx: BuildContext):
    """The card rule (risk category) of the prediction: the first whose `min_score` it reaches."""
    score = ctx.require_prediction().score
    return next(r for r in ctx.service.cards.rules if score >= r.min_score)


def rule_suggestions(ctx: BuildContext, names) -> list:
    """The declared suggestions, without those whose `unless` feature is present (e.g. already on a statin)."""
    s = ctx.service
    return [declared_suggestion(ctx, s.suggestions[n]) for n in names
            if not _unless_holds(ctx, s.suggestions[n].unless)]


def _unless_holds(ctx: BuildContext, unless: str | None) -> bool:
    """A suggestion's `unless` feature is present (e.g. already on a statin)."""
    if not unless:
        return False
    return (ctx.features[unless].value or 0) >= 0.5


def _risk_card(ctx: BuildContext, names) -> object:
    rule = rule_for(ctx)
    # The explanation link comes with the prediction (the one card factory adds it).
    return card(ctx, "risk", rule.summary.format(risk=pct(ctx.require_prediction().score)), rule.indicator,
                "\n".join(risk_lines(ctx, names, rule.advice)), suggestions=rule_suggestions(ctx, rule.suggestions),
                extension=prediction_extension(ctx))


def missing_card(ctx: BuildContext, missing, names) -> object:
    """An info card naming the missing inputs (nothing invented), with an order for each that has one."""
    s = ctx.service
    labels = [f.label for f in missing]
    summary = f"{ctx.require_model().info.title.split(' (')[0]} not calculated: missing " + ", ".join(labels)
    if len(summary) > SUMMARY_MAX:
        summary = f"{ctx.require_model().info.title.split(' (')[0]} not calculated: {len(labels)} inputs missing"
    if len(summary) > SUMMARY_MAX:
        summary = f"Risk not calculated: {len(labels)} inputs missing"
    lines = ["The risk was **not calculated** because these inputs are missing (no value is invented):", ""]
    lines += [f"- {f.label}: {missing_text(ctx, f.name)}" for f in missing]
    lines += ["", inputs_table(ctx, [n for n in names if not ctx.features[n].missing])] if any(not ctx.features[n].missing for n in names) else []
    if ctx.unavailable:
        lines += ["", "**Data not obtained:**", *unavailable_lines(ctx)]
    suggestions, seen = [], set()
    for f in missing:
        order = s.orders.get(f.name)
        if order and order.code not in seen:
            seen.add(order.code)
            suggestions.append(lab_order(ctx, f"order-{f.name}", order))
    return card(ctx, "missing", summary, "info", "\n".join(lines), suggestions=suggestions,
                extension=prediction_extension(ctx, names))
