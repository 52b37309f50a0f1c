"""An app's git source row (``git_sources``): its deploy key, the files a clone needs to use it, the
shas a watch deployed, and how a watch is shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.domain import check_name
from mypaas.manager.git import keys, repo
from mypaas.manager.git.branches import DEFAULT_BRANCHES  # a watch without a branch deploys either
from mypaas.manager.state.models import GitSourceRow


def source_row(s: Session, app: str, team: str, *, create: bool) -> GitSourceRow | None:
    """``app``'s row; one kept from another team's app of that name is started afresh (its key never
    goes to another team)."""
    row = s.scalar(select(GitSourceRow).where(GitSourceRow.app == app))
    if row is not None and row.team != team:
        s.delete(row)
        s.flush()
        row = None
    if row is None and create:
        row = GitSourceRow(app=app, team=team, secrets={})
        s.add(row)
        s.flush()
    return row


def deploy_key(sessions: sessionmaker[Session], app: str, team: str, *, rotate: bool) -> dict[str, Any]:
    """The public half of ``app``'s deploy key, made on first ask (or anew with ``rotate``)."""
    check_name(app)
    with sessions.begin() as s:
        row = source_row(s, app, team, create=True)
        assert row is not None
        if rotate or not row.public_key:
            private, public = keys.new_key_pair(f"mypaas-deploy-{app}")
            row.public_key = public
            row.secrets = {**(row.secrets or {}), "private_key": private}
            made = True
        else:
            made = False
        return {
            "app": app,
            "public_key": row.public_key,
            "fingerprint": keys.fingerprint(row.public_key),
            "new": made,
        }


def access_files(
    sessions: sessionmaker[Session], known_root: Path, app: str, team: str, work: Path
) -> repo.Access:
    """The app's deploy key, written for ssh (0600) in ``work`` next to the clone, and its known_hosts
    (``known_root/APP/known_hosts``)."""
    known = known_root / app / "known_hosts"
    known.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with sessions() as s:
        row = s.scalar(select(GitSourceRow).where(GitSourceRow.app == app, GitSourceRow.team == team))
        private = str((row.secrets or {}).get("private_key") or "") if row is not None else ""
    key_file = None
    if private:
        work.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file = work / "deploy_key"
        key_file.touch(mode=0o600)
        key_file.write_text(private)
    return repo.Access(key_file, known)


def record_sha(sessions: sessionmaker[Session], app: str, sha: str, *, ok: bool) -> None:
    """The sha a watch's deploy deployed (``ok``) or failed on (not tried again until the branch moves)."""
    with sessions.begin() as s:
        row = s.scalar(select(GitSourceRow).where(GitSourceRow.app == app))
        if row is None:
            return
        if ok:
            row.last_sha, row.failed_sha = sha, ""
        else:
            row.failed_sha = sha


def watch_dict(row: GitSourceRow) -> dict[str, Any]:
    return {
        "app": row.app,
        "team": row.team,
        "url": row.url,
        "branch": row.branch,  # "": main, or master
        "branches": [row.branch] if row.branch else list(DEFAULT_BRANCHES),
        "path": row.path,
        "poll_s": row.poll_s,
        "user": row.user,
        "last_sha": row.last_sha,
        "failed_sha": row.failed_sha,
        "webhook": f"/api/v1/hooks/git/{row.app}",
        "deploy_key": keys.fingerprint(row.public_key) if row.public_key else None,
    }
