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


def test_a_command_builds_only_itself_and_help_builds_all() -> None:
    import typer

    from mypaas.cli.lean import only
    from mypaas.cli.main import app

    def built(argv: list[str]) -> set[str]:
        return set(typer.main.get_command(only(app, argv)).commands)  # type: ignore[attr-defined]

    assert built(["deploy", "web", "--image", "x"]) == {"deploy"}
    assert built(["config", "set", "web", "A=1"]) == {"config"}
    assert built(["--version", "ps"]) == {"ps"}
    everything = built([])
    assert {"deploy", "ps", "config", "host", "token"} <= everything
    assert built(["--help"]) == everything
    assert built(["deplyo", "web"]) == everything  # unknown: Click's own error, with its suggestions
