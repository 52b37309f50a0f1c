"""The README's compose tables name every key of the compose-spec (as spec/schema.py holds it): a key the
schema gains and nobody places in the table fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mypaas.spec import schema

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Compose support")
    return text[start : text.index("\n### ", start + 1)]


def _named(section: str) -> set[str]:
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`([a-z_0-9*-]+)`", row.split(" | ")[0])}


@pytest.mark.parametrize(
    ("what", "keys"),
    [("top-level", schema.TOP.keys), ("service", schema.SERVICE.keys), ("deploy", schema.DEPLOY.keys)],
)
def test_every_compose_key_is_in_the_readme(what: str, keys: dict[str, object]) -> None:
    missing = sorted(set(keys) - _named(_section()))
    assert missing == [], f"{what} keys missing from the README's compose tables: {missing}"
