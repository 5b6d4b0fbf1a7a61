"""Untrusted text in a card's Markdown `detail` (CARD-1: GitHub Flavored Markdown), shown as written.

Whatever comes from the EHR's data — a drug's `text`, a coding's display, an Observation's unit, a
resource id, a feature's note that quotes one of those — goes into card text through `literal`
(or the helpers built on it), never as is. Otherwise a MedicationRequest whose text is
`[Confirm override here](https://evil.example/phish)` becomes a live link in the card, and
`<img src=…>` an image in any EHR whose renderer allows HTML.

`literal` backslash-escapes every character CommonMark or GFM gives a meaning inline (emphasis,
links, images, code, HTML, tables, strikethrough, entities), the characters that start a block at
the beginning of a line, and the sequences GFM turns into links by themselves (`https://`, `www.`,
e-mail addresses). Line breaks become spaces (a value cannot open a new block), control characters
are dropped, and the text is cut at `MAX_CHARS`. A Markdown renderer shows the original characters.
"""
from __future__ import annotations

import re
from typing import Any

MAX_CHARS = 200
_INLINE = re.compile(r"([\\`*_{}\[\]()<>#|~!&@$])")
_LIST_MARKER = re.compile(r"^([-+]|\d{1,9}[.)])(?=\s|$)")  # a list item if the value starts a line
_AUTOLINK = re.compile(r"(://|www\.)", re.IGNORECASE)


def literal(value: Any) -> str:
    """`value` as Markdown text that renders exactly as written ('' for None)."""
    if value is None:
        return ""
    text = "".join(c if c.isprintable() else " " for c in str(value).replace("\r\n", " ").replace("\n", " "))
    text = " ".join(text.split())
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1] + "…"
    text = _INLINE.sub(r"\\\1", text)
    text = _AUTOLINK.sub(lambda m: ":\\/\\/" if m.group(1) == "://" else m.group(1)[:3] + "\\.", text)
    return _LIST_MARKER.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)


def note(feature: Any, default: str = "") -> str:
    """A feature's note (which may quote the EHR's data) as Markdown text; `default` when it has none."""
    return literal(feature.note) if getattr(feature, "note", None) else default
