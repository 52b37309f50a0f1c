"""Helpers of the access tests against a real platform: its Identity service over its own state store
(shared with the running manager), and the CLI run with a token of one's choosing."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from mypaas.manager.identity.policy import Principal
from mypaas.manager.identity.service import Identity
from mypaas.manager.state.db import open_store
from tests import kit


@contextlib.contextmanager
def identity_of(platform: kit.Platform) -> Iterator[tuple[Identity, Principal]]:
    """The platform's Identity service over its state store (shared with the running manager), and the
    platform admin (its admin-token file's token)."""
    store = open_store(platform.home / "state.db")
    try:
        ident = Identity(store.sessions)
        yield ident, ident.principal_of(platform.token)
    finally:
        store.engine.dispose()


def cli_as(platform: kit.Platform, token: str, *args: str) -> kit.Result:
    """`mypaas ARGS` with MYPAAS_TOKEN=token (not the admin-token file)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypaas.cli.main", *args],
        env={**platform.env, "MYPAAS_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=kit.ROOT,
        check=False,
    )
    return kit.Result(proc.returncode, proc.stdout, proc.stderr)
