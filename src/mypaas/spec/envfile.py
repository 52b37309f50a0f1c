"""Env files (``.env``, ``--env-file``, a service's ``env_file``) read as docker compose reads them.

Each statement is ``KEY=VALUE`` (or ``KEY: VALUE``), ``export`` allowed; ``#`` starts a comment line. A
``KEY`` alone takes its value from the lookup (the shell, for ``.env``) or is left out. Unquoted values end
at the line's end or at `` #``; single-quoted values are literal; double-quoted ones know ``\\n``, ``\\t``,
``\\"``... Both quotes may span lines. Unquoted and double-quoted values are interpolated (``${VAR}``): from
the lookup first, then from the keys read above them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mypaas.errors import InvalidSpec
from mypaas.spec.interpolate import Variables, substitute
from mypaas.spec.yamlload import check_size

Lookup = Callable[[str], "str | None"]

_EXPORT = re.compile(r"export[ \t]+")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_ESCAPE = re.compile(r"\\(?:[abfnrtv\"\\$]|0[0-7]{0,3})")


def parse_env_file(text: str, field: str, lookup: Lookup | None = None) -> dict[str, str]:
    """The variables of an env file; ``field`` names it in errors (``.env``, ``env_file app.env``)."""
    check_size(text, field)
    return _Parser(text.removeprefix("\ufeff"), field, lookup or (lambda _: None)).parse()


class _Parser:
    def __init__(self, text: str, field: str, lookup: Lookup) -> None:
        self.text = text
        self.field = field
        self.lookup = lookup
        self.pos = 0
        self.values: dict[str, str] = {}

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def error(self, problem: str) -> InvalidSpec:
        return InvalidSpec(f"{self.field} line {self.line}: {problem}", field=self.field)

    def parse(self) -> dict[str, str]:
        while self.skip_blank_and_comments():
            key, inherited = self.key()
            if inherited:
                value = self.lookup(key)
                if value is not None:
                    self.values[key] = value
                continue
            self.values[key] = self.value()
        return self.values

    def skip_blank_and_comments(self) -> bool:
        text = self.text
        while self.pos < len(text):
            if text[self.pos].isspace():
                self.pos += 1
            elif text[self.pos] == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return True
        return False

    def key(self) -> tuple[str, bool]:
        """The key, and whether it stands alone (no '=': its value comes from the lookup)."""
        if match := _EXPORT.match(self.text, self.pos):
            self.pos = match.end()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "=:\n":
            self.pos += 1
        key = self.text[start : self.pos].strip()
        inherited = self.pos >= len(self.text) or self.text[self.pos] == "\n"
        if not key:
            raise self.error("expected KEY=VALUE, found no key")
        if " " in key or "\t" in key:
            raise self.error(f"a key cannot contain a space: {key!r}")
        bad = next((char for char in key if not (char.isalnum() or char in "_.-[]")), None)
        if bad is not None:
            raise self.error(f"unexpected character {bad!r} in variable name {key!r}")
        if not inherited:
            self.pos += 1
            while self.pos < len(self.text) and self.text[self.pos] in " \t":
                self.pos += 1
        return key, inherited

    def value(self) -> str:
        quote = self.text[self.pos : self.pos + 1]
        if quote not in ("'", '"'):
            end = self.text.find("\n", self.pos)
            end = len(self.text) if end < 0 else end
            raw = self.text[self.pos : end].split(" #", 1)[0].rstrip()
            self.pos = end
            return self.expand(raw)
        chars: list[str] = []
        index = self.pos + 1
        while index < len(self.text):
            char = self.text[index]
            if char == "\\" and index + 1 < len(self.text):
                following = self.text[index + 1]
                chars.append(following if following == quote else "\\" + following)
                index += 2
                continue
            if char == quote:
                self.pos = index + 1
                self.after_quote()
                raw = "".join(chars)
                return self.expand(_unescape(raw)) if quote == '"' else raw
            chars.append(char)
            index += 1
        raise self.error("unterminated quoted value")

    def after_quote(self) -> None:
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        rest = self.text[self.pos : end].strip()
        if rest and not rest.startswith("#"):
            raise self.error(f"unexpected text after the closing quote: {rest!r}")
        self.pos = end

    def expand(self, raw: str) -> str:
        if "$" not in raw:
            return raw
        variables = _FileVariables(self.lookup, self.values)
        return substitute(raw, variables, f"{self.field} line {self.line}")


class _FileVariables(Variables):
    """What a value of an env file interpolates: the lookup first, then the keys read above it."""

    def __init__(self, lookup: Lookup, values: dict[str, str]) -> None:
        super().__init__(values)
        self._lookup = lookup

    def get(self, name: str) -> str | None:
        value = self._lookup(name)
        return super().get(name) if value is None else value


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match[0]
        if escape == "\\$":
            return "$$"  # a literal '$', not interpolated
        if escape.startswith("\\0"):
            return chr(int(escape[2:] or "0", 8))
        return _ESCAPES[escape[1]]

    return _ESCAPE.sub(replace, text)
