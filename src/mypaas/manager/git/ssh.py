"""The platform's git endpoint: an SSH server (asyncssh) inside the manager process, on its own port
(setting ``git_ssh_port``; 0: off), with a host key kept in ``$MYPAAS_HOME/git`` (made once).

Public-key sign-in only, for keys registered to a platform user (`mypaas user key add`); any login name
(``git@`` is what remotes show). It runs nothing but ``git receive-pack`` of ``APP.git``, and only after
the app's name and the user's right to deploy it were checked: a shell, a pty, a fetch, port forwarding
or another command is refused in one line. The push's hook deploys with a token minted for the pusher,
limited to the app and revoked when the push ends. The only module that imports asyncssh (the manager
imports it when it starts the endpoint)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from mypaas.errors import MyPaasError
from mypaas.manager.git import access, commands, repos
from mypaas.manager.git.branches import DEFAULT_BRANCHES, DeployBranches
from mypaas.manager.identity.service import Identity

if TYPE_CHECKING:
    from mypaas.settings import Settings

log = logging.getLogger("mypaas.git")
HOST_KEY = "ssh_host_ed25519_key"
CHUNK = 65536


def host_key(folder: Path) -> Path:
    """The endpoint's host key, made once (ed25519, owner-only)."""
    path = folder / HOST_KEY
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key())
        (folder / f"{HOST_KEY}.pub").write_bytes(key.export_public_key())
    return path


class GitEndpoint:
    """The SSH server, run on its own event loop in a thread of the manager."""

    def __init__(self, settings: Settings, identity: Identity, branches: DeployBranches) -> None:
        self.settings = settings
        self.identity = identity
        self.branches = branches
        self.root = settings.home / "git"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.settings.git_ssh_port

    def start(self) -> None:
        """Listen (nothing when the port is 0); a port that cannot be bound is logged, not fatal."""
        if not self.port:
            return
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="git-ssh", daemon=True)
        self._thread.start()
        try:
            ready.result(timeout=30)
            log.info("git endpoint listening on port %d", self.port)
        except Exception as exc:
            log.error("git endpoint not started on port %d: %s", self.port, exc)

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=5)

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(self._listen())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._server.wait_closed())
            loop.close()

    async def _listen(self) -> Any:
        key = host_key(self.root)
        return await asyncssh.create_server(
            lambda: _Auth(self.identity),
            self.settings.git_ssh_host or None,
            self.port,
            server_host_keys=[str(key)],
            process_factory=self._handle,
            encoding=None,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=30,
        )

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        owner = process.channel.get_connection().get_owner()
        user = owner.user if isinstance(owner, _Auth) else None
        try:
            if user is None:  # pragma: no cover - asyncssh runs nothing before sign-in
                raise MyPaasError("not signed in")
            code = await self._receive(process, user)
        except MyPaasError as exc:
            process.stderr.write(f"mypaas: {exc}\n".encode())
            code = 1
        except Exception:
            log.exception("git push by %s failed", user)
            process.stderr.write(b"mypaas: the push failed inside the platform (see the manager's log)\n")
            code = 1
        process.exit(code)

    async def _receive(self, process: asyncssh.SSHServerProcess[bytes], user: str) -> int:
        app = commands.app_of_command(process.command)
        grant = await asyncio.to_thread(access.grant_push, self.identity, user, app)
        log.info("git push to %s by %s", app, user)
        try:
            path = await asyncio.to_thread(repos.ensure_repo, self.root, app)
            branch = await asyncio.to_thread(self.branches.get, app)
            env = self._env(app, user, grant.token, [branch] if branch else list(DEFAULT_BRANCHES))
            max_bytes = self.settings.git_max_push_mb * 2**20
            proc = await asyncio.create_subprocess_exec(
                *repos.receive_command(path, max_bytes),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
            return await _pipe(process, proc)
        finally:
            await asyncio.to_thread(self.identity.revoke_id, grant.token_id)

    def _env(self, app: str, user: str, token: str, branches: list[str]) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MYPAAS_TOKEN", "MYPAAS_URL", "SSH_"))
        }
        env.update(repos.GIT_ENV)
        env.update(
            {
                "MYPAAS_URL": self.settings.api_url,
                "MYPAAS_TOKEN": token,
                "MYPAAS_HOME": str(self.settings.home),
                "MYPAAS_PYTHON": sys.executable,
                "MYPAAS_GIT_APP": app,
                "MYPAAS_GIT_USER": user,
                # the branches that deploy the app itself (':' is in no branch name)
                "MYPAAS_GIT_BRANCHES": ":".join(branches),
            }
        )
        return env


async def _pipe(process: asyncssh.SSHServerProcess[bytes], proc: asyncio.subprocess.Process) -> int:
    """Copy the SSH channel to ``git receive-pack`` and back until it exits; its exit code."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    feed = asyncio.create_task(_copy_in(process, proc.stdin))
    outs = [
        asyncio.create_task(_copy_out(proc.stdout.read, process.stdout)),
        asyncio.create_task(_copy_out(proc.stderr.read, process.stderr)),
    ]
    try:
        await asyncio.gather(*outs)
        return await proc.wait()
    finally:
        feed.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _copy_in(process: asyncssh.SSHServerProcess[bytes], sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, BrokenPipeError):
        while True:
            data = await process.stdin.read(CHUNK)
            if not data:
                break
            sink.write(data)
            await sink.drain()
        sink.close()


async def _copy_out(read: Callable[[int], Any], target: Any) -> None:
    while True:
        data = await read(CHUNK)
        if not data:
            return
        target.write(data)
        with contextlib.suppress(Exception):
            await target.drain()


class _Auth(asyncssh.SSHServer):
    """One connection's sign-in: public keys registered to a platform user, nothing else."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.user: str | None = None

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        owner = await asyncio.to_thread(self.identity.key_owner, key.public_data)
        if owner is None:
            return False
        self.user = owner
        return True
