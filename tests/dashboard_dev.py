"""A dashboard to look at while changing its pages, without Docker: the real API and dashboard over the
FAKE backend and router of the unit tests (nothing runs; instances are pretend). For developers only —
browser tests, screenshots and the benchmark use a real platform (tests/browser/conftest.py).

    python -m tests.dashboard_dev [--port 8765] [--home DIR]

Users: admin / correct-horse-42 (platform admin), vic / battery-staple-42 (viewer in team default).
A few apps are deployed and kept converging, so pages have something to show."""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.releases import DeployRequest
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from mypaas.spec.compose import single_image_spec

ADMIN = ("admin", "correct-horse-42")
VIEWER = ("vic", "battery-staple-42")


def _seed(platform: Platform) -> None:
    identity = platform.identity
    if any(u["name"] == ADMIN[0] for u in identity.users()):
        identity.set_password(identity.principal_of(platform.admin_token), ADMIN[0], ADMIN[1])
    else:
        identity.add_user(ADMIN[0], ADMIN[1], admin=True)
    identity.add_user(VIEWER[0], VIEWER[1])
    identity.add_member("default", VIEWER[0], Role.VIEWER)
    for app, ref in (("shop", "web:1"), ("blog", "web:1"), ("api", "web:2")):
        spec = single_image_spec(ref, port=80)
        platform.releases.deploy(
            app, DeployRequest(spec=spec, contexts={}, user="admin", description="Deploy")
        )


def _converge(platform: Platform, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        platform.reconciler.pass_once()
        platform.reconciler.tracker.check_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="mypaas-dash-"))
    backend = FakeBackend()
    for ref in ("web:1", "web:2"):
        backend.add_image(ref)
    nodes = FakeNodes()
    parts = Components(backend=backend, router=FakeRouter(), probe=lambda _: True, nodes=lambda: nodes)
    platform = build_platform(Settings(home=home, registry_enabled=False), parts)
    _seed(platform)
    stop = threading.Event()
    threading.Thread(target=_converge, args=(platform, stop), daemon=True).start()
    time.sleep(0.1)
    print(f"dashboard (fake backend): http://127.0.0.1:{args.port}/  home {home}", flush=True)
    try:
        uvicorn.run(create_app(platform), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        stop.set()


if __name__ == "__main__":
    main()
