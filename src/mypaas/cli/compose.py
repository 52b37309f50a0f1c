"""What `mypaas deploy -f …` sends for a compose project: the project read as the server will read it
(:mod:`mypaas.spec.discover`) — every file it reads by name, the shell's values of the variables the files
use (those only), ``--env-file`` and ``--profile`` — and its build contexts; and how a dry run's answer
is printed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mypaas.errors import InvalidSpec


def project_payload(
    paths: Sequence[Path],
    *,
    env_files: Sequence[Path] = (),
    profiles: Sequence[str] = (),
    shell: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """The deploy body of the compose files ``paths`` (``-f`` order), and the build context folders by
    the name the files give them. A file missing or at fault is an InvalidSpec, as the server says it."""
    from mypaas.spec.discover import discover
    from mypaas.spec.project import ProjectSource

    _check_given(paths, "compose file")
    _check_given(env_files, "env file")
    env = dict(os.environ if shell is None else shell)
    folder = paths[0].absolute().parent
    names = tuple(_name(path, folder) for path in paths)
    source = ProjectSource(
        names,
        read=lambda name: _read(folder, name),
        shell=env,
        env_files=tuple(_name(path, folder) for path in env_files) if env_files else None,
        profiles=tuple(profiles) if profiles else None,
    )
    found = discover(source)
    body: dict[str, Any] = {
        "compose_files": list(names),
        "files": found.files,
        "variables": {key: env[key] for key in sorted(found.variables) if key in env},
    }
    if env_files:
        body["env_file"] = list(source.env_files or ())
    if profiles:
        body["profiles"] = list(profiles)
    contexts: dict[str, Path] = {}
    for context in found.contexts:
        where = folder / context
        if not where.is_dir():
            raise InvalidSpec(
                f"build context {context!r} named in {names[0]} is not a folder: {where}", field="build"
            )
        contexts[context] = where
    if found.binds:
        body["binds"] = True  # compose_payload uploads the files (and drops this key)
    if found.sources:
        from mypaas.cli.secret_files import secret_values

        body["secret_values"] = secret_values(found.sources, folder, found.values)
    return body, contexts


def _check_given(paths: Sequence[Path], what: str) -> None:
    """A file given on the command line that is missing is named as the user typed it."""
    for path in paths:
        if not path.is_file():
            how = "is not a file" if path.exists() else "was not found"
            raise InvalidSpec(f"{what} {str(path)!r} {how}", field=str(path))


def _name(path: Path, folder: Path) -> str:
    """A file's name relative to the project folder, '/'-separated (``../shared/base.yml`` is fine)."""
    return Path(os.path.relpath(path.absolute(), folder)).as_posix()


def _read(folder: Path, name: str) -> str | None:
    path = folder / name
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidSpec(f"cannot read {path}: {reason}", field=name) from exc


# -- a dry run's answer ---------------------------------------------------------------------------------
def dry_run_lines(name: str, answer: dict[str, Any]) -> list[str]:
    """The normalized spec (YAML), the warnings, and what the deploy would change, as printed."""
    import yaml

    lines = [
        "# the app as MyPaas would deploy it",
        *yaml.safe_dump(answer["spec"], sort_keys=False).splitlines(),
    ]
    lines.append("")
    lines.extend(f"warning: {warning}" for warning in answer.get("warnings", []))
    changes = answer.get("changes", {})
    release = changes.get("release")
    what = f"changes against v{release}" if release is not None else "a first release"
    lines.append(f"{name}: the deploy would make {what}:")
    lines.extend(f"  + {svc} (added)" for svc in changes.get("added", []))
    lines.extend(f"  ~ {svc}: {', '.join(fields)}" for svc, fields in changes.get("changed", {}).items())
    lines.extend(f"  - {svc} (removed)" for svc in changes.get("removed", []))
    lines.extend(f"  = {svc} (unchanged)" for svc in changes.get("unchanged", []))
    lines.extend(f"  ~ top-level {key}" for key in changes.get("top", []))
    lines.append("dry run: nothing was made")
    return lines
