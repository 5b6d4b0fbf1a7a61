"""The links from an ML/equation card to its explanation page (issue #7, LINK-1/LINK-2), in one place.

- `smart`: `{base}/smart/launch`, launched by the EHR (SMART App Launch). The card's identity travels
  in `appContext`, which the EHR hands back in the token response (LINK-2), never in the URL.
- `absolute`: `{base}/explain/{service}/{hookInstance}`, opened as is: the fallback for EHRs that
  cannot launch SMART links with appContext (Oracle Health documents it as unsupported).

`appContext` is a small JSON object, `{"service": …, "hookInstance": …}`: no patient data.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from cds_service.cards import Link
from cds_service.hook_request import HOOK_INSTANCE

LAUNCH_PATH = "/smart/launch"
DEFAULT_KINDS = ("smart", "absolute")  # `ui_explain_links` default: smart first, absolute as the fallback
SMART_LABEL = "Why? Explanation (opens inside the EHR)"
ABSOLUTE_LABEL = "Why? Inputs, contributions and model details"
_SERVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def explain_path(service_id: str, hook_instance: str) -> str:
    return f"/explain/{service_id}/{hook_instance}"


def encode_app_context(service_id: str, hook_instance: str) -> str:
    return json.dumps({"service": service_id, "hookInstance": hook_instance}, separators=(",", ":"))


def decode_app_context(value: Any) -> tuple[str, str] | None:
    """(service id, hookInstance) from an appContext this service wrote; None for anything else."""
    if not isinstance(value, str) or len(value) > 500:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    service, hook_instance = data.get("service"), data.get("hookInstance")
    if not (isinstance(service, str) and _SERVICE_ID.match(service)
            and isinstance(hook_instance, str) and HOOK_INSTANCE.match(hook_instance)):
        return None
    return service, hook_instance


def explanation_links(base_url: str, service_id: str, hook_instance: str, kinds: Iterable[str]) -> tuple[Link, ...]:
    """The card's links to its explanation page, smart first (what the EHR should prefer)."""
    links = []
    for kind in kinds:
        if kind == "smart":
            links.append(Link(SMART_LABEL, f"{base_url}{LAUNCH_PATH}", type="smart",
                              app_context=encode_app_context(service_id, hook_instance)))
        elif kind == "absolute":
            links.append(Link(ABSOLUTE_LABEL, f"{base_url}{explain_path(service_id, hook_instance)}"))
    return tuple(links)


def links_to_explanation(card: Mapping[str, Any], service_id: str, hook_instance: str) -> bool:
    """Does this serialised card link to the explanation page of (service, hookInstance)?"""
    target = explain_path(service_id, hook_instance)
    for link in card.get("links") or ():
        if not isinstance(link, Mapping):
            continue
        if link.get("type") == "smart" and decode_app_context(link.get("appContext")) == (service_id, hook_instance):
            return True
        if link.get("type", "absolute") == "absolute" and str(link.get("url", "")).endswith(target):
            return True
    return False
