"""Why a call gave no card: a plain explanation for the integrator, returned only to a caller that asks.

`{"cards": []}` means "no advice" (RESP-2) and is all an EHR gets. A caller that wants to know why puts
`"extension": {"org.cdsml.no-card-reason": true}` in its request (EXT-1: reverse-domain member names); when
no card results, the response then carries `"extension": {"org.cdsml.no-card-reason": {...}}` beside the
empty `cards` — an extension any client may ignore (EXT-2/3). `cds-service fire` asks for it and prints it.

The reasons, most likely first: a `[[population]]` criterion the patient does not meet or that could not be
checked, a model input that is missing, prefetch data that could not be obtained; when none applies, the
service's own rules (its builder) found nothing to advise on — with, at an order hook, the orders judged.
When the builder made cards and the service's `[alerts]` held every one back, the reasons say which control
did, for each card (`explain_held_back`).
It holds what the caller's own request led to (values of the patient it sent or let us read), never more.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from cds_service.alerts import HELD_BACK, REPEAT, SILENT, SNOOZED
from cds_service.builders.base import BuildContext, display_value, missing_text, note_text, unavailable_text
from cds_service.hook_request import NO_CARD_REASON
from fhir_adapters.orders import medication_orders
from hooks.definitions import Criterion, ServiceDefinition


def explain_no_card(ctx: BuildContext) -> dict[str, Any]:
    """The `org.cdsml.no-card-reason` extension for a call whose builder returned no card."""
    s, f = ctx.service, ctx.features
    reasons: list[dict[str, Any]] = []
    # The population as the pipeline judged it (cds_service.applicability), before any model ran.
    for finding in ctx.applicability.failed:
        c, feature = finding.criterion, finding.feature
        reasons.append({"kind": "outside-population", "criterion": c.label, "feature": c.feature, "rule": _rule(ctx, c),
                        "value": feature.value,
                        "text": f"outside the population '{c.label}': {feature.label} is {display_value(ctx, feature)}"
                                f" (the service needs {_rule(ctx, c)})" + (f"; {note_text(feature)}" if feature.note else "")})
    for finding in ctx.applicability.unknown:
        c, feature = finding.criterion, finding.feature
        reasons.append({"kind": "population-not-checked", "criterion": c.label, "feature": c.feature, "rule": _rule(ctx, c),
                        "text": f"population '{c.label}' could not be checked: {feature.label} {missing_text(ctx, c.feature)}"})
    if ctx.model is not None:
        for name in ctx.model.info.required:
            if f[name].missing and name not in {c.feature for c in s.population}:
                reasons.append({"kind": "missing-input", "feature": name,
                                "text": f"model input missing: {f[name].label} {missing_text(ctx, name)}"})
    for key, why in ctx.unavailable.items():
        reasons.append({"kind": "unavailable", "prefetch": key, "text": f"data '{key}' {unavailable_text(why)}"})
    if not reasons:
        reasons.append({"kind": "rules", "text": "no population rule or missing input stopped it: the service's own rules "
                                                 f"(builder '{s.builder}') found nothing to advise"})
    body: dict[str, Any] = {"service": s.id, "hook": s.hook, "reasons": reasons}
    orders = medication_orders(ctx.request.context) if "draftOrders" in ctx.request.context else []
    judged = [o.text for o in orders if o.selected]
    if judged or "draftOrders" in ctx.request.context:
        body["ordersJudged"] = judged  # what the order services looked at (selections only at order-select)
    if ctx.request.encounter_id:
        body["encounterId"] = ctx.request.encounter_id
    return {NO_CARD_REASON: body}


def explain_held_back(service: ServiceDefinition, decisions, now: float) -> dict[str, Any]:
    """The `org.cdsml.no-card-reason` extension for a call whose cards the alert controls all held back
    (`decisions`: `alerts.Decision`s; in shadow mode the shown ones too)."""
    reasons = []
    for d in decisions:
        card, quoted = d.card, f'"{d.card.summary}"'
        if d.outcome == REPEAT:
            window = service.alerts.window_s(card.indicator)
            text = (f"{quoted}: the same card was shown to this user for this patient {_duration(now - d.at)} ago; not "
                    f"repeated within {_duration(window)} (alerts.repeat_window_s.{card.indicator})")
        elif d.outcome == SNOOZED:
            text = (f"{quoted}: snoozed for this patient after an override, until "
                    f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(d.at))} UTC (alerts.snooze_reasons)")
        elif d.outcome == SILENT:
            text = f"{quoted}: an info card that suggests nothing to do is not shown (alerts.silent_info: {card.kind})"
        else:
            text = f"{quoted}: the service runs in shadow mode: the card is recorded, not returned (alerts.mode)"
        reasons.append({"kind": "held-back", "outcome": d.outcome if d.outcome in HELD_BACK else "shadow", "text": text})
    return {NO_CARD_REASON: {"service": service.id, "hook": service.hook, "reasons": reasons}}


def _duration(seconds: float) -> str:
    """'5 min', '2 h', '7 days'."""
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def _rule(ctx: BuildContext, c: Criterion) -> str:
    """A criterion in the words of the card's values: 'yes', 'between 30 years and 104 years', 'at least 18 years'."""
    feature = ctx.features[c.feature]

    def shown(value: float) -> str:
        return display_value(ctx, replace(feature, value=float(value)))

    if c.equals is not None:
        return shown(c.equals)
    if c.min is not None and c.max is not None:
        return f"between {shown(c.min)} and {shown(c.max)}"
    if c.min is not None:
        return f"at least {shown(c.min)}"
    return f"at most {shown(c.max)}" if c.max is not None else "a recorded value"
