"""Untrusted text in a card's Markdown `detail` (CARD-1: GitHub Flavored Markdown), shown as written.

Whatever comes from the EHR's data — a drug's `text`, a coding's display, an Observation's unit, a
resource id, a feature's note that quotes one of those — goes into card text through `literal`
(or the helpers of `builders/base.py` built on it: `note_text`, `order_text`, `unavailable_text`,
`inputs_table`), never as is. Otherwise a MedicationRequest whose text is
`[Confirm override here](https://evil.example/phish)` becomes a live link in the card, and
`<img src=…>` an image in any EHR whose renderer allows HTML.

`literal` backslash-escapes the characters through which CommonMark or GFM give inline text a
meaning (emphasis, links, images, code, HTML, tables, strikethrough, entities), a list marker or
heading at the start, and the sequences GFM turns into links by themselves (`https://`, `www.`,
e-mail addresses). Line breaks become spaces (a value cannot open a new block), control characters
are dropped, and the text is cut at `MAX_CHARS`. A Markdown renderer shows the original characters.
"""
from __future__ import annotations

import re
from typing import Any

MAX_CHARS = 200
# What can make inline text more than text: links and images need `[`, autolinks and HTML `<`, emphasis
# `*` `_` `~`, code `` ` ``, a table cell ends at `|`, `&` starts an entity, `@` an e-mail autolink. The
# rest (parentheses, `!`, `#` inside a line) is inert once these are escaped, and left as written.
_INLINE = re.compile(r"([\\`*_\[\]<>|~&@])")
# A list item or a heading if the value starts a line (e.g. after "- " or in a table cell it does not,
# but `literal` cannot know where it is put).
_BLOCK_START = re.compile(r"^([-+]|\d{1,9}[.)]|#{1,6})(?=\s|$)")
_AUTOLINK = re.compile(r"(://|www\.)", re.IGNORECASE)
# Text of only these characters needs no escape unless it starts a block (`- `, `1) `) or holds "://" (an
# autolink): most values (labels, dates, ids, drug names) are such, and skip the substitutions of `_escape`.
_PLAIN = re.compile(r"[A-Za-z0-9 ,;:()/%'=-]*")


def literal(value: Any) -> str:
    """`value` as Markdown text that renders exactly as written ('' for None)."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", " ").replace("\n", " ")
    if not text.isprintable():  # most values are; the character loop is for the others
        text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1] + "…"
    if _PLAIN.fullmatch(text) and "://" not in text and not _BLOCK_START.match(text):
        return text
    return _escape(text)


def _escape(text: str) -> str:
    text = _INLINE.sub(r"\\\1", text)
    text = _AUTOLINK.sub(lambda m: ":\\/\\/" if m.group(1) == "://" else m.group(1)[:3] + "\\.", text)
    return _BLOCK_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)

