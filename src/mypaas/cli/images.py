"""``mypaas image``: images in the private registry (ls, rm) and images made from root filesystems."""

from __future__ import annotations

import typer

from mypaas.cli import registry

image_app = typer.Typer(
    help="Images: the private registry's contents, and images from root filesystems.", no_args_is_help=True
)
image_app.command("ls")(registry.list_images)
image_app.command("rm")(registry.remove_image)
