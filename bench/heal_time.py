"""Benchmark: a routed app's container killed from outside (`docker kill`, SIGKILL), with a request
loop through the router; the time from the kill until requests succeed again.

Last line: heal_s=<x> (the median of 5 kills; 0 when no request failed at all).
"""

from __future__ import annotations

import statistics
import threading
import time

from _common import ok  # also puts the repo on sys.path for tests.kit
from tests import kit

KILLS = 5


def heal_once(p: kit.Platform, app: str) -> float:
    inst = p.wait_ready(app, 1)[0]
    p.wait_for(app)
    outcomes: list[tuple[float, bool]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            outcomes.append((time.perf_counter(), ok(p.router_port, f"{app}.localhost")))
            time.sleep(0.01)

    worker = threading.Thread(target=loop)
    worker.start()
    time.sleep(0.3)
    killed_at = time.perf_counter()
    kit.docker_client().containers.get(inst["id"]).kill()
    deadline = killed_at + 30
    healed: float | None = None
    while time.perf_counter() < deadline and healed is None:
        time.sleep(0.05)
        after = [(t, good) for t, good in list(outcomes) if t >= killed_at]
        failed = [t for t, good in after if not good]
        if not failed:
            if len(after) > 50:  # half a second of answers and none failed
                healed = 0.0
            continue
        recovered = [t for t, good in after if good and t > failed[-1]]
        if len(recovered) >= 20:  # steadily answering again
            healed = recovered[0] - killed_at
    stop.set()
    worker.join()
    if healed is None:
        raise SystemExit("the app did not heal within 30 s")
    return healed


def main() -> None:
    kit.web_image("mypaas-test/web:v1", "version one")
    with kit.running_platform() as p:
        p.cli("deploy", "heal", "--image", "mypaas-test/web:v1", "--port", "80", check=True)
        times = []
        for n in range(KILLS):
            times.append(heal_once(p, "heal"))
            print(f"kill {n + 1}: requests succeed again after {times[-1]:.2f}s", flush=True)
        p.cli("rm", "heal", "--yes")
    print(f"heal_s={statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
