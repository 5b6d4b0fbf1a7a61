"""The feedback request (`POST /cds-services/{id}/feedback`): validated into `FeedbackItem`s
(FEEDBACK-2..4) before anything is stored; a malformed item is a 400 naming the offending member.
Storing them is `storage/feedback.py`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cds_service.errors import InvalidRequest

# RFC 3339 §5.6 date-time (FEEDBACK-2 outcomeTimestamp).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: tuple[str, str, str] | None = None  # (system, code, display)
    override_comment: str | None = None


def parse_feedback(body: Any) -> list[FeedbackItem]:
    """Validate a feedback body; raises InvalidRequest naming the offending member."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise InvalidRequest("The body must be {\"feedback\": [ … ]} with at least one item.", expression="feedback")
    return [_item(i, item) for i, item in enumerate(body["feedback"])]


def _item(i: int, item: Any) -> FeedbackItem:
    where = f"feedback[{i}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object.", expression=where)
    card = item.get("card")
    if not isinstance(card, str) or not card:
        raise InvalidRequest(f"{where}.card is required (the card's uuid).", expression=f"{where}.card")
    outcome = item.get("outcome")
    if outcome not in ("accepted", "overridden"):  # invariant cds-fb-1
        raise InvalidRequest(f"{where}.outcome must be 'accepted' or 'overridden'.", expression=f"{where}.outcome")
    ts = item.get("outcomeTimestamp")
    if not isinstance(ts, str) or not _RFC3339.match(ts):
        raise InvalidRequest(f"{where}.outcomeTimestamp must be an RFC 3339 date-time.", expression=f"{where}.outcomeTimestamp")
    accepted: tuple[str, ...] = ()
    if outcome == "accepted":  # cds-fb-2
        raw = item.get("acceptedSuggestions")
        if not isinstance(raw, list) or not raw or not all(isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"] for s in raw):
            raise InvalidRequest(f"{where}.acceptedSuggestions must list the accepted suggestions' ids.",
                                 expression=f"{where}.acceptedSuggestions")
        accepted = tuple(s["id"] for s in raw)
    reason = comment = None
    override = item.get("overrideReason")
    if override is not None:
        if outcome != "overridden" or not isinstance(override, dict):
            raise InvalidRequest(f"{where}.overrideReason belongs to an overridden card and must be an object.",
                                 expression=f"{where}.overrideReason")
        coding, comment = override.get("reason"), override.get("userComment")
        if coding is None and not comment:  # cds-fb-3
            raise InvalidRequest(f"{where}.overrideReason needs a reason or a userComment.", expression=f"{where}.overrideReason")
        if coding is not None:
            # FEEDBACK-4: display is optional here; system and code are not (CODING-1).
            if not isinstance(coding, dict) or not coding.get("code") or not coding.get("system"):
                raise InvalidRequest(f"{where}.overrideReason.reason must be a Coding with system and code.",
                                     expression=f"{where}.overrideReason.reason")
            reason = (str(coding["system"]), str(coding["code"]), str(coding.get("display") or ""))
        if comment is not None and not isinstance(comment, str):
            raise InvalidRequest(f"{where}.overrideReason.userComment must be a string.", expression=f"{where}.overrideReason.userComment")
    return FeedbackItem(card, outcome, ts, accepted, reason, comment)
