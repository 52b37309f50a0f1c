"""The command line's start and end: Typer builds each command's options from its function's signature,
and building (and importing) all of them took most of a command's start, so a run imports and builds
only the command it names; and a run ends without tearing down the modules it loaded."""

from __future__ import annotations

import atexit
import contextlib
import copy
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import typer
from typer.models import CommandFunctionType


class Later:
    """A command or group of another module, registered by name and imported when a run names it
    (or when the whole app is built: the top help, a test): ``target`` is "module:attribute"."""

    def __init__(self, name: str, target: str, *, group: bool = False, **options: Any) -> None:
        self.name, self.target, self.group, self.options = name, target, group, options

    def info(self) -> Any:
        """The CommandInfo or TyperInfo Typer itself makes of it."""
        module, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        scratch = typer.Typer()
        if self.group:
            scratch.add_typer(found, name=self.name, **self.options)
            return scratch.registered_groups[0]
        scratch.command(self.name, **self.options)(found)
        return scratch.registered_commands[0]


class LazyTyper(typer.Typer):
    """A Typer whose ``later`` commands and groups stay unimported until needed: reading its lists
    (what building the whole app does) imports them all, in their place; ``named`` only those named."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._commands: list[Any] = []
        self._groups: list[Any] = []
        self._plain = 0  # >0 while Typer itself appends: no import for that
        super().__init__(*args, **kwargs)

    @property
    def registered_commands(self) -> list[Any]:
        return self._resolved(self._commands)

    @registered_commands.setter
    def registered_commands(self, value: list[Any]) -> None:
        self._commands = value

    @property
    def registered_groups(self) -> list[Any]:
        return self._resolved(self._groups)

    @registered_groups.setter
    def registered_groups(self, value: list[Any]) -> None:
        self._groups = value

    def command(self, *args: Any, **kwargs: Any) -> Callable[[CommandFunctionType], CommandFunctionType]:
        decorate = super().command(*args, **kwargs)

        def decorator(f: CommandFunctionType) -> CommandFunctionType:
            with self._as_is():
                return decorate(f)

        return decorator

    def add_typer(self, *args: Any, **kwargs: Any) -> None:
        with self._as_is():
            super().add_typer(*args, **kwargs)

    def later(self, *entries: Later) -> None:
        """Register commands and groups of other modules, imported when needed."""
        for entry in entries:
            (self._groups if entry.group else self._commands).append(entry)

    def named(self, name: str) -> tuple[list[Any], list[Any]]:
        """The commands and groups called ``name``, imported if they were ``later`` ones."""

        def called(c: Any) -> str:
            if isinstance(c, Later):
                return c.name
            return str(c.name or typer.main.get_command_name(c.callback.__name__ if c.callback else ""))

        commands = [c.info() if isinstance(c, Later) else c for c in self._commands if called(c) == name]
        groups = [g.info() if isinstance(g, Later) else g for g in self._groups if called(g) == name]
        return commands, groups

    @contextlib.contextmanager
    def _as_is(self) -> Iterator[None]:
        self._plain += 1
        try:
            yield
        finally:
            self._plain -= 1

    def _resolved(self, entries: list[Any]) -> list[Any]:
        if not self._plain:
            entries[:] = [e.info() if isinstance(e, Later) else e for e in entries]
        return entries


def only(root: LazyTyper, argv: list[str]) -> typer.Typer:
    """``root`` with just the command (or group) ``argv`` names, the only one imported and built: Typer
    builds each command's options from its function's signature, and building (and importing) all of
    them took most of the CLI's start. The whole app for the top help, --version, or a name it does not
    know (Click then suggests the near ones)."""
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    if name is None:
        return root
    commands, groups = root.named(name)
    if not commands and not groups:
        return root
    lean = copy.copy(root)
    lean.registered_commands, lean.registered_groups = commands, groups
    return lean


def leave(code: object) -> NoReturn:
    """End the process as the interpreter would (the threads that are not daemons finish, the atexit
    handlers run, the output is flushed), less tearing down every module it loaded: ~20 ms of each
    run's end (more under load), for nothing. ``code``: a SystemExit's (None: 0; a text: say it, 1)."""
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away (`mypaas ls | head`): as Python itself says it
        code = code or 120
    os._exit(code or 0)
