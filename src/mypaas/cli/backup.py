"""`mypaas backup` (the platform in one encrypted archive, made by the manager while it runs) and
`mypaas restore` (that archive made this machine's platform, the manager stopped meanwhile)."""

from __future__ import annotations

import os
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Context

from mypaas.cli.output import ago, fail, print_json, say
from mypaas.cli.params import JsonOpt, api, platform_settings


class _CreateByDefault(TyperGroup):
    """`mypaas backup [FILE]` makes a backup; `mypaas backup schedule` is the schedule's command."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["create", *args]
        return super().parse_args(ctx, args)


backup_app = typer.Typer(
    cls=_CreateByDefault,
    help="Back the whole platform up into one encrypted archive (`mypaas backup FILE`), or schedule it.",
)

PassFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file", help="Read the passphrase from this file's first line (else a prompt)."
    ),
]


def read_passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            fail(f"cannot read the passphrase file {path}: {exc.strerror or exc}")
        return lines[0] if lines else ""
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


def _size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@backup_app.command("create", hidden=True)
def create(
    file: Annotated[
        Path | None, typer.Argument(help="Where to write it (default: mypaas-backup-DATE.tar).")
    ] = None,
    with_images: Annotated[bool, typer.Option("--with-images", help="Add the registry's data.")] = False,
    with_volumes: Annotated[
        bool,
        typer.Option("--with-volumes", help="Add the apps' named volumes, copied live (see below)."),
    ] = False,
    passphrase_file: PassFile = None,
) -> None:
    """Back the platform up into one archive (admin only).

    The archive holds a consistent copy of the state store (apps, releases, config, secrets, domains,
    alerts, users, teams, tokens), the platform's keys and certificates and its settings, all encrypted
    with the passphrase; with --with-images the registry's data (every release's images), with
    --with-volumes the apps' named volumes. Deploys go on meanwhile.

    Volumes are copied live: the apps keep running and may write while their files are read. For a
    consistent copy of a database, stop the app first (mypaas stop APP) or back up its own dump.

    Examples:
      mypaas backup                  # writes mypaas-backup-DATE-TIME.tar here
      mypaas backup /srv/b/today.tar --with-images --with-volumes
      mypaas backup today.tar --passphrase-file ~/.mypaas-pass
    """
    passphrase = read_passphrase(passphrase_file, confirm=passphrase_file is None)
    target = file or Path(time.strftime("mypaas-backup-%Y%m%d-%H%M%S.tar"))
    partial = target.with_name(target.name + ".part")
    body = {"passphrase": passphrase, "with_images": with_images, "with_volumes": with_volumes}
    try:
        with api() as client, open(partial, "wb") as out:
            _follow(client.backup(body), out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    say(f"backup written to {target} ({_size(target.stat().st_size)})")


@backup_app.command("schedule")
def schedule(
    folder: Annotated[
        str | None, typer.Option("--dir", help="Where the manager writes them (absolute).")
    ] = None,
    every: Annotated[str, typer.Option("--every", help="How often: 90m, 24h, 7d.")] = "24h",
    keep: Annotated[int, typer.Option("--keep", help="How many archives are kept (oldest removed).")] = 7,
    with_images: Annotated[bool, typer.Option("--with-images", help="Add the registry's data.")] = False,
    with_volumes: Annotated[bool, typer.Option("--with-volumes", help="Add the apps' volumes.")] = False,
    off: Annotated[bool, typer.Option("--off", help="Stop the scheduled backups.")] = False,
    passphrase_file: PassFile = None,
    as_json: JsonOpt = False,
) -> None:
    """Show, set or stop scheduled backups (made by the manager; admin only).

    The passphrase is kept sealed with the platform key (secrets.key) so that the manager can use it
    unattended: whoever holds the data folder can open these archives. Keep copies elsewhere.

    Examples:
      mypaas backup schedule         # show it
      mypaas backup schedule --dir /srv/backups --every 24h --keep 7
      mypaas backup schedule --off
    """
    with api() as client:
        if off:
            data = client.backup_schedule(off=True)
        elif folder is not None:
            body = {
                "dir": folder,
                "every": every,
                "keep": keep,
                "passphrase": read_passphrase(passphrase_file, confirm=passphrase_file is None),
                "with_images": with_images,
                "with_volumes": with_volumes,
            }
            data = client.backup_schedule(body)
        else:
            data = client.backup_schedule()
    if as_json:
        print_json(data)
    elif not data.get("enabled"):
        say("no scheduled backups")
    else:
        parts = " with images" * bool(data.get("with_images")) + " with volumes" * bool(
            data.get("with_volumes")
        )
        say(f"every {_every(data['every_s'])} into {data['dir']}, the newest {data['keep']} kept{parts}")
        last = (
            f"{ago(data['last'])}: {data.get('last_error') or data.get('last_file')}"
            if data.get("last")
            else "none yet"
        )
        say(f"last backup: {last}")


def _every(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:.0f}s"


class _Tee:
    """A file-like reader over the downloaded pieces that writes what it reads to ``out``."""

    def __init__(self, pieces: Iterator[bytes], out: IO[bytes]) -> None:
        self._pieces, self._out, self._buf, self._pos = pieces, out, b"", 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) - self._pos < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buf, self._pos = self._buf[self._pos :] + piece, 0  # once per piece, not per read
        end = len(self._buf) if n < 0 else min(len(self._buf), self._pos + n)
        data, self._pos = self._buf[self._pos : end], end
        self._out.write(data)
        return data


def _follow(pieces: Iterator[bytes], out: IO[bytes]) -> None:
    """Write the archive while reading its entries: each part named with its size when it starts."""
    tee = _Tee(pieces, out)
    import json

    with tarfile.open(fileobj=tee, mode="r|") as tar:  # type: ignore[call-overload]
        first = tar.next()
        f = tar.extractfile(first) if first is not None else None
        manifest: dict[str, Any] = json.loads(f.read()) if f is not None else {}
        sizes = {p["name"]: p.get("size") for p in manifest.get("parts", [])}
        current = ""
        for member in tar:
            name = (
                member.name[len("data/") : member.name.rindex("/")] if member.name.startswith("data/") else ""
            )
            if name and name != current:
                current = name
                _BAR.start(name, sizes.get(name))
            _BAR.advance(member.size)
    _BAR.done()
    tee.read()  # the end blocks


def restore(
    file: Annotated[Path, typer.Argument(help="The archive `mypaas backup` wrote.")],
    passphrase_file: PassFile = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Replace the apps this platform has.")] = False,
) -> None:
    """Make this machine's platform the one in a backup archive.

    Run it on this machine (where the data folder is), after `make up`. The archive is read and checked
    whole first (a wrong passphrase or a damaged archive changes nothing); then the manager stops (through
    systemd when `mypaas up --boot` installed its unit), the volume names and the archive's images are
    checked, the releases' images are loaded from the archive's registry data (without --with-images
    they must still be on this engine or pullable), the apps' volumes are made again (the old ones of
    the same name removed one by one; a failure names those already replaced), the state is swapped in
    whole, and the manager starts again and redeploys every app. A platform that has apps already is
    replaced only with --yes.

    Example:
      mypaas restore mypaas-backup-20261205-140000.tar
      mypaas restore today.tar --passphrase-file ~/.mypaas-pass --yes
    """
    from mypaas.cli import daemon
    from mypaas.cli.units import Systemd
    from mypaas.manager.backup import restore as r
    from mypaas.manager.backup.archive import read_manifest
    from mypaas.manager.backup.replace import Progress

    s = platform_settings()
    passphrase = read_passphrase(passphrase_file, confirm=False)
    try:
        src = open(file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    old_platform, old_apps = r.current_apps(s)
    with src:
        if old_apps and not yes:  # asked before the archive is read whole: its manifest names its apps
            _refuse(old_apps, [str(a) for a in read_manifest(src).get("apps", [])])
        src.seek(0)
        say(f"reading {file} ({_size(os.fstat(src.fileno()).st_size)})")
        staged = r.stage(s, src, passphrase, _watch)
    systemd = Systemd()  # `mypaas up --boot`'s unit: stopped and started through systemd, as down/up do
    progress = Progress()
    try:
        say("stopping the platform")
        daemon.halt_manager(s, systemd)  # gone for sure before the engine is touched
        daemon.stop_router(s)
        r.stop_registries(s)
        _put_in_place(s, staged, old_platform, old_apps, progress)
    except BaseException:
        r.drop(s)  # not swapped in: the old state stands, and its manager starts again
        damage = progress.damage()
        if damage:
            say(f"the restore failed before the state was replaced, but {damage}: starting the old platform")
        else:
            say("the restore failed before the state was replaced: starting the platform as it was")
        daemon.start_manager(s, systemd)
        raise
    say("starting the platform")
    daemon.start_manager(s, systemd)
    say(f"restored {len(staged.apps)} app(s): {', '.join(staged.apps) or 'none'}; they are being redeployed")


def _refuse(old_apps: list[str], new_apps: list[str]) -> None:
    shown = ", ".join(old_apps[:10]) + (" ..." if len(old_apps) > 10 else "")
    fail(
        f"this platform has {len(old_apps)} app(s) ({shown}): restoring replaces them (and their state) "
        f"with the archive's {len(new_apps)} app(s); run again with --yes to do so"
    )


def _put_in_place(s: Any, staged: Any, old_platform: str | None, old_apps: list[str], progress: Any) -> None:
    """The engine's steps in replace.py's order (the old data goes last), then the swap."""
    from mypaas.manager.backup import replace as e
    from mypaas.manager.backup import restore as r

    with r.offline_engine(s) as (backend, copies, helper):
        e.check_volumes(backend, old_platform, staged)
        e.check_images(staged)
        pulled = r.restore_images(s, staged, copies, say)
        if pulled:
            say(f"{pulled} image(s) loaded from the archive's registry data")
        e.check_volumes(backend, old_platform, staged)  # the last check before anything goes
        e.stop_apps(backend, old_platform, progress)
        if staged.volumes:
            say(f"restoring {len(staged.volumes)} volume(s)")
            e.replace_volumes(backend, old_platform, staged, copies, helper, progress, _watch)
        e.drop_old_apps(backend, old_platform, old_apps, staged)
    r.commit(s, staged)
    say("the restored state is in place")


def _watch(part: dict[str, Any], content: Iterator[bytes]) -> Iterator[bytes]:
    _BAR.start(str(part["name"]), part.get("size"))
    for piece in content:
        _BAR.advance(len(piece))
        yield piece
    _BAR.done()


class _Bar:
    """Each part's line (its name and size, before it starts) and, on a terminal, a progress bar."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def start(self, name: str, size: int | None) -> None:
        self.done()
        say(f"  {name} ({_size(size)})")
        if sys.stdout.isatty():
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            columns = (TextColumn("    "), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            self._progress = Progress(*columns, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(name, total=size)

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


_BAR = _Bar()
