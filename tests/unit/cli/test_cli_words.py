"""What the CLI says to a new user: usage mistakes in one line, listings that say when they are empty,
close names suggested, and help texts that read well at 80 columns (issue 11, slice D)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from mypaas.cli.main import app
from tests.unit.cli.support import cli


def _leaves(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(the words that run it, the command) of every command under ``group``, hidden ones included."""
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


ROOT = typer.main.get_command(app)
LEAVES = list(_leaves(ROOT))
NEEDS_AN_ARGUMENT = [path for path, command in LEAVES if any(p.required for p in command.params)]


def test_the_walk_finds_the_commands() -> None:
    assert {("ps",), ("deploy",), ("domains", "add"), ("alerts", "add")} <= set(NEEDS_AN_ARGUMENT)


@pytest.mark.parametrize("path", NEEDS_AN_ARGUMENT, ids=" ".join)
def test_a_command_without_its_arguments_says_what_is_missing_in_one_line(path: tuple[str, ...]) -> None:
    result = cli(*path)

    assert result.exit_code == 2
    assert result.stdout == ""
    command = " ".join(("mypaas", *path))
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("error: missing ")
    assert result.stderr.endswith(f"; see '{command} --help'\n")


def test_missing_argument_and_option_lines() -> None:
    assert cli("ps").stderr == "error: missing argument APP; see 'mypaas ps --help'\n"
    assert cli("domains", "add", "hello").stderr == (
        "error: missing argument DOMAIN; see 'mypaas domains add --help'\n"
    )
    assert (
        cli("alerts", "add", "x").stderr == "error: missing option --kind; see 'mypaas alerts add --help'\n"
    )
    assert cli("ps", "--bogus", "x").stderr == "error: no such option: --bogus; see 'mypaas ps --help'\n"


def test_a_group_without_its_command_shows_its_help() -> None:
    result = cli("image")

    assert result.exit_code == 2
    assert "Usage: mypaas image" in result.stdout
