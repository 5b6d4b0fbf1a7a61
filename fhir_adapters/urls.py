"""Normalising a URL a server handed us before it is trusted (RFC 3986 §6.2.2), so that the URL we
check against an allow-list is exactly the URL we then request.

Without it a `next` link `https://ehr/fhirA/../tenantB/Observation` passes a raw prefix check for
`https://ehr/fhirA`, and the HTTP client then removes the dot segments and sends tenant A's token to
tenant B. Here: scheme and host are lower-cased, the default port dropped, percent-encoded unreserved
characters decoded (`%2E` is `.`) and the other escapes upper-cased, dot segments removed, and the
fragment dropped. What cannot be normalised safely is refused (ValueError): a non-http(s) scheme,
user info, a character outside RFC 3986's set (whitespace, CR/LF, non-ASCII, `\\`), a malformed
escape, or an encoded `/`, `\\` or NUL in the path (servers disagree on whether it separates segments).
The result is stable under `requests` and urllib3's own normalisation, so the request goes to it
unchanged.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 8192
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 §2: unreserved, reserved and '%'; nothing else may appear in a URL as sent.
_ALLOWED = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_FORBIDDEN_IN_PATH = frozenset({"2F", "5C", "00"})


def normalize_url(url: str) -> str:
    """The normalised absolute http(s) URL; ValueError when it cannot be trusted as one."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS or not _ALLOWED.match(url):
        raise ValueError("not a URL of printable ASCII characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError("not an absolute http(s) URL without user info")
    port = parts.port  # ValueError for a malformed port
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = remove_dot_segments(_escapes(parts.path, in_path=True)) or "/"
    return urlunsplit((scheme, netloc, path, _escapes(parts.query, in_path=False), ""))


def _escapes(text: str, *, in_path: bool) -> str:
    """Decode escaped unreserved characters, upper-case the others (RFC 3986 §6.2.2.1-2)."""
    if "%" not in text:
        return text
    if text.count("%") != len(_ESCAPE.findall(text)):
        raise ValueError("a malformed percent escape")

    def one(match: re.Match) -> str:
        code = match.group(1).upper()
        char = chr(int(code, 16))
        if char in _UNRESERVED:
            return char
        if in_path and code in _FORBIDDEN_IN_PATH:
            raise ValueError("an encoded '/', '\\' or NUL in the path")
        return f"%{code}"

    return _ESCAPE.sub(one, text)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: `/a/b/../c/./d` → `/a/c/d`; a `..` never climbs above the root."""
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result
