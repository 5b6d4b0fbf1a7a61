"""A TOML file's text, read again for error messages: where each key is written (`key_lines`) and which
known key a misspelt one was meant to be (`did_you_mean`). The service-file loader and the settings use it.

`tomllib` gives values, not positions, so `key_lines` scans the text that tomllib has already accepted.
Paths are tuples of keys and array indices, indexed as the parsed document is:
`("cards", "rules", 2, "min_score")` for `min_score` in the third `[[cards.rules]]` table. A table's path
maps to its header's line; an array element's to the line where the element starts. A path the scanner
cannot place is left out (the caller reports without a line): it never raises.
"""
from __future__ import annotations

import difflib
import re
from typing import Iterable

Path = tuple[str | int, ...]
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_lines(text: str) -> dict[Path, int]:
    """Every key path of the TOML document `text` → its 1-based line."""
    scanner = _Scanner(text)
    try:
        scanner.document()
    except (AttributeError, IndexError, ValueError):  # not valid TOML after all: keep what was placed
        pass
    return scanner.found


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """The known name closest to `word` (a typo, a missing letter, a plural), or None. The cutoff is the
    conformance checker's (GEN-4): close enough for `min_scor`, not so loose that `window` suggests `kind`."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return close[0] if close else None


class _Scanner:
    """A small reader of TOML 1.0 structure (headers, keys, arrays, inline tables); values are skipped."""

    def __init__(self, text: str):
        self.s, self.i, self.line = text, 0, 1
        self.found: dict[Path, int] = {}
        self.arrays: dict[Path, int] = {}  # an array of tables → the index of its latest table

    def document(self) -> None:
        table: Path = ()
        while True:
            self._blank(newlines=True)
            if self.i >= len(self.s):
                return
            if self.s.startswith("[[", self.i):
                self._advance(2)
                path = self._resolve(self._key())
                self._expect("]]")
                index = self.arrays.get(path, -1) + 1
                self.arrays[path] = index
                self._place_prefixes(path)
                table = path + (index,)
                self.found[table] = self.line
            elif self.s.startswith("[", self.i):
                self._advance(1)
                table = self._resolve(self._key())
                self._expect("]")
                self._place_prefixes(table)
            else:
                self._pair(table)

    # ---- structure ----------------------------------------------------------------------------------

    def _resolve(self, keys: list[str]) -> Path:
        """A header's path: a table under an array of tables belongs to its latest element
        (`[cards.rules.x]` after `[[cards.rules]]` is `cards.rules[last].x`)."""
        out: Path = ()
        for key in keys[:-1]:
            out += (key,)
            if out in self.arrays:
                out += (self.arrays[out],)
        return out + (keys[-1],)

    def _place_prefixes(self, path: Path) -> None:
        for n in range(1, len(path) + 1):
            self.found.setdefault(path[:n], self.line)

    def _pair(self, table: Path) -> None:
        line = self.line
        path = table + tuple(self._key())
        self._place_prefixes(path[:-1])
        self.found[path] = line
        self._blank(newlines=False)
        self._expect("=")
        self._blank(newlines=False)
        self._value(path)

    def _key(self) -> list[str]:
        parts = []
        while True:
            self._blank(newlines=False)
            c = self.s[self.i]
            if c == '"':
                parts.append(self._basic_string())
            elif c == "'":
                parts.append(self._literal_string())
            else:
                m = _BARE_KEY.match(self.s, self.i)
                if m is None:
                    raise ValueError(f"no key at line {self.line}")
                parts.append(m.group())
                self._advance(m.end() - self.i)
            self._blank(newlines=False)
            if not self.s.startswith(".", self.i):
                return parts
            self._advance(1)

    def _value(self, path: Path) -> None:
        if self.s.startswith(('"""', "'''"), self.i):
            self._multiline_string()
        elif self.s[self.i] == '"':
            self._basic_string()
        elif self.s[self.i] == "'":
            self._literal_string()
        elif self.s[self.i] == "[":
            self._array(path)
        elif self.s[self.i] == "{":
            self._inline_table(path)
        else:  # a number, boolean or date: up to the next delimiter
            start = self.i
            while self.i < len(self.s) and self.s[self.i] not in ",]}\n#":
                self._advance(1)
            if self.i == start:
                raise ValueError(f"no value at line {self.line}")

    def _array(self, path: Path) -> None:
        self._advance(1)
        index = 0
        while True:
            self._blank(newlines=True)
            if self.s[self.i] == "]":
                self._advance(1)
                return
            self.found[path + (index,)] = self.line
            self._value(path + (index,))
            self._blank(newlines=True)
            if self.s[self.i] == ",":
                self._advance(1)
                index += 1
            elif self.s[self.i] != "]":
                raise ValueError(f"unexpected {self.s[self.i]!r} in an array at line {self.line}")

    def _inline_table(self, path: Path) -> None:
        self._advance(1)
        while True:
            self._blank(newlines=True)
            if self.s[self.i] == "}":
                self._advance(1)
                return
            self._pair(path)
            self._blank(newlines=True)
            if self.s[self.i] == ",":
                self._advance(1)
            elif self.s[self.i] != "}":
                raise ValueError(f"unexpected {self.s[self.i]!r} in an inline table at line {self.line}")

    # ---- lexing -------------------------------------------------------------------------------------

    def _advance(self, n: int) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def _expect(self, token: str) -> None:
        self._blank(newlines=False)
        if not self.s.startswith(token, self.i):
            raise ValueError(f"expected {token!r} at line {self.line}")
        self._advance(len(token))

    def _blank(self, *, newlines: bool) -> None:
        """Skip spaces, tabs and comments (and line breaks when `newlines`)."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self._advance(1)
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            else:
                return

    def _basic_string(self) -> str:
        self._advance(1)
        out = []
        while self.s[self.i] != '"':
            if self.s[self.i] == "\\":
                out.append(self.s[self.i + 1])
                self._advance(2)
            else:
                out.append(self.s[self.i])
                self._advance(1)
        self._advance(1)
        return "".join(out)

    def _literal_string(self) -> str:
        end = self.s.index("'", self.i + 1)
        text = self.s[self.i + 1:end]
        self._advance(end + 1 - self.i)
        return text

    def _multiline_string(self) -> None:
        quote = self.s[self.i:self.i + 3]
        j = self.i + 3
        while True:
            j = self.s.index(quote, j)
            slashes = 0
            while quote == '"""' and self.s[j - 1 - slashes] == "\\":
                slashes += 1
            if slashes % 2 == 0:  # an odd number of backslashes escapes the first quote
                break
            j += 1
        while self.s.startswith(quote[0], j + 3):  # up to two quotes may close the content: """a""""
            j += 1
        self._advance(j + 3 - self.i)
