"""Feature kinds that read medication orders: the record's active MedicationRequests and, for
`medication_with_drafts`, the orders of the current ordering session too.

Both match a drug the way `orders.MedicationOrder.matches` does: an RxNorm code in `codes`, or an ingredient
of `ingredients` named by the order's text, displays or known product (an SCD/SBD code alone is enough).

- `medication`: 1.0 when an active MedicationRequest of the record matches; the note names the drug ("active: …").
- `medication_with_drafts`: 1.0 when an active MedicationRequest OR any MedicationRequest of
  `context.draftOrders` (selected or not: a drug ordered together is co-medication, e.g. the "D" of
  HAS-BLED) matches. Every match is kept as evidence and named in the note, so a card can cite each drug.
  `systemic_only = true` leaves out orders given by a local route (topical, transdermal, eye, ear), whose
  systemic exposure is small (e.g. a diclofenac gel is not an NSAID for HAS-BLED).
"""
from __future__ import annotations

from typing import Sequence

from . import resources as R
from .features import MEDICATION_ACTIVE, Evidence, ExtractionContext, Feature, FeatureDef, _date_str, _found, extractor
from .orders import MedicationOrder, medication_orders


def _active_orders(resources: Sequence[dict], ctx: ExtractionContext) -> list[tuple[dict, MedicationOrder]]:
    """(MedicationRequest, its drug) of each active order; read once per pool by the features of one call (the key
    names the call's resources, which a pool never outlives)."""
    return R.ResourcePool.once(resources, ("active orders", id(ctx.all_resources)), lambda: [
        (r, MedicationOrder.of(r, ctx.all_resources)) for r in R.of_type(resources, "MedicationRequest")
        if r.get("status") in MEDICATION_ACTIVE])


def _draft_orders(resources: Sequence[dict], ctx: ExtractionContext) -> list[MedicationOrder]:
    """The MedicationRequests of `context.draftOrders`; read once per pool by the features of one call."""
    return R.ResourcePool.once(resources, ("draft orders", id(ctx.hook_context), id(ctx.all_resources)),
                               lambda: medication_orders(ctx.hook_context, ctx.all_resources))


@extractor("medication", params={"codes", "ingredients"})
def medication(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    """1.0 when an active MedicationRequest's drug is in the RxNorm set or names a listed ingredient."""
    for r, order in _active_orders(resources, ctx):
        if order.matches(d.codes(), d.param("ingredients", ())):
            return _found(d, 1.0, [Evidence(R.reference_of(r), _date_str(R.clinical_time(r)))], note=f"active: {order.text}")
    return _found(d, 0.0, note="no matching active medication")


@extractor("medication_with_drafts", params={"codes", "ingredients", "systemic_only"})
def medication_with_drafts(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    codes, names = d.codes(), d.param("ingredients", ())
    keep = (lambda o: o.route != "local") if d.param("systemic_only") else (lambda o: True)
    drafts = [o for o in _draft_orders(resources, ctx) if o.matches(codes, names) and keep(o)]
    draft_ids = {o.reference for o in drafts}
    actives = [(r, o) for r, o in _active_orders(resources, ctx)
               if o.matches(codes, names) and keep(o) and R.reference_of(r) not in draft_ids]
    if not drafts and not actives:
        return _found(d, 0.0, note="no matching active medication or draft order")
    evidence = [Evidence(o.reference, None) for o in drafts] + [Evidence(R.reference_of(r), _date_str(R.clinical_time(r))) for r, _ in actives]
    parts = []
    if drafts:
        parts.append("ordered in this session: " + ", ".join(o.text for o in drafts))
    if actives:
        parts.append("active: " + ", ".join(o.text for _, o in actives))
    return _found(d, 1.0, evidence, note="; ".join(parts))
