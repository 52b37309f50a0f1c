"""Benchmark: the second deploy of an unchanged Python app built from source (no Dockerfile), timed
from `mypaas deploy APP DIR` until its route answers 200; the build cache must make it fast.

The first deploy (not timed) makes the Debian base and the Python builder image if they are missing.
Last line: redeploy_s=<x> (the median of 3 redeploys).
"""

from __future__ import annotations

import http.client
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import MYPAAS, until
from tests import kit

APP = """import os
from http.server import BaseHTTPRequestHandler, HTTPServer

import six  # installed from requirements.txt


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from source (six {six.__version__})\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Hello).serve_forever()
"""


def answers(port: int, host: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status == 200 and b"hello from source" in resp.read()
    except OSError:
        return False
    finally:
        conn.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, kit.running_platform(deploy_timeout_s=120) as p:
        src = Path(tmp)
        (src / "app.py").write_text(APP)
        (src / "requirements.txt").write_text("six==1.16.0\n")
        (src / "Procfile").write_text("web: python3 app.py\n")
        start = time.perf_counter()
        first = subprocess.run(
            [MYPAAS, "deploy", "pyapp", str(src)],
            env=p.env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if first.returncode != 0:
            raise SystemExit(f"first deploy failed:\n{first.stdout}\n{first.stderr}")
        print(
            f"first deploy (base and builder images as needed): {time.perf_counter() - start:.1f}s",
            flush=True,
        )
        times = []
        for n in range(3):
            start = time.perf_counter()
            subprocess.run(
                [MYPAAS, "deploy", "pyapp", str(src)], env=p.env, capture_output=True, check=True, timeout=600
            )
            until(lambda: answers(p.router_port, "pyapp.localhost"), timeout=60)
            times.append(time.perf_counter() - start)
            print(f"redeploy {n + 1}: {times[-1]:.2f}s", flush=True)
        p.cli("rm", "pyapp", "--yes")
    print(f"redeploy_s={statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
