"""The CLI starts light: every command pays its imports (bench/deploy_latency.py counts them), so the
command line loads neither the domain's models (pydantic) nor the manager's store (SQLAlchemy)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mypaas.domain", "mypaas.manager", "pydantic", "sqlalchemy", "docker")


def test_the_command_line_loads_no_model_store_or_engine_sdk() -> None:
    code = "import sys, mypaas.cli.main; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    heavy = [m for m in loaded if m.startswith(HEAVY)]
    assert heavy == []
