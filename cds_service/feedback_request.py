"""The feedback request (`POST /cds-services/{id}/feedback`): validated into `FeedbackItem`s
(FEEDBACK-2..4) before anything is stored; a malformed item is a 400 naming the offending member.
Storing them is `storage/feedback.py`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cds_service.errors import InvalidRequest
from cds_service.wire_text import checked_text
from hooks.catalog import FEEDBACK_OUTCOMES

# RFC 3339 §5.6 date-time (FEEDBACK-2 outcomeTimestamp); fractions to the nanosecond (fits the column).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
# Bounds of what one report may hold: the widths of the `feedback` table's columns (storage/db.py),
# and a comment or a suggestion list no EHR's dialog produces.
MAX_ITEMS = 100
MAX_SUGGESTIONS = 50
CARD_CHARS, SUGGESTION_CHARS = 64, 64
SYSTEM_CHARS, CODE_CHARS, DISPLAY_CHARS, COMMENT_CHARS = 200, 100, 300, 4000


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
    if len(body["feedback"]) > MAX_ITEMS:
        raise InvalidRequest(f"At most {MAX_ITEMS} feedback items per request.", expression="feedback")
    return [_item(i, item) for i, item in enumerate(body["feedback"])]


def _item(i: int, item: Any) -> FeedbackItem:
    where = f"feedback[{i}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object.", expression=where)
    card = item.get("card")
    if not isinstance(card, str) or not card:
        raise InvalidRequest(f"{where}.card is required (the card's uuid).", expression=f"{where}.card")
    checked_text(card, f"{where}.card", max_chars=CARD_CHARS)
    outcome = item.get("outcome")
    if outcome not in FEEDBACK_OUTCOMES:  # invariant cds-fb-1
        allowed = " or ".join(f"'{o}'" for o in FEEDBACK_OUTCOMES)
        raise InvalidRequest(f"{where}.outcome must be {allowed}.", expression=f"{where}.outcome")
    ts = item.get("outcomeTimestamp")
    if not isinstance(ts, str) or not _RFC3339.match(ts):
        raise InvalidRequest(f"{where}.outcomeTimestamp must be an RFC 3339 date-time.", expression=f"{where}.outcomeTimestamp")
    accepted: tuple[str, ...] = ()
    if outcome == "accepted":  # cds-fb-2
        raw = item.get("acceptedSuggestions")
        if not isinstance(raw, list) or not raw or not all(isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"] for s in raw):
            raise InvalidRequest(f"{where}.acceptedSuggestions must list the accepted suggestions' ids.",
                                 expression=f"{where}.acceptedSuggestions")
        if len(raw) > MAX_SUGGESTIONS:
            raise InvalidRequest(f"{where}.acceptedSuggestions lists more than {MAX_SUGGESTIONS} suggestions.",
                                 expression=f"{where}.acceptedSuggestions")
        accepted = tuple(checked_text(s["id"], f"{where}.acceptedSuggestions[{j}].id", max_chars=SUGGESTION_CHARS)
                         for j, s in enumerate(raw))
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
            at = f"{where}.overrideReason.reason"
            reason = (checked_text(str(coding["system"]), f"{at}.system", max_chars=SYSTEM_CHARS),
                      checked_text(str(coding["code"]), f"{at}.code", max_chars=CODE_CHARS),
                      checked_text(str(coding.get("display") or ""), f"{at}.display", max_chars=DISPLAY_CHARS,
                                   required=False) or "")
        if comment is not None and not isinstance(comment, str):
            raise InvalidRequest(f"{where}.overrideReason.userComment must be a string.", expression=f"{where}.overrideReason.userComment")
        if comment:
            checked_text(comment, f"{where}.overrideReason.userComment", max_chars=COMMENT_CHARS)
    return FeedbackItem(card, outcome, ts, accepted, reason, comment)
