"""Card `detail` is GitHub Flavored Markdown (CARD-1); render it as an EHR would, safely.

markdown-it-py parses CommonMark, which GFM extends (a list may follow a paragraph line without a
blank line, as the cards write it), plus GFM tables and strikethrough. Raw HTML in a card is shown
as text, never interpreted (`html: False`), and the output then goes through `nh3` (the ammonia
sanitiser) with an allow-list of tags and link schemes: no `javascript:` link, no event attribute,
and no image, since the pages fetch nothing from outside the service.
"""
from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_TAGS = {"p", "strong", "em", "a", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "code", "pre",
         "br", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "s", "del"}
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"style"}, "td": {"style"}, "ol": {"start"}}


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "breaks": False}).enable(["table", "strikethrough"])


def render(text: str | None) -> Markup:
    if not text:
        return Markup("")
    html = _parser().render(text)
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow", filter_style_properties={"text-align"})
    return Markup(clean.replace("<a ", '<a target="_blank" '))
