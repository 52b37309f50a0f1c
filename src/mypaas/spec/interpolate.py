"""Compose's interpolation: ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
``${VAR?err}``, ``${VAR:+alt}``, ``${VAR+alt}``, nested (``${A:-${B:-x}}``) and ``$$`` for a literal ``$``.

As docker compose does it: names are ``[A-Za-z_][A-Za-z0-9_]*``; a ``$`` that starts no variable (``5$``,
``$1``) is kept as it is, while a ``${`` that does not make one (``${}``, ``${A``) is an error; an unset
variable without a default is '' with a warning; only values are interpolated, never keys.

Variables come from the shell of the user running the CLI first (the CLI sends the ones the files refer
to), then from the project's env file (``.env`` or ``--env-file``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mypaas.errors import InvalidSpec

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_NESTING = 16

Lookup = Callable[[str], "str | None"]


class Variables:
    """The values ``${VAR}`` takes: the first of ``layers`` that has the name wins (the shell's, then the
    env file's). Remembers every name looked up (what the CLI must send) and which were unset."""

    def __init__(self, *layers: Mapping[str, str], used: set[str] | None = None) -> None:
        self.layers = layers
        self.used: set[str] = set() if used is None else used
        self.unset: dict[str, str] = {}  # name -> where it was first found unset

    def get(self, name: str) -> str | None:
        self.used.add(name)
        for layer in self.layers:
            if name in layer:
                return layer[name]
        return None

    def below(self, layer: Mapping[str, str]) -> Variables:
        """These variables, with ``layer`` filling the names they lack (an included file's env file)."""
        child = Variables(*self.layers, layer, used=self.used)
        child.unset = self.unset
        return child

    def values(self) -> dict[str, str]:
        """Every variable with its value, the first layer winning."""
        out: dict[str, str] = {}
        for layer in reversed(self.layers):
            out.update(layer)
        return out

    def warnings(self) -> list[str]:
        return [
            f"{where}: variable {name} is not set, so it is an empty string (as docker compose does)"
            for name, where in self.unset.items()
        ]


def substitute(text: str, variables: Variables, where: str) -> str:
    """``text`` with its variables replaced; ``where`` names the field in errors and warnings."""
    return _Substitution(variables, text, where).run(text, 0)


class _Substitution:
    def __init__(self, variables: Variables, template: str, where: str) -> None:
        self.variables = variables
        self.template = template
        self.where = where

    def run(self, text: str, depth: int) -> str:
        if depth > _MAX_NESTING:
            raise InvalidSpec(
                f"{self.where}: variables nested too deeply in {self.template!r}", field=self.where
            )
        out: list[str] = []
        start = 0
        while (dollar := text.find("$", start)) >= 0:
            out.append(text[start:dollar])
            after = text[dollar + 1 : dollar + 2]
            if after == "$":
                out.append("$")
                start = dollar + 2
            elif after == "{":
                end = _closing_brace(text, dollar + 1)
                if end < 0:
                    raise self.invalid()
                out.append(self.braced(text[dollar + 2 : end], depth))
                start = end + 1
            elif match := _NAME.match(text, dollar + 1):
                out.append(self.value(match[0]))
                start = match.end()
            else:  # not a variable: docker compose keeps the '$'
                out.append("$")
                start = dollar + 1
        out.append(text[start:])
        return "".join(out)

    def value(self, name: str) -> str:
        value = self.variables.get(name)
        if value is None:
            self.variables.unset.setdefault(name, self.where)
            return ""
        return value

    def braced(self, body: str, depth: int) -> str:
        match = _NAME.match(body)
        if match is None:
            raise self.invalid()
        name, rest = match[0], body[match.end() :]
        if not rest:
            return self.value(name)
        colon = rest.startswith(":")
        operator, argument = rest[1:2] if colon else rest[:1], rest[2:] if colon else rest[1:]
        if operator not in ("-", "+", "?"):
            raise self.invalid()
        value = self.variables.get(name)
        missing = value is None or (colon and value == "")
        if operator == "-":
            return self.run(argument, depth + 1) if missing else value or ""
        if operator == "+":
            return "" if missing else self.run(argument, depth + 1)
        if missing:
            reason = self.run(argument, depth + 1)
            raise InvalidSpec(
                f"variable {name} is required by {self.where}: {reason or 'it is not set'}", field=self.where
            )
        return value or ""

    def invalid(self) -> InvalidSpec:
        return InvalidSpec(
            f"invalid interpolation in {self.where}: {self.template!r} has a '${{' that starts no variable "
            "(write ${NAME}, ${NAME:-default}...; '$$' for a literal '$')",
            field=self.where,
        )


def _closing_brace(text: str, opening: int) -> int:
    """The index of the '}' closing the '{' at ``opening`` (every brace counts, as in docker compose)."""
    depth = 0
    index = opening
    while index < len(text):
        char = text[index]
        if char == "{":
            depth += 1
            index += 2  # docker compose skips the character after each '{'
            continue
        if char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def interpolate_tree(node: Any, variables: Variables, where: str) -> Any:
    """A copy of a loaded YAML tree with every string value interpolated (keys are left as they are)."""
    if isinstance(node, str):
        return substitute(node, variables, where)
    if isinstance(node, list):
        return [interpolate_tree(item, variables, f"{where}[{index}]") for index, item in enumerate(node)]
    if isinstance(node, dict):
        return {
            key: interpolate_tree(value, variables, f"{where}.{key}" if where else str(key))
            for key, value in node.items()
        }
    return node
