"""Test and benchmark kit: tiny images made locally from busybox, and a real platform in a temp folder.

Everything it creates carries a label or a name the teardown finds, so it is removed even when a
test fails.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
BUSYBOX = Path("/bin/busybox")
TEST_LABEL = "mypaas.test"
APPLETS = (
    "sh",
    "httpd",
    "sleep",
    "cat",
    "echo",
    "hostname",
    "nc",
    "printf",
    "env",
    "ls",
    "true",
    "false",
    "kill",
)


_GIVEN: set[int] = set()


def free_port() -> int:
    """A TCP port free on every interface, below the kernel's ephemeral range (so an outgoing connection
    cannot take it between now and the moment the caller binds it) and not given out before by this
    process. Port 0 would pick from the ephemeral range, where that race made `up` fail now and then."""
    low, _ = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    top = min(low, 32768) - 1
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(20000, top)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port in 20000-{top}")


def docker_client() -> docker.DockerClient:
    return docker.from_env(version="auto")


def host_address() -> str:
    """An address of this machine that is not loopback: the Docker bridge's gateway (its containers and
    the manager both reach it; a private address, so webhooks to it need --allow-private). An engine that
    chose the gateway itself may not list it (Docker 20.10 after a restart): it is the subnet's first."""
    config = docker_client().networks.get("bridge").attrs["IPAM"]["Config"][0]
    return str(config.get("Gateway") or ipaddress.ip_network(config["Subnet"])[1])


def busybox_image(
    tag: str,
    *,
    files: dict[str, str] | None = None,
    cmd: Sequence[str] = ("/bin/httpd", "-f", "-p", "80", "-h", "/www"),
    expose: int | None = 80,
    executable: Sequence[str] = (),
    applets: Sequence[str] = APPLETS,
) -> str:
    """Import a busybox root filesystem plus ``files`` as image ``tag`` (labelled for cleanup), with
    ``applets`` linked in /bin."""
    client = docker_client()
    with contextlib.suppress(docker.errors.ImageNotFound):
        return str(client.images.get(tag).id)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_dir(tar, "bin")
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in applets:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for d in ("www", "tmp", "etc"):
            _add_dir(tar, d)
        made = {"bin", "www", "tmp", "etc"}
        for path, text in (files or {"www/index.html": "hello\n"}).items():
            parent = str(Path(path.lstrip("/")).parent)
            if parent != "." and parent not in made:
                _add_dir(tar, parent)
                made.add(parent)
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o755 if path in executable else 0o644
            tar.addfile(info, io.BytesIO(data))
    changes = [f"CMD {json.dumps(list(cmd))}", f'LABEL {TEST_LABEL}="1"']
    if expose:
        changes.append(f"EXPOSE {expose}")
    repo, _, version = tag.partition(":")
    client.api.import_image_from_data(
        buf.getvalue(), repository=repo, tag=version or "latest", changes=changes
    )
    return str(client.images.get(tag).id)


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def web_image(tag: str, body: str) -> str:
    """An HTTP server answering ``body`` on /, and its container's hostname on /id.html."""
    return busybox_image(
        tag,
        files={"www/index.html": body + "\n"},
        cmd=("/bin/sh", "-c", "hostname > /www/id.html; exec httpd -f -p 80 -h /www"),
    )


class Platform:
    """A real MyPaas (manager + router) on free ports, its state in a temp folder. The environment is
    passed on: ``MYPAAS_ROUTER=haproxy pytest …`` runs every platform with the HAProxy router."""

    def __init__(self, **settings: Any) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mypaas-test-"))
        self.api_port = free_port()
        self.router_port = free_port()
        self.router_https_port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            {
                "MYPAAS_HOME": str(self.home),
                "MYPAAS_API_PORT": str(self.api_port),
                "MYPAAS_ROUTER_PORT": str(self.router_port),
                "MYPAAS_ROUTER_HTTPS_PORT": str(self.router_https_port),
                "MYPAAS_DEPLOY_TIMEOUT_S": "12",
                "MYPAAS_DRAIN_S": "0.5",
                "MYPAAS_STOP_GRACE_S": "2",
                "MYPAAS_MIN_RUNNING_S": "1",
                "MYPAAS_REGISTRY_ADDR": f"127.0.0.1:{free_port()}",
                "MYPAAS_MIRROR_ADDR": f"127.0.0.1:{free_port()}",
                "MYPAAS_GIT_SSH_PORT": "0",  # the git endpoint: off unless a test asks (git_ssh_port=...)
            }
        )
        self.env.pop("MYPAAS_URL", None)
        self.env.pop("MYPAAS_TOKEN", None)
        self.env.update({f"MYPAAS_{k.upper()}": str(v) for k, v in settings.items()})
        self.platform_id = ""
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", trust_env=False, timeout=30)

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self) -> None:
        self.cli("up", check=True)
        self._http.headers["Authorization"] = f"Bearer {self.token}"
        self.platform_id = self.api("GET", "/api/v1/status")["platform"]

    def down(self) -> None:
        self.cli("down")

    def kill_manager(self) -> None:
        pid = int((self.home / "run" / "manager.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def cleanup(self) -> None:
        """Stop the platform and remove every engine resource it made; then its folder."""
        with contextlib.suppress(Exception):
            if self.api("GET", "/api/v1/registry/status")["mirror"]["enabled"]:
                self.api("DELETE", "/api/v1/registry/mirror")  # the engine stops pulling through it
        with contextlib.suppress(Exception):
            self.down()
        for name in ("mirror", "registry"):
            with contextlib.suppress(Exception):
                os.kill(int((self.home / name / "registry.pid").read_text()), signal.SIGKILL)
        for pid_file in ("caddy.pid", "haproxy.pid"):  # the router (setting router: caddy or haproxy)
            with contextlib.suppress(Exception):
                os.kill(int((self.home / "router" / pid_file).read_text()), signal.SIGKILL)
        if self.platform_id:
            remove_labelled(f"mypaas.platform={self.platform_id}")
        self._http.close()
        shutil.rmtree(self.home, ignore_errors=True)

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    # -- clients --------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = False, timeout: float = 120, stdin: str | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "mypaas.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            cwd=ROOT,
            check=False,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"mypaas {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return result

    def api(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        r = self._http.request(method, path, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        elif r.status_code >= 400:
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text}")
        return (
            r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else r
        )

    def raw(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self._http.request(method, path, **kw)

    def wait_op(self, op: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cur = self.api("GET", f"/api/v1/operations/{op['id']}", params={"wait": 5})
            if cur["status"] in ("succeeded", "failed"):
                return dict(cur)
        raise AssertionError(f"operation {op['id']} did not finish in {timeout}s")

    def get(self, app_or_host: str, path: str = "/", timeout: float = 3) -> tuple[int, str]:
        """One request through the router (Host header: Python does not resolve *.localhost)."""
        host = app_or_host if "." in app_or_host else f"{app_or_host}.localhost"
        conn = http.client.HTTPConnection("127.0.0.1", self.router_port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        except OSError as exc:
            return 0, str(exc)
        finally:
            conn.close()

    def wait_for(self, app: str, status: int = 200, body: str | None = None, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        last: tuple[int, str] = (0, "")
        while time.monotonic() < deadline:
            last = self.get(app)
            if last[0] == status and (body is None or body in last[1]):
                return last[1]
            time.sleep(0.05)
        raise AssertionError(f"{app}: wanted {status} {body!r}, last got {last}")

    def instances(self, app: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/api/v1/apps/{app}/instances"))

    def wait_ready(self, app: str, n: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        insts: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            insts = self.instances(app)
            if len(insts) == n and all(i["ready"] for i in insts):
                return insts
            time.sleep(0.1)
        raise AssertionError(f"{app}: wanted {n} ready instances, have {insts}")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


def untag(prefix: str) -> None:
    """Remove every tag and digest reference starting with ``prefix`` (the images stay if used)."""
    client = docker_client()
    for image in client.images.list():
        for ref in [*(image.attrs.get("RepoTags") or []), *(image.attrs.get("RepoDigests") or [])]:
            if ref.startswith(prefix):
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(ref)


def remove_labelled(label: str) -> None:
    """Remove Swarm services and containers, then networks and volumes, carrying ``label``."""
    client = docker_client()
    with contextlib.suppress(docker.errors.APIError):  # 503 when the engine is not a Swarm manager
        for service in client.services.list(filters={"label": label}):
            with contextlib.suppress(docker.errors.APIError):
                service.remove()
    for c in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(docker.errors.APIError):
            c.remove(force=True)
    for n in client.networks.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.APIError):
            n.remove()
    for v in client.volumes.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.APIError):
            v.remove(force=True)


@contextlib.contextmanager
def running_platform(**settings: Any) -> Iterator[Platform]:
    platform = Platform(**settings)
    try:
        platform.up()
        yield platform
    finally:
        platform.cleanup()


def wait_until(check: Any, timeout: float = 20, interval: float = 0.1) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with a message at ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {getattr(check, '__name__', check)}")


def wait_served(p: Platform, app: str, path: str, status: int, body: str, timeout: float = 20) -> None:
    """Wait until ``GET path`` via the router answers ``(status, body)``; failing, name the last answer."""
    last: list[tuple[int, str]] = [(0, "")]

    def answers() -> bool:
        last[0] = p.get(app, path)
        return last[0] == (status, body)

    try:
        wait_until(answers, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"{app}{path}: wanted {status} {body!r}, last got {last[0]}") from None


@contextlib.contextmanager
def cluster_platform(
    n: int = 3, *, prefix: str, subnet: str, **settings: Any
) -> Iterator[tuple[Platform, Any]]:
    """A real platform whose engine becomes the Swarm manager, plus ``n`` netns hosts added with
    ``mypaas host add`` over SSH. Everything is torn down afterwards: the services, the Swarm, the
    hosts, and the trust in the registry that the platform added to this engine's daemon.json."""
    from tests.cluster import test_cluster
    from tests.sshd import fingerprint_of

    with (
        _swarm_manager_restored(),
        test_cluster(n, prefix=prefix, subnet=subnet) as cluster,
        running_platform(cluster_addr=cluster.gateway, **settings) as platform,
        _services_removed(platform),
    ):
        for host in cluster.hosts:
            platform.cli(
                "host",
                "add",
                host.ssh_url(),
                "--key",
                str(cluster.key_file),
                "--yes",
                "--host-key",  # --yes trusts no unseen key: pin the one the host was made with
                fingerprint_of(host.root / "ssh" / "ssh_host_ed25519_key.pub"),
                check=True,
                timeout=180,
            )
        yield platform, cluster


@contextlib.contextmanager
def swarm_platform(cluster_addr: str, **settings: Any) -> Iterator[Platform]:
    """A real platform that makes this engine the Swarm manager, advertised at ``cluster_addr``, when
    its first host joins (hosts made by the test: ``host create``); torn down as cluster_platform is."""
    with (
        _swarm_manager_restored(),
        running_platform(cluster_addr=cluster_addr, **settings) as platform,
        _services_removed(platform),
    ):
        yield platform


@contextlib.contextmanager
def _services_removed(platform: Platform) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(docker.errors.APIError):
            for service in docker_client().services.list(
                filters={"label": f"mypaas.platform={platform.platform_id}"}
            ):
                service.remove()


@contextlib.contextmanager
def _swarm_manager_restored() -> Iterator[None]:
    """Refuse an engine already in a Swarm; afterwards leave the Swarm and undo the registry trust
    (daemon.json, certs.d) a platform gave this engine."""
    daemon_json = Path("/etc/docker/daemon.json")
    saved = daemon_json.read_text() if daemon_json.exists() else None
    certs_d = Path("/etc/docker/certs.d")  # the platform CA for its cluster address: removed after
    certs_before = set(certs_d.iterdir()) if certs_d.is_dir() else set()
    client = docker_client()
    if client.info().get("Swarm", {}).get("LocalNodeState") == "active":
        raise RuntimeError(
            "this engine is already part of a Swarm: leave it first (docker swarm leave --force)"
        )
    try:
        yield
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.swarm.leave(force=True)
        for added in (set(certs_d.iterdir()) if certs_d.is_dir() else set()) - certs_before:
            shutil.rmtree(added, ignore_errors=True)
        if saved is None:
            daemon_json.unlink(missing_ok=True)
        elif daemon_json.read_text() != saved:
            daemon_json.write_text(saved)
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(Path("/var/run/docker.pid").read_text().strip()), signal.SIGHUP)
