"""The manager's process collects garbage less often than Python's default, and never walks what it
built at start-up again (a full collection walks every live object: at thousands of apps it ran every
few reconcile passes)."""

from __future__ import annotations

import subprocess
import sys

from mypaas.api import server


def test_the_manager_freezes_its_start_up_and_raises_the_thresholds() -> None:
    code = (
        "import gc; from mypaas.api.server import tune_gc; before = gc.get_threshold(); tune_gc(); "
        "print(before[0], gc.get_threshold()[0], gc.get_freeze_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    before, after, frozen = (int(n) for n in out.stdout.split())
    assert after == server.GC_THRESHOLDS[0] > before
    assert frozen > 1000  # the modules, the API's tables: out of every later walk
