"""Feature kinds that read the orders of the current ordering session as well as the record.

`medication_with_drafts`: 1.0 when an active MedicationRequest of the record OR any MedicationRequest
of `context.draftOrders` (selected or not: a drug ordered together is co-medication, e.g. the "D"
of HAS-BLED) matches the RxNorm codes or names a listed ingredient.
"""
from __future__ import annotations

from typing import Sequence

from . import resources as R
from .features import MEDICATION_ACTIVE, Evidence, ExtractionContext, Feature, FeatureDef, _date_str, _found, extractor
from .orders import MedicationOrder, medication_orders


@extractor("medication_with_drafts", params={"codes", "ingredients"})
def medication_with_drafts(d: FeatureDef, resources: Sequence[dict], ctx: ExtractionContext) -> Feature:
    codes, names = d.param("codes", ()), d.param("ingredients", ())
    for order in medication_orders(ctx.hook_context, ctx.all_resources):
        if order.matches(codes, names):
            return _found(d, 1.0, [Evidence(order.reference, None)], note=f"ordered in this session: {order.text}")
    for r in R.of_type(resources, "MedicationRequest"):
        if r.get("status") not in MEDICATION_ACTIVE:
            continue
        order = MedicationOrder(r, R.medication_concept(r, ctx.all_resources), False)
        if order.matches(codes, names):
            return _found(d, 1.0, [Evidence(R.reference_of(r), _date_str(R.clinical_time(r)))], note=f"active: {order.text}")
    return _found(d, 0.0, note="no matching active medication or draft order")
