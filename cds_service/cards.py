"""CDS Hooks response types (CARD, SRC, SUGG, ACT, LINK, OVR) and their JSON form.

The types enforce the card rules on construction, and `to_json` leaves out every empty member,
because the spec forbids null or empty values (GEN-2).
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from hooks.catalog import ACTION_TYPES, INDICATORS, LINK_TYPES, SELECTION_BEHAVIORS, SUMMARY_MAX

# Deterministic ids (IDEM-1): the same hookInstance and card key always give the same uuid.
_NAMESPACE = uuid.UUID("6f1d2b2e-4c34-4f0e-9a3e-2f8f6d1c0b7a")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_VARIANT = "89ab"  # byte 8's high hex digit once its top two bits are set to 10 (by its low two bits)


def stable_uuid(*parts: str) -> str:
    """`str(uuid.uuid5(_NAMESPACE, "/".join(parts)))`, built from the SHA-1 digest directly (RFC 4122 4.3:
    the first 16 bytes, version 5 in the high nibble of byte 6, variant 10 in the top bits of byte 8):
    `uuid.UUID`'s construction and checks cost more than the hash, for several ids per call."""
    h = hashlib.sha1(_NAMESPACE_BYTES + "/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _compact(obj: dict) -> dict:
    """Drop None, "", [] and {} members (GEN-2)."""
    return {k: v for k, v in obj.items() if v is not None and v != "" and v != [] and v != {}}


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def to_json(self) -> dict:
        return _compact({"system": self.system, "code": self.code, "display": self.display})


@dataclass(frozen=True, slots=True)
class Source:
    label: str
    url: str | None = None
    topic: Coding | None = None

    def to_json(self) -> dict:
        return _compact({"label": self.label, "url": self.url, "topic": self.topic.to_json() if self.topic else None})


@dataclass(frozen=True, slots=True)
class Action:
    type: str
    description: str
    resource: dict | None = None
    resource_id: str | None = None

    def __post_init__(self):
        if self.type not in ACTION_TYPES:
            raise ValueError(f"action type {self.type!r} (ACT-1)")
        if not self.description:
            raise ValueError("a suggestion action needs a description (ACT-1)")
        if self.type == "delete" and (self.resource_id is None or self.resource is not None):
            raise ValueError("delete takes resourceId and no resource (ACT-1, cds-resp-2)")
        if self.type in ("create", "update") and not isinstance(self.resource, dict):
            raise ValueError(f"{self.type} needs the complete resource (ACT-1)")

    def to_json(self) -> dict:
        return _compact({"type": self.type, "description": self.description, "resource": self.resource, "resourceId": self.resource_id})


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    uuid: str
    actions: tuple[Action, ...] = ()
    is_recommended: bool | None = None

    def to_json(self) -> dict:
        return _compact({"label": self.label, "uuid": self.uuid, "isRecommended": self.is_recommended,
                         "actions": [a.to_json() for a in self.actions]})


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    type: str = "absolute"
    app_context: str | None = None

    def __post_init__(self):
        if self.type not in LINK_TYPES:
            raise ValueError("link type must be absolute or smart (LINK-1)")
        if self.app_context and self.type != "smart":
            raise ValueError("appContext only on smart links (LINK-2)")

    def to_json(self) -> dict:
        return _compact({"label": self.label, "url": self.url, "type": self.type, "appContext": self.app_context})


@dataclass(frozen=True, slots=True)
class Card:
    summary: str
    indicator: str
    source: Source
    uuid: str
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: str | None = None
    override_reasons: tuple[Coding, ...] = ()
    links: tuple[Link, ...] = ()
    extension: dict[str, Any] | None = None
    # What the card is about within its service ("risk", "<order reference>/metformin/reduce"): the key its
    # uuid is made from. Never sent; the alert controls (`cds_service.alerts`) group repeats and snoozes by it.
    kind: str = ""

    def __post_init__(self):
        if not self.summary or len(self.summary) > SUMMARY_MAX:
            raise ValueError(f"summary must have 1–{SUMMARY_MAX} characters (CARD-2): {len(self.summary)}")
        if self.indicator not in INDICATORS:
            raise ValueError(f"indicator {self.indicator!r} (CARD-3)")
        if self.suggestions and self.selection_behavior not in SELECTION_BEHAVIORS:
            raise ValueError("suggestions need selectionBehavior at-most-one or any (CARD-4)")
        if self.selection_behavior == "at-most-one" and sum(1 for s in self.suggestions if s.is_recommended) > 1:
            raise ValueError("at most one recommended suggestion with at-most-one (CARD-5)")
        if any(not c.display for c in self.override_reasons):
            raise ValueError("every override reason needs a display (OVR-1)")

    def to_json(self) -> dict:
        return _compact({
            "uuid": self.uuid,
            "summary": self.summary,
            "detail": self.detail,
            "indicator": self.indicator,
            "source": self.source.to_json(),
            "suggestions": [s.to_json() for s in self.suggestions],
            "selectionBehavior": self.selection_behavior if self.suggestions else None,
            "overrideReasons": [c.to_json() for c in self.override_reasons],
            "links": [link.to_json() for link in self.links],
            "extension": self.extension,
        })


@dataclass(frozen=True, slots=True)
class CdsResponse:
    cards: tuple[Card, ...] = ()
    system_actions: tuple[Action, ...] = ()
    extension: dict[str, Any] | None = None  # EXT-1/2: ignorable by any client

    def to_json(self) -> dict:
        out: dict[str, Any] = {"cards": [c.to_json() for c in self.cards]}  # RESP-1: cards even when empty
        if self.system_actions:
            out["systemActions"] = [a.to_json() for a in self.system_actions]
        if self.extension:
            out["extension"] = self.extension
        return out
