"""Benchmark: a steady request loop through the router during 5 successive redeploys of a 2-replica app.

Last line: failed_requests=<N> of <M> (a failure is any answer but 200, or no answer).
"""

from __future__ import annotations

import http.client
import subprocess
import threading
import time

from _common import MYPAAS
from tests import kit

REDEPLOYS = 5


def loop(port: int, host: str, stop: threading.Event, counts: dict[str, int], errors: list[str]) -> None:
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/", headers={"Host": host})
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
            if not ok:
                errors.append(f"HTTP {resp.status}")
        except OSError as exc:
            ok = False
            errors.append(repr(exc))
        finally:
            conn.close()
        counts["total"] += 1
        counts["failed"] += 0 if ok else 1
        time.sleep(0.005)


def main() -> None:
    images = [
        kit.web_image("mypaas-test/web:v1", "version one"),
        kit.web_image("mypaas-test/web:v2", "version two"),
    ]
    refs = ["mypaas-test/web:v1", "mypaas-test/web:v2"]
    assert images
    with kit.running_platform() as p:
        app = "zero"
        p.cli("deploy", app, "--image", refs[0], "--port", "80", check=True)
        p.cli("scale", app, "web=2", check=True)
        p.wait_ready(app, 2)
        p.wait_for(app)
        counts = {"total": 0, "failed": 0}
        errors: list[str] = []
        stop = threading.Event()
        worker = threading.Thread(target=loop, args=(p.router_port, f"{app}.localhost", stop, counts, errors))
        worker.start()
        try:
            for n in range(REDEPLOYS):
                ref = refs[(n + 1) % 2]
                start = time.perf_counter()
                subprocess.run(
                    [MYPAAS, "deploy", app, "--image", ref, "--port", "80"],
                    env=p.env,
                    check=True,
                    capture_output=True,
                )
                p.wait_for(app, body="version one" if ref.endswith("v1") else "version two")
                print(
                    f"redeploy {n + 1} ({ref}) in {time.perf_counter() - start:.2f}s; "
                    f"requests so far {counts['total']}, failed {counts['failed']}",
                    flush=True,
                )
                time.sleep(1.5)  # let the old instances drain and stop while requests go on
        finally:
            stop.set()
            worker.join()
        for e in errors[:5]:
            print("failure:", e)
    print(f"failed_requests={counts['failed']} of {counts['total']}")


if __name__ == "__main__":
    main()
