"""Command groups whose listing is the default: `mypaas config APP`, `domains APP` and `secrets APP` list
as `config ls APP`, `domains ls APP` and `secrets ls APP` do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Context


class ListByDefault(TyperGroup):
    """A group whose first argument, when it is not one of its commands, means ``ls`` (`domains APP`)."""

    default_command = "ls"

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)
