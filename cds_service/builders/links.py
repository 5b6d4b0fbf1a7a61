"""The links from an ML/equation card to its explanation page (LINK-1/LINK-2), in one place.

Both carry the call's capability token (`security/capability.py`: signed, expiring, bound to the
client, service and hookInstance), never the hookInstance itself, so the URL cannot be derived from
anything logged:
- `smart`: `{base}/smart/launch`, launched by the EHR (SMART App Launch). The token travels in
  `appContext`, which the EHR hands back in the token response (LINK-2), never in the URL.
- `absolute`: `{base}/explain/{token}`, opened as is: the fallback for EHRs that cannot launch SMART
  links with appContext (Oracle Health documents it as unsupported).

`appContext` is a small JSON object, `{"explanation": token}`: no patient data.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from cds_service.cards import Link

LAUNCH_PATH = "/smart/launch"
EXPLAIN_PATH = "/explain/"
DEFAULT_KINDS = ("smart", "absolute")  # `ui_explain_links` default: smart first, absolute as the fallback
SMART_LABEL = "Why? Explanation (opens inside the EHR)"
ABSOLUTE_LABEL = "Why? Inputs, contributions and model details"
# On a card whose score could not be calculated: the page names what would make it computable.
SMART_LABEL_NOT_CALCULATED = "Why not calculated? (opens inside the EHR)"
ABSOLUTE_LABEL_NOT_CALCULATED = "Why not calculated? What is missing, what would make it computable"
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,2048}$")  # base64url and '.': nothing to percent-encode


def explain_path(token: str) -> str:
    return f"{EXPLAIN_PATH}{token}"


def encode_app_context(token: str) -> str:
    return json.dumps({"explanation": token}, separators=(",", ":"))


def decode_app_context(value: Any) -> str | None:
    """The explanation token from an appContext this service wrote; None for anything else."""
    if not isinstance(value, str) or len(value) > 4096:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    token = data.get("explanation") if isinstance(data, dict) else None
    return token if isinstance(token, str) and _TOKEN.match(token) else None


def explanation_links(base_url: str, token: str, kinds: Iterable[str], *, calculated: bool = True) -> tuple[Link, ...]:
    """The card's links to its explanation page, smart first (what the EHR should prefer)."""
    if not _TOKEN.match(token):
        raise ValueError("not a link token")
    smart, absolute = (SMART_LABEL, ABSOLUTE_LABEL) if calculated else (SMART_LABEL_NOT_CALCULATED, ABSOLUTE_LABEL_NOT_CALCULATED)
    links = []
    for kind in kinds:
        if kind == "smart":
            links.append(Link(smart, f"{base_url}{LAUNCH_PATH}", type="smart", app_context=encode_app_context(token)))
        elif kind == "absolute":
            links.append(Link(absolute, f"{base_url}{explain_path(token)}"))
    return tuple(links)


def links_to_explanation(card: Mapping[str, Any], token: str) -> bool:
    """Does this serialised card link to the explanation page of `token`?"""
    for link in card.get("links") or ():
        if not isinstance(link, Mapping):
            continue
        if link.get("type") == "smart" and decode_app_context(link.get("appContext")) == token:
            return True
        if link.get("type", "absolute") == "absolute" and str(link.get("url", "")).endswith(explain_path(token)):
            return True
    return False
