"""Benchmark: the router's cost for small, fast responses. wrk (2 threads x 16 keep-alive connections,
BENCH_SECONDS=8 s, BENCH_RUNS=3 runs each, the median kept) against a container answering a fixed
"hello": straight to the container, through the MyPaas router, and through the candidates side by side
(each its own process on a free port, proxying to the same container):

- caddy (ours): MyPaas's own Caddy config (router/config.py's render) with its JSON access log (the
  per-app request figures): the router's config in a process of its own, as a control
- caddy-nolog: the same without the access log
- caddy-min: a bare Caddy reverse proxy, no access log
- nginx: a keep-alive upstream, no access log
- haproxy: http mode, keep-alive both sides, no log

wrk, nginx and haproxy come from `scripts/install.sh --bench` (`make install-bench`). The MyPaas router
is the one the platform's setting names: `MYPAAS_ROUTER=haproxy .venv/bin/python bench/router_overhead.py`
measures the HAProxy driver (default: Caddy).

Last line: router_ratio=<through the MyPaas router / direct, requests per second> p99_ms=<through it>
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import MYPAAS, median, ok, until
from tests import kit

from mypaas.router.config import Route, render

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
IMAGE = "mypaas-test/hello:v1"
# The backend: answers every request on a kept-alive connection with a fixed "hello" (busybox httpd
# closes each connection, which would measure connection set-up instead of the proxy). One process per
# connection, as static binary over the busybox test image.
HELLO_C = r"""
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static const char ANSWER[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n";
static void serve(int c) {
    char buf[8192]; size_t have = 0;
    for (;;) {
        ssize_t n = read(c, buf + have, sizeof buf - have - 1);
        if (n <= 0) return;
        have += (size_t)n; buf[have] = 0;
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            if (write(c, ANSWER, sizeof ANSWER - 1) < 0) return;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, have - used); have -= used; buf[have] = 0;
        }
        if (have >= sizeof buf - 1) return;
    }
}
int main(void) {
    signal(SIGCHLD, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 512)) return 1;
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        if (fork() == 0) { close(s); serve(c); _exit(0); }
        close(c);
    }
}
"""
HOST = "hello.localhost"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(address: str) -> tuple[float, float]:
    """One wrk run against ``address`` (host:port): requests per second and the p99 latency (ms)."""
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{SECONDS}s", "--latency", "-H", f"Host: {HOST}", f"http://{address}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors on {address}:\n{out}")
    return rps, float(value) * UNITS[unit]


def measure(address: str) -> tuple[float, float]:
    """The median requests per second and p99 (ms) of RUNS wrk runs."""
    runs = [wrk(address) for _ in range(RUNS)]
    return median([r for r, _ in runs]), median([p for _, p in runs])


@contextmanager
def process(cmd: list[str], port: int, work: Path) -> Iterator[None]:
    """Run a proxy until the with-block ends; wait until it answers 200 on ``port``."""
    log = (work / "proxy.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    try:
        until(lambda: ok(port, HOST), timeout=15)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        log.close()


def caddy(config: dict[str, object]) -> Callable[[int, Path], list[str]]:
    def cmd(port: int, work: Path) -> list[str]:
        (work / "caddy.json").write_text(json.dumps(config).replace("@PORT@", str(port)))
        return ["caddy", "run", "--config", str(work / "caddy.json")]

    return cmd


def mypaas_config(upstream: str, *, access_log: str | None) -> dict[str, object]:
    config = render(
        [Route("hello", (HOST,), (upstream,))],
        listen_port=0,
        admin=f"127.0.0.1:{kit.free_port()}",
        access_log=access_log,
    )
    config["apps"]["http"]["servers"]["mypaas"]["listen"] = [":@PORT@"]  # type: ignore[index]
    return config


def minimal_caddy(upstream: str) -> dict[str, object]:
    return {
        "admin": {"disabled": True},
        "apps": {
            "http": {
                "servers": {
                    "s": {
                        "listen": [":@PORT@"],
                        "routes": [
                            {"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream}]}]}
                        ],
                    }
                }
            }
        },
    }


def nginx(upstream: str) -> Callable[[int, Path], list[str]]:
    def cmd(port: int, work: Path) -> list[str]:
        (work / "nginx.conf").write_text(
            f"""worker_processes 2; pid {work}/nginx.pid; error_log {work}/error.log; daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  upstream app {{ server {upstream}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_set_header Host $host; }}
  }}
}}
"""
        )
        return ["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)]

    return cmd


def haproxy(upstream: str) -> Callable[[int, Path], list[str]]:
    def cmd(port: int, work: Path) -> list[str]:
        (work / "haproxy.cfg").write_text(
            f"""global
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend f
  bind 127.0.0.1:{port}
  default_backend b
backend b
  http-reuse always
  server s1 {upstream}
"""
        )
        return ["haproxy", "-db", "-f", str(work / "haproxy.cfg")]

    return cmd


def candidate(name: str, make: Callable[[int, Path], list[str]]) -> tuple[str, float, float]:
    port = kit.free_port()
    work = Path(tempfile.mkdtemp(prefix=f"mypaas-bench-{name}-"))
    try:
        with process(make(port, work), port, work):
            rps, p99 = measure(f"127.0.0.1:{port}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return name, rps, p99


def hello_image() -> None:
    """Build the backend's image (once): the static "hello" server over the busybox web image."""
    if (
        subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode
        == 0
    ):
        return
    kit.web_image("mypaas-test/web:v1", "version one")
    work = Path(tempfile.mkdtemp(prefix="mypaas-bench-hello-"))
    try:
        (work / "hello.c").write_text(HELLO_C)
        subprocess.run(
            ["gcc", "-static", "-O2", "-o", str(work / "hello"), str(work / "hello.c")], check=True
        )
        (work / "Dockerfile").write_text(
            f'FROM mypaas-test/web:v1\nCOPY hello /hello\nLABEL {kit.TEST_LABEL}=1\nCMD ["/hello"]\n'
        )
        subprocess.run(["docker", "build", "-q", "-t", IMAGE, str(work)], check=True, capture_output=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    for tool in ("wrk", "nginx", "haproxy", "gcc"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: run scripts/install.sh --bench")
    hello_image()
    rows: list[tuple[str, float, float]] = []
    with kit.running_platform() as p:
        subprocess.run(
            [MYPAAS, "deploy", "hello", "--image", IMAGE, "--port", "80"],
            env=p.env,
            check=True,
            capture_output=True,
        )
        (inst,) = p.wait_ready("hello", 1)
        upstream = inst["address"]
        until(lambda: ok(p.router_port, HOST), timeout=15)
        rows.append(("direct", *measure(upstream)))
        driver = p.env.get("MYPAAS_ROUTER", "caddy")
        rows.append((f"mypaas ({driver})", *measure(f"127.0.0.1:{p.router_port}")))
        work = Path(tempfile.mkdtemp(prefix="mypaas-bench-log-"))
        try:
            rows.append(
                candidate("caddy (ours)", caddy(mypaas_config(upstream, access_log=str(work / "access.log"))))
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows.append(candidate("caddy-nolog", caddy(mypaas_config(upstream, access_log=None))))
        rows.append(candidate("caddy-min", caddy(minimal_caddy(upstream))))
        rows.append(candidate("nginx", nginx(upstream)))
        rows.append(candidate("haproxy", haproxy(upstream)))
    direct = rows[0][1]
    print(f"{'':<16} {'req/s':>8} {'of direct':>9} {'p99 ms':>7}")
    for name, rps, p99 in rows:
        print(f"{name:<16} {rps:8.0f} {rps / direct:9.2f} {p99:7.2f}")
    _, ours, ours_p99 = rows[1]
    print(f"router_ratio={ours / direct:.2f} p99_ms={ours_p99:.2f}")


if __name__ == "__main__":
    main()
