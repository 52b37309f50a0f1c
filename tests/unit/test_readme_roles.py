"""The README's role table is the policy table: one row per rule, naming every operation that has it, in
the order of policy.RULES. A new operation or a changed rule fails here until the README says so."""

from __future__ import annotations

from pathlib import Path

from mypaas.manager.identity.policy import RULES, Rule, Scope

README = Path(__file__).parents[2] / "README.md"
START = "<!-- roles: generated from mypaas.manager.identity.policy.RULES -->"
END = "<!-- /roles -->"
ORDER = [Scope.PUBLIC, Scope.USER, Scope.LISTING, Scope.APP, Scope.TEAM, Scope.ADMIN]


def role_table() -> list[str]:
    """The table as the README holds it (Markdown, one row per distinct rule)."""
    groups: dict[Rule, list[str]] = {}
    for operation, rule in RULES.items():
        groups.setdefault(rule, []).append(operation)
    rows = sorted(groups.items(), key=lambda item: (ORDER.index(item[0].scope), item[0].role or 0))
    lines = ["| needs | operations (the REST API's operation ids) |", "|---|---|"]
    lines += [f"| {rule.describe()} | {', '.join(f'`{op}`' for op in ops)} |" for rule, ops in rows]
    return lines


def readme_table() -> list[str]:
    text = README.read_text()
    assert START in text and END in text, f"README.md has no {START} … {END} block"
    return text.split(START, 1)[1].split(END, 1)[0].strip().splitlines()


def test_the_readme_role_table_matches_the_policy() -> None:
    expected = role_table()
    assert readme_table() == expected, "update README.md's role table to:\n" + "\n".join(expected)


def test_every_operation_is_in_the_table_once() -> None:
    named = [cell.strip("` ") for row in readme_table()[2:] for cell in row.split("|")[2].split(",")]
    assert sorted(named) == sorted(RULES)
