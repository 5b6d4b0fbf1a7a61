"""Alert-fatigue controls: which of a call's cards the clinician sees, as the service file's `[alerts]`
table declares (`hooks.definitions.AlertPolicy`). Pure: `storage/card_history.py` reads the history
judged against and records the decisions.

Each card the builder made is, in this order:
- "silent": an info card of a kind listed in `silent_info` that suggests nothing to do (an info card
  with a suggestion, and a warning or critical card of that kind, are judged like any other);
- "snoozed": a snooze set by feedback holds for its kind and patient, the card is no more severe than
  the overridden one and suggests the same actions (a change of either ends the snooze for it);
- "repeat": a card with the same content was shown to the same user for the same patient by the same
  service, or by a service sharing its history (`[alerts] history`: renal-dosing-select at order-select,
  then renal-dosing at order-sign), in another call within `repeat_window_s[indicator]`;
- "shown" otherwise.
A card whose content changed (another value, band, indicator or suggested action) is never a repeat.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from cds_service.cards import Card
from cds_service.wire_text import clipped
from hooks.catalog import INDICATORS
from hooks.definitions import AlertPolicy

SHOWN, REPEAT, SNOOZED, SILENT = "shown", "repeat", "snoozed", "silent"
HELD_BACK = (REPEAT, SNOOZED, SILENT)
KIND_CHARS = 200  # the width of the stored kind (db.card_decisions)


@dataclass(frozen=True, slots=True)
class Snooze:
    kind: str
    indicator: str  # the overridden card's: a more severe card of the kind is shown
    actions_key: str  # the overridden card's suggested actions: a card suggesting others is shown
    until: float


@dataclass(frozen=True, slots=True)
class History:
    """What the service showed this user for this patient in other calls, and the patient's snoozes."""

    shown: Mapping[str, float] = field(default_factory=dict)  # content key -> when last shown
    snoozes: tuple[Snooze, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    card: Card
    outcome: str
    content_key: str
    actions_key: str
    at: float | None = None  # repeat: when the same card was last shown; snoozed: when the snooze ends

    @property
    def shown(self) -> bool:
        return self.outcome == SHOWN


def kind_of(card: Card) -> str:
    """The card's kind as stored (a kind about a draft order carries the EHR's reference for it)."""
    return clipped(card.kind, KIND_CHARS)


def actions(card: Card) -> list:
    """What the card's suggestions would do, without what varies from call to call (the encounter, the
    requester, uuids): per action its type, resource type, codes, dosage text and the resource it removes."""
    out = []
    for suggestion in card.suggestions:
        for a in suggestion.actions:
            r = a.resource or {}
            concept = r.get("code") or r.get("medicationCodeableConcept") or {}
            codes = sorted(f"{c.get('system')}|{c.get('code')}" for c in concept.get("coding", []) if isinstance(c, dict))
            dosage = [d.get("text") for d in r.get("dosageInstruction", []) if isinstance(d, dict)]
            out.append([a.type, r.get("resourceType"), codes, dosage, a.resource_id])
    return sorted(out, key=json.dumps)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def actions_key(card: Card) -> str:
    return _digest(actions(card))


def content_key(history: str, card: Card) -> str:
    """The card as the clinician reads it, without its uuid: the service's history (its id, or the one it
    shares), kind (for a card about one draft order, the order's reference), indicator, summary (which
    carries the values and band as shown) and suggested actions. The detail is left out: it explains the
    summary and carries dates that move with the day ("45 days ago") while nothing changed."""
    return _digest([history, kind_of(card), card.indicator, card.summary, actions(card)])


def _severity(indicator: str) -> int:
    return INDICATORS.index(indicator)


def decide(policy: AlertPolicy, scope: str, cards: Iterable[Card], history: History, now: float) -> list[Decision]:
    """One decision per card, in the cards' order. `scope`: the history judged in (`policy.history` or the
    service's id)."""
    out = []
    for card in cards:
        key, acts = content_key(scope, card), actions_key(card)
        snooze = next((s for s in history.snoozes if s.kind == kind_of(card) and s.until > now and s.actions_key == acts
                       and _severity(card.indicator) <= _severity(s.indicator)), None)
        if card.indicator == "info" and not card.suggestions and kind_of(card) in policy.silent_info:
            out.append(Decision(card, SILENT, key, acts))
        elif snooze is not None:
            out.append(Decision(card, SNOOZED, key, acts, snooze.until))
        elif key in history.shown and now - history.shown[key] < policy.window_s(card.indicator):
            out.append(Decision(card, REPEAT, key, acts, history.shown[key]))
        else:
            out.append(Decision(card, SHOWN, key, acts))
    return out


def longest_window_s(policy: AlertPolicy) -> int:
    return max(policy.repeat_window_s.values(), default=0)
