"""Benchmark: `git push` of a one-line change of a small Python app (built from source, no
Dockerfile) until the router serves the new content, against `mypaas deploy APP DIR` of the same change
to a twin app, in the same run (the two alternate which goes first). The first push and the first
deploy (not timed) make the apps and warm the build cache; each timed run changes the line the app
answers with.

Last line: push_s=<x> deploy_dir_s=<y> (medians of BENCH_RUNS runs, default 3).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import until
from tests import kit

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
APP = """import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"%s"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Hello).serve_forever()
"""


def git(folder: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True, timeout=900)


def write(folder: Path, text: str) -> None:
    (folder / "app.py").write_text(APP % text)


def served(p: kit.Platform, app: str, text: str) -> bool:
    return p.get(app) == (200, text)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, kit.running_platform(git_ssh_port=kit.free_port()) as p:
        work = Path(tmp)
        key = work / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        p.cli("user", "key", "add", "admin", f"{key}.pub", check=True)
        ssh = (
            f"ssh -i {key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MYPAAS_"))}
        env.update(GIT_SSH_COMMAND=f"{ssh} -o BatchMode=yes -o LogLevel=ERROR", GIT_CONFIG_GLOBAL="/dev/null")
        env.update(
            GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x"
        )
        pushed, folder = work / "pushed", work / "folder"
        for d in (pushed, folder):
            d.mkdir()
            (d / "requirements.txt").write_text("# no dependencies\n")
            write(d, "v0")
        url = p.cli("git", "remote", "bench-push", check=True).out.strip()
        git(pushed, env, "init", "-q", "-b", "main")
        git(pushed, env, "add", "-A")
        git(pushed, env, "commit", "-q", "-m", "v0")
        git(pushed, env, "push", "-q", url, "main")
        p.cli("deploy", "bench-dir", str(folder), check=True, timeout=900)
        until(lambda: served(p, "bench-push", "v0") and served(p, "bench-dir", "v0"), timeout=60)
        push_s: list[float] = []
        dir_s: list[float] = []

        def by_push(text: str) -> None:
            write(pushed, text)
            git(pushed, env, "commit", "-q", "-am", text)
            start = time.perf_counter()
            git(pushed, env, "push", "-q", url, "main")
            until(lambda: served(p, "bench-push", text), timeout=120)
            push_s.append(time.perf_counter() - start)

        def by_folder(text: str) -> None:
            write(folder, text)
            start = time.perf_counter()
            p.cli("deploy", "bench-dir", str(folder), check=True, timeout=900)
            until(lambda: served(p, "bench-dir", text), timeout=120)
            dir_s.append(time.perf_counter() - start)

        for n in range(1, RUNS + 1):
            ways = (by_push, by_folder) if n % 2 else (by_folder, by_push)  # alternate: neither always first
            for way in ways:
                way(f"v{n}")
            print(f"run {n}: push {push_s[-1]:.2f}s  deploy DIR {dir_s[-1]:.2f}s", flush=True)
        print(f"load average: {os.getloadavg()[0]:.2f}", flush=True)
        print(f"push_s={statistics.median(push_s):.2f} deploy_dir_s={statistics.median(dir_s):.2f}")


if __name__ == "__main__":
    main()
