"""The platform commands: `up`, `down`, `status`, and `manager run` (the manager in the foreground)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli.output import ago, fail, print_json, say, table
from mypaas.cli.params import JsonOpt, api, app_url, platform_settings
from mypaas.errors import BackendError

if TYPE_CHECKING:
    from mypaas.settings import Settings

manager_app = typer.Typer(help="Run the platform's processes (advanced).", no_args_is_help=True)


def up(
    boot: Annotated[
        bool,
        typer.Option(
            "--boot",
            help="Also start the platform at boot: where systemd runs (as root), install and enable the "
            "unit mypaas.service; elsewhere say what to add to the init system. `make up` passes it.",
        ),
    ] = False,
) -> None:
    """Start the platform (the manager, which runs the router and the registry).

    The manager serves the REST API and runs the reconcile loop. It needs a Docker engine.

    `make up` installs and starts everything (it runs `mypaas up --boot`). Running `mypaas up` again is
    harmless. Where systemd has the platform's unit, systemd starts the manager and restarts it when it
    fails; `mypaas manager unit` prints that unit.

    Examples:

      mypaas up
      sudo mypaas up --boot    # and at every boot too
    """
    from mypaas.cli import daemon
    from mypaas.cli.units import Systemd, at_boot

    s = platform_settings()
    systemd = Systemd()
    boot_line = at_boot(s, systemd) if boot else ""
    if daemon.api_healthy(s):
        say("MyPaas is already running")
    else:
        _check_engine(s)
        try:
            started = daemon.start_manager(s, systemd)
        except (RuntimeError, OSError) as exc:
            raise BackendError(f"the manager did not start: {exc}") from exc
        say("MyPaas is up" if started else "MyPaas is already running")
    say(f"  API:          {s.api_url}  (OpenAPI docs: {s.api_url}/api/v1/docs)")
    say(f"  dashboard:    {s.api_url}/  (user admin once `mypaas user passwd admin` set a password,")
    say("                or the admin token)")
    say(f"  admin token:  {s.token_path}")
    say(f"  apps at:      {app_url('APP', s)}")
    if s.registry_enabled:
        login = f"docker login {s.registry_addr}: any user, an API token as the password"
        say(f"  registry:     {s.registry_addr}  ({login})")
    if boot_line:
        say(boot_line)
    say("Deploy the example:  mypaas deploy hello examples/hello")


def _check_engine(s: Settings) -> None:
    if not _engine_answers(s):
        raise BackendError(
            f"the Docker engine at {s.docker_url} does not answer: run `make up` (installs and starts it) "
            "or start dockerd (`sudo systemctl start docker`)"
        )


def _engine_answers(s: Settings) -> bool:
    from mypaas.manager.offline import engine_answers

    return engine_answers(s)


def down() -> None:
    """Stop the manager, the registry and the router; apps keep running.

    `mypaas up` adopts the running apps again.
    """
    from mypaas.cli import daemon
    from mypaas.cli.units import Systemd

    s = platform_settings()
    systemd = Systemd()
    try:
        stopped = (systemd.manages(s) and systemd.stop()) or daemon.stop_manager(s)
    except PermissionError:
        fail("not allowed to stop the manager: run as the user that ran `mypaas up`")
    if not stopped and daemon.api_healthy(s):
        fail(f"a manager answers at {s.api_url} but was not started from {s.home}: stop it where it runs")
    try:
        daemon.stop_router(s)
    except PermissionError:
        fail("not allowed to stop the router: run as the user that ran `mypaas up`")
    say("manager stopped" if stopped else "manager was not running")
    for name in _stop_registries(s):
        say(f"{name} stopped")
    say("router stopped; apps keep running")


def _stop_registries(s: Settings) -> list[str]:
    from mypaas.manager.offline import stop_registries

    try:
        return stop_registries(s)
    except PermissionError:
        fail("not allowed to stop the registry: run as the user that ran `mypaas up`")


def status(as_json: JsonOpt = False) -> None:
    """Show the health of the platform's components.

    Manager, Docker engine, router and reconcile loop. Exits 1 when the manager is down.
    """
    from mypaas.cli.client import ApiUnreachable

    try:
        with api() as client:
            data = client.status()
    except ApiUnreachable as exc:
        data = _offline_status(exc.message)
    if as_json:
        print_json(data)
    else:
        rows = [
            [name, "ok" if part.get("healthy") else "DOWN", _detail(name, part)]
            for name, part in data["components"].items()
        ]
        table(["COMPONENT", "HEALTH", "DETAILS"], rows)
        tls = data.get("tls") or {}
        if tls.get("ca_fingerprint"):
            serving = "served beyond loopback" if tls.get("serving") else "loopback only: plain HTTP"
            say(f"platform CA: {tls['ca_fingerprint']} ({serving})")
    if not data["components"]["manager"]["healthy"]:
        raise typer.Exit(1)


def _offline_status(reason: str) -> dict[str, Any]:
    from mypaas.manager.offline import offline_status

    return offline_status(platform_settings(), reason)


def _detail(name: str, part: dict[str, Any]) -> str:
    if part.get("error"):
        return str(part["error"])
    if name == "manager":
        since = f", started {ago(part['since'])}" if part.get("since") else ""
        return f"API at {part.get('api')}{since}"
    if name == "engine":
        backend = f"backend {part['backend']}, " if part.get("backend") else ""
        return f"{backend}engine at {part.get('url')}"
    if name == "router":
        return f"port {part.get('port')}"
    if name == "reconcile":
        return f"last pass {ago(part.get('last_pass'))}" if part.get("last_pass") else "no pass yet"
    return ""


@manager_app.command("run")
def manager_run() -> None:
    """Run the manager in the foreground (what `mypaas up` starts in the background)."""
    from mypaas.api.server import serve

    serve(platform_settings())


@manager_app.command("unit")
def manager_unit() -> None:
    """Print the systemd unit that runs this platform's manager (what `mypaas up --boot` installs).

    Example:  mypaas manager unit > /etc/systemd/system/mypaas.service
    """
    import os
    import sys

    from mypaas.cli.units import render

    sys.stdout.write(render(platform_settings(), sys.executable, os.environ))
