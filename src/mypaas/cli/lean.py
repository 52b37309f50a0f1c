"""The command line's start: Typer builds each command's options from its function's signature, and
building all of them took most of a command's start, so a run builds only the command it names."""

from __future__ import annotations

import copy

import typer


def only(root: typer.Typer, argv: list[str]) -> typer.Typer:
    """``root`` with just the command (or group) ``argv`` names: Typer builds each command's options
    from its function's signature, and building all of them took most of the CLI's start. The whole
    app for the top help, --version, or a name it does not know (Click then suggests the near ones)."""
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    if name is None:
        return root
    commands = [
        c
        for c in root.registered_commands
        if (c.name or typer.main.get_command_name(c.callback.__name__ if c.callback else "")) == name
    ]
    groups = [g for g in root.registered_groups if g.name == name]
    if not commands and not groups:
        return root
    lean = copy.copy(root)
    lean.registered_commands, lean.registered_groups = commands, groups
    return lean
