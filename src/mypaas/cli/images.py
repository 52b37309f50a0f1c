"""``mypaas image``: images in the private registry (ls, rm) and images made from root filesystems."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from mypaas.cli import registry
from mypaas.cli.output import fail, follow, print_json, say
from mypaas.cli.params import JsonOpt, NoWait, api, platform_settings
from mypaas.errors import InvalidSpec

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient

image_app = typer.Typer(
    help="Images: the private registry's contents, and images from root filesystems.", no_args_is_help=True
)
image_app.command("ls")(registry.list_images)
image_app.command("rm")(registry.remove_image)


# -- images from root filesystems: import, snapshot, base --------------------------------------------

CHUNK = 1024 * 1024
MAX_SHOWN = 10  # secrets left out by a snapshot, named
ChangeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--change",
        "-c",
        metavar="INSTRUCTION",
        help="Set the image's config with a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
        "USER, VOLUME, WORKDIR); repeatable.",
        show_default=False,
    ),
]
RefArg = Annotated[str, typer.Argument(metavar="NAME:TAG", help="The image to make.", show_default=False)]


@image_app.command("import", no_args_is_help=True)
def import_archive(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE|-",
            help="A root filesystem archive: .tar, .tar.gz, .tgz, .tar.bz2, .bz2, .tar.xz, .txz "
            "(the compression is found from the content); - reads it from stdin.",
            show_default=False,
        ),
    ],
    ref: RefArg,
    change: ChangeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a root filesystem archive as an image.

    The archive streams to the manager, which checks every entry on its way to the engine.

    Refused: absolute paths, '..', links out of the root, decompression bombs, corrupt files.

    Device nodes (a `tar -cpzf base.tar.gz /` holds /dev's) are left out with one warning: the runtime
    gives every container its own /dev. Fifos are kept, as docker import keeps them.

    A refused archive leaves nothing behind.

    Examples:

      mypaas image import rootfs.tar.gz myapp/base:1.0
      tar -C rootfs -c . | mypaas image import - myapp/base:1.0 \\
          -c 'CMD ["/bin/sh"]' -c 'ENV LANG=C.UTF-8'
    """
    if file == "-":
        if sys.stdin.isatty():
            fail("give the archive on stdin, e.g. tar -C rootfs -c . | mypaas image import - NAME:TAG")
        stream, total, what = sys.stdin.buffer, None, "stdin"
    else:
        try:
            stream, what = open(file, "rb"), file  # noqa: SIM115 - closed below, after the upload
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}")
        st = os.fstat(stream.fileno())
        total = st.st_size if stat.S_ISREG(st.st_mode) else None
    with stream, api() as client:
        info = _upload(client, ref, _read(stream, what), total, change or [], f"importing {what}")
    _done(info, as_json)


@image_app.command(no_args_is_help=True)
def snapshot(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[ROOT] NAME:TAG",
            help="The folder to package (default /, this whole machine) and the image to make.",
            show_default=False,
        ),
    ],
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            "-e",
            metavar="PATTERN",
            help="Leave out a path inside ROOT (/var/cache/apt) or names anywhere ('*.pyc'); repeatable.",
            show_default=False,
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            "-i",
            metavar="PATH",
            help="Take a path left out as a secret anyway (/root/.ssh/authorized_keys); repeatable.",
            show_default=False,
        ),
    ] = None,
    one_file_system: Annotated[
        bool, typer.Option("--one-file-system", "-x", help="Stay on ROOT's file system (no other mounts).")
    ] = False,
    change: ChangeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Package a root filesystem (default /, this machine) as an image, with numeric owners.

    Left out: the contents of /proc, /sys, /dev, /run and /tmp (the folders stay, empty).

    Also left out: the MyPaas and Docker data folders, sockets, fifos, device nodes, vanished files.

    Left out as secrets (every host can pull the image), unless --include names them: /etc/shadow,
    /etc/shadow-, /etc/gshadow, /etc/gshadow-, /etc/ssh/ssh_host_*, /etc/ssl/private, /etc/docker/key.json,
    /root/.ssh, /home/*/.ssh, /root/.docker/config.json, /home/*/.docker/config.json, /root/.gnupg,
    /home/*/.gnupg, /root/.*_history, /home/*/.*_history, /var/lib/mypaas, /root/.local/share/mypaas,
    /home/*/.local/share/mypaas, /root/.config/mypaas, /home/*/.config/mypaas.

    Examples:

      mypaas image snapshot myhost/root:2024-06
      mypaas image snapshot /srv/rootfs myapp/base:1.0 \\
          -e /var/cache/apt -e '*.pyc'
    """
    if not 1 <= len(args) <= 2:
        raise typer.BadParameter("give [ROOT] NAME:TAG", param_hint="[ROOT] NAME:TAG")
    root, ref = (Path("/"), args[0]) if len(args) == 1 else (Path(args[0]), args[1])
    if not root.is_dir():
        fail(f"{root}: no such folder")
    for path in include or []:
        if not path.startswith("/"):
            fail(f"--include {path}: give a path inside ROOT from its top, e.g. /root/.ssh/authorized_keys")
    from mypaas.build.snapshot import machine_snapshot

    home = platform_settings().home
    snap = machine_snapshot(
        root, excludes=exclude or [], home=home, one_file_system=one_file_system, includes=include or []
    )
    with api() as client:
        info = _upload(client, ref, iter(snap), None, change or [], f"packaging {root}")
    if snap.secrets_left_out:
        shown = ", ".join(sorted(snap.secrets_left_out)[:MAX_SHOWN])
        more = (
            f" and {len(snap.secrets_left_out) - MAX_SHOWN} more"
            if len(snap.secrets_left_out) > MAX_SHOWN
            else ""
        )
        print(f"left out as secrets: {shown}{more} (--include PATH takes one)", file=sys.stderr)
    if snap.skipped_count:
        print(f"left out {snap.skipped_count} entries:", file=sys.stderr)
        for note in snap.skipped:
            print(f"  {note}", file=sys.stderr)
        if snap.skipped_count > len(snap.skipped):
            print(f"  ... and {snap.skipped_count - len(snap.skipped)} more", file=sys.stderr)
    _done(info, as_json)


@image_app.command(no_args_is_help=True)
def base(
    image: Annotated[
        str,
        typer.Argument(
            metavar="DISTRO:SUITE",
            help="debian:bookworm, debian:trixie, debian:bullseye, ubuntu:jammy ...",
            show_default=False,
        ),
    ],
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Keep the image if the engine has it already.")
    ] = False,
    no_wait: NoWait = False,
) -> None:
    """Build a minimal Debian or Ubuntu base image with debootstrap, as mypaas/DISTRO:SUITE.

    It runs on the manager's host (debootstrap needs root); its output streams here. No Docker Hub needed.

    Example:  mypaas image base debian:bookworm
    """
    with api() as client:
        op = client.base_image(image, if_missing=if_missing)
        if no_wait:
            say(f"building mypaas/{image} (operation {op['id']})")
            return
        done = follow(client, op, f"building mypaas/{image}")
    say(done.get("message") or f"built mypaas/{image}")


def _read(stream: BinaryIO, what: str) -> Iterator[bytes]:
    try:
        while piece := stream.read(CHUNK):
            yield piece
    except OSError as exc:
        raise InvalidSpec(f"cannot read {what}: {exc.strerror or exc}", field="FILE") from exc


def _upload(
    client: ApiClient, ref: str, chunks: Iterator[bytes], total: int | None, changes: list[str], title: str
) -> dict[str, Any]:
    """Send the archive, with a progress bar of the bytes sent on a terminal."""
    try:
        if not sys.stderr.isatty():
            return client.import_image(ref, chunks, changes, size=total)
        return _upload_with_progress(client, ref, chunks, total, changes, title)
    except KeyboardInterrupt:
        print("interrupted: nothing was imported", file=sys.stderr)
        raise typer.Exit(130) from None


def _upload_with_progress(
    client: ApiClient, ref: str, chunks: Iterator[bytes], total: int | None, changes: list[str], title: str
) -> dict[str, Any]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(title, total=total)

        def counted() -> Iterator[bytes]:
            for piece in chunks:
                bar.advance(task, len(piece))
                yield piece
            bar.update(task, description="sent; the engine finishes the import")

        return client.import_image(ref, counted(), changes, size=total)


def _done(info: dict[str, Any], as_json: bool) -> None:
    for warning in info.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
    if as_json:
        print_json(info)
        return
    engine = f"engine id {str(info['id'])[:19]} ({registry.human(info['size'])})"
    copy = info.get("registry")
    if copy is None:
        say(f"imported {info['ref']} — {engine}; the private registry is off")
    elif copy.get("error"):
        say(f"imported {info['ref']} — {engine}; not in the registry: {copy['error']}")
    else:
        digest, size = copy["digest"][:19], registry.human(copy["size"])
        say(f"imported {info['ref']} — registry digest {digest} ({size} compressed), {engine}")
