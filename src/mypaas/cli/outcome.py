"""What a mutating verb (`deploy`, `scale`, `config set|unset`, `rollback`) prints when it is done:
with ``--json`` one JSON object — the operation and the release it made — for scripts; `scale` also
says in words what changed ("web: 1 → 3 replicas")."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypaas.cli.output import follow, print_json, run_operation

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient

_OPERATION_KEYS = ("id", "kind", "status", "message")
_RELEASE_KEYS = ("version", "description", "status", "created_by", "created_at")


def finish(
    client: ApiClient,
    op: dict[str, Any],
    title: str,
    *,
    no_wait: bool,
    as_json: bool,
    done_message: Callable[[dict[str, Any]], str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Follow ``op`` (unless ``no_wait``) and print how it ended: a line, or with ``as_json`` the
    object of ``outcome`` (the log and progress still go to stderr; a failure is still `error:`)."""
    if not as_json:
        run_operation(client, op, title, no_wait, done_message)
        return
    done = op if no_wait else follow(client, op, title)
    print_json({**outcome(client, done), **(extra or {})})


def outcome(client: ApiClient, op: dict[str, Any]) -> dict[str, Any]:
    """``{"app", "operation": {id, kind, status, message}, "release": {version, description, status,
    created_by, created_at} | null}``: the release the operation rolls out, none when it has none
    (a scale; a build still running with --no-wait)."""
    app = str(op.get("app") or "")
    version = op.get("release")
    found = [r for r in client.releases(app) if r.get("version") == version] if version else []
    return {
        "app": app,
        "operation": {k: op.get(k) for k in _OPERATION_KEYS},
        "release": {k: found[0].get(k) for k in _RELEASE_KEYS} if found else None,
    }


def replica_changes(before: dict[str, Any], wanted: dict[str, int]) -> dict[str, dict[str, int | None]]:
    """Per service asked for: its replicas before (from the app's listing) and now."""
    services = before.get("services") or {}
    return {n: {"from": (services.get(n) or {}).get("replicas"), "to": count} for n, count in wanted.items()}


def replica_words(changes: dict[str, dict[str, int | None]]) -> str:
    """'web: 1 → 3 replicas', one line per service; 'worker: 2 replicas (unchanged)'."""
    lines = []
    for service, change in changes.items():
        old, new = change["from"], change["to"]
        unit = "replica" if new == 1 else "replicas"
        if old == new:
            lines.append(f"{service}: {new} {unit} (unchanged)")
        else:
            lines.append(f"{service}: {'?' if old is None else old} → {new} {unit}")
    return "\n".join(lines)
