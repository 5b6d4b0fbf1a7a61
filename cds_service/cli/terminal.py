"""Cards printed for a terminal, the way a clinician reads them: indicator, summary, detail as plain
text with aligned tables, suggestions with their actions, links, override reasons."""
from __future__ import annotations

import os
import re

from cds_service.hook_request import NO_CARD_REASON

_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")  # a GFM table cell ends at a pipe that is not escaped
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark backslash escapes: any ASCII punctuation
_COLOURS = {"critical": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;34m"}


def use_colour(out) -> bool:
    return hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ


def render_result(r: dict, *, colour: bool = False) -> str:
    """One service's answer as a clinician reads it: indicator, summary, detail, suggestions, links."""
    resp = r["response"]
    cards = resp.get("cards", []) if isinstance(resp, dict) else []
    head = f"== {r['service']} ({r['hook']}): HTTP {r['status']} in {r['latency_ms']:.0f} ms"
    lines = [head + (f", {len(cards)} card{'s' if len(cards) != 1 else ''}" if r["status"] == 200 else "")]
    if r.get("prefetch"):
        lines.append(f"   prefetch sent: {', '.join(r['prefetch'])}")
    for key, why in (r.get("left_out") or {}).items():
        lines.append(f"   prefetch left out: {key} ({why})")
    if r["status"] != 200:
        if isinstance(resp, dict) and resp.get("resourceType") == "OperationOutcome":
            for issue in resp.get("issue", []):
                where = f" at {', '.join(issue['expression'])}" if issue.get("expression") else ""
                lines.append(f"   {issue.get('severity', 'error')}: {issue.get('diagnostics', issue.get('code', ''))}{where}")
        elif r["status"] == 401 and not r.get("notes"):
            lines.append("   the service refused the call: it requires a valid JWT (see --token-key)")
        elif isinstance(resp, str) and resp.strip():
            lines.append("   " + resp.strip()[:300])
    elif not cards:
        lines += no_card_lines(resp)
    lines += [f"   {note}" for note in r.get("notes") or ()]
    for card in cards:
        lines += [""] + _card_lines(card, colour)
    for action in (resp.get("systemActions", []) if isinstance(resp, dict) and r["status"] == 200 else []):
        lines.append(f"   system action: {_action_text(action)}")
    return "\n".join(lines) + "\n\n"


def no_card_lines(resp: dict) -> list[str]:
    """Why there is no card, from the service's `org.cdsml.no-card-reason` extension when it sent one."""
    why = (resp.get("extension") or {}).get(NO_CARD_REASON) if isinstance(resp, dict) else None
    if not isinstance(why, dict) or not isinstance(why.get("reasons"), list):
        return ["   no cards: the service has no advice for this patient (it gave no reason)"]
    lines = ["   no cards, because:"] + [f"   - {r.get('text')}" for r in why["reasons"] if isinstance(r, dict)]
    if "ordersJudged" in why:
        lines.append(f"   orders judged: {'; '.join(map(str, why['ordersJudged'])) or 'none (no medication order of this patient)'}")
    return lines


def _card_lines(card: dict, colour: bool) -> list[str]:
    indicator = str(card.get("indicator", "?"))
    tag = f"[{indicator.upper()}]"
    if colour and indicator in _COLOURS:
        tag = f"{_COLOURS[indicator]}{tag}\033[0m"
    lines = [f"{tag} {card.get('summary', '')}"]
    src = card.get("source") or {}
    if src:
        lines.append(f"    source: {src.get('label', '')}" + (f" <{src['url']}>" if src.get("url") else ""))
    if card.get("detail"):
        lines += [""] + ["    " + line if line else "" for line in plain_text(card["detail"]).splitlines()] + [""]
    suggestions = card.get("suggestions") or []
    if suggestions:
        lines.append(f"    suggestions ({card.get('selectionBehavior', '?')}):")
        for s in suggestions:
            mark = " (recommended)" if s.get("isRecommended") else ""
            lines.append(f"      * {s.get('label', '')}{mark}")
            for a in s.get("actions") or []:
                lines.append(f"          {_action_text(a)}")
    for link in card.get("links") or []:
        lines.append(f"    link ({link.get('type', '?')}): {link.get('label', '')} <{link.get('url', '')}>")
    reasons = [r.get("display") or r.get("code", "") for r in card.get("overrideReasons") or []]
    if reasons:
        lines.append(f"    override reasons: {'; '.join(reasons)}")
    if card.get("uuid"):
        lines.append(f"    card uuid: {card['uuid']}")
    return lines


def _action_text(a: dict) -> str:
    resource = a.get("resource")
    resource = resource if isinstance(resource, dict) else {}
    what = resource.get("resourceType") or a.get("resourceId") or ""
    desc = a.get("description") or ""
    return f"{a.get('type', '?')} {what}: {desc}".rstrip(": ")


def plain_text(markdown: str) -> str:
    """GFM detail as terminal text: emphasis and code marks dropped, links as 'text <url>', tables aligned."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush():
        if table:
            widths = [max(len(row[i]) if i < len(row) else 0 for row in table) for i in range(max(map(len, table)))]
            out.extend("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table)
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            cells = [_inline(c.strip()) for c in _CELL_SEPARATOR.split(stripped[1:-1])]
            if not all(re.match(r"^:?-{3,}:?$", c) for c in cells):
                table.append(cells)
            continue
        flush()
        line = re.sub(r"^(\s*)[*+] ", r"\1- ", line)
        line = re.sub(r"^#{1,6}\s+", "", line)
        out.append(_inline(line))
    flush()
    return "\n".join(out).strip("\n")


def _inline(text: str) -> str:
    text = re.sub(r"(?<!\\)\[([^\]]+)\]\(([^)\s]+)\)", r"\1 <\2>", text)
    text = re.sub(r"(?<!\\)(\*\*|__)(.+?)(?<!\\)\1", r"\2", text)
    text = re.sub(r"(?<![\w*\\])\*(?!\s)(.+?)(?<![\s\\])\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\\)`", "", text)
    # Text from the record is backslash-escaped in the Markdown (builders/markdown.py): shown as written.
    return _ESCAPED.sub(r"\1", text)
