"""Text from the wire that will be stored: checked before any write, so that a call is refused (400)
rather than answered without its rows.

PostgreSQL refuses a NUL in a text column and any value longer than its column; SQLite's driver
refuses a lone surrogate (`"\\ud800"` decodes from JSON but cannot be encoded as UTF-8). Each of
these used to surface only at commit time, after the cards had been built.
"""
from __future__ import annotations

from typing import Any, Literal, overload

from cds_service.errors import InvalidRequest


def storable(value: str) -> bool:
    """No NUL or other C0/C1 control character except tab and newline, and valid UTF-8."""
    if not value.isprintable() and any(not (c.isprintable() or c in "\t\n\r") for c in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


@overload
def checked_text(value: Any, where: str, *, max_chars: int, required: Literal[True] = True) -> str: ...
@overload
def checked_text(value: Any, where: str, *, max_chars: int, required: bool) -> str | None: ...


def checked_text(value: Any, where: str, *, max_chars: int, required: bool = True) -> str | None:
    """`value` as a string that fits a column of `max_chars`; InvalidRequest (400) naming `where` otherwise."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRequest(f"'{where}' must be a non-empty string.", expression=where)
    if len(value) > max_chars:
        raise InvalidRequest(f"'{where}' is longer than {max_chars} characters.", expression=where)
    if not storable(value):
        raise InvalidRequest(f"'{where}' holds a control character or invalid Unicode.", expression=where)
    return value


def clipped(value: Any, width: int) -> Any:
    """A value from a verified but foreign source (a JWT claim, a URL path) made storable: control
    characters and lone surrogates replaced, cut to the column's width. Non-strings pass unchanged."""
    if not isinstance(value, str):
        return value
    if not storable(value):
        value = "".join(c if c.isprintable() else "\ufffd" for c in value)
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:width]
