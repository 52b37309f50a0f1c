"""Help texts that read well at any width: a prose paragraph written over several source lines becomes
one line that the terminal wraps (Typer keeps every source line break, so a paragraph broke raggedly at
80 columns); indented lines (examples, lists) stay as written, and must fit 80 columns."""

from __future__ import annotations

import inspect
import re
from typing import Any

EXAMPLE_WIDTH = 78  # an indented line fits 80 columns with the help's margin


def flow(text: str) -> str:
    """``text`` with each prose paragraph on one line; paragraphs with indented lines kept as they are.

    Typer shows the first paragraph, then dedents the rest as a docstring (``inspect.cleandoc``): when
    every line after the rest's first one is indented (`Examples:` then only examples), that would
    strip the examples' indent. A third line break after the first paragraph makes the rest start with
    an empty line, so that its `Examples:` line counts and the indent stays (the empty line is dropped).
    """
    first, *rest = (p.strip("\n") for p in re.split(r"\n\s*\n", inspect.cleandoc(text)))
    paragraphs = [_flowed(p) for p in (first, *rest)]
    return paragraphs[0] + ("\n\n\n" + "\n\n".join(paragraphs[1:]) if rest else "")


def _flowed(paragraph: str) -> str:
    if _preformatted(paragraph):
        return paragraph
    return " ".join(line.strip() for line in paragraph.splitlines())


def _preformatted(paragraph: str) -> bool:
    return paragraph.startswith("\b") or any(line.startswith(" ") for line in paragraph.splitlines())


def flow_all(command: Any) -> None:
    """Flow the help of ``command`` and of every command under it."""
    if command.help:
        command.help = flow(command.help)
    for sub in getattr(command, "commands", {}).values():
        flow_all(sub)
