"""The CLI starts light: every command pays its imports (bench/deploy_latency.py counts them), so the
command line loads neither the domain's models (pydantic) nor the manager's store (SQLAlchemy)."""

from __future__ import annotations

import json
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
    assert "mypaas.cli.audit" not in loaded and "mypaas.cli.hosts" not in loaded  # imported when named


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


def test_a_run_ends_as_the_interpreter_would_less_tearing_modules_down() -> None:
    code = (
        "import atexit, sys, threading, time; from mypaas.cli.lean import leave;"
        "atexit.register(lambda: print('atexit ran'));"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start();"
        "print('buffered', end=' ');"
        "leave(int(sys.argv[1]) if sys.argv[1].isdigit() else sys.argv[1])"
    )

    def end(arg: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, arg], capture_output=True, text=True, check=False, timeout=60
        )

    done = end("3")
    assert done.returncode == 3
    assert done.stdout.split() == ["buffered", "thread", "done", "atexit", "ran"]
    said = end("nope")
    assert said.returncode == 1 and said.stderr == "nope\n"


def test_a_command_imported_when_named_is_the_one_the_whole_app_has() -> None:
    """Each command or group alone (in a fresh process, imported as a run that names it imports it)
    has the same subcommands as in the whole app (a module adding to another's group counts)."""
    code = """if True:
        import json, sys, typer
        from mypaas.cli.lean import only
        from mypaas.cli.main import app
        def tree(c):
            subs = getattr(c, "commands", None)
            return {n: tree(s) for n, s in subs.items()} if subs is not None else None
        names = [n for n in sys.argv[1:]]
        alone = {n: tree(next(iter(typer.main.get_command(only(app, [n])).commands.values()))) for n in names}
        print(json.dumps([alone, {n: tree(c) for n, c in typer.main.get_command(app).commands.items()}]))
    """
    names = ["deploy", "config", "host", "driver", "cluster", "user", "token", "alerts", "audit", "up"]
    out = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    alone, everything = json.loads(out)
    assert alone == {name: everything[name] for name in names}
    assert {"create", "destroy", "add"} <= set(everything["host"])  # drivers.py adds the first two
