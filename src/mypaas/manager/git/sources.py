"""Apps deployed from a repository: `mypaas deploy APP --git URL#REF`, deploy keys, and watches that
redeploy on every push (a forge's webhook, or polling with ``git ls-remote``). Each deploy is an operation
a client follows: the clone and the CLI's own deploy output go to its log; the deploy itself is `mypaas
deploy APP DIR` run as the user it acts for (runner.py). One deploy at a time per app; a sha that failed is
not tried again until the branch moves."""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.domain import check_name
from mypaas.errors import InvalidSpec, MyPaasError, NotFound, Unauthorized
from mypaas.manager.git import hooks, refs, repo, runner, source_rows
from mypaas.manager.git.access import PUSH_TOKEN_TTL_S
from mypaas.manager.git.branches import DEFAULT_BRANCHES
from mypaas.manager.identity.service import Identity
from mypaas.manager.operations import Operations
from mypaas.manager.state.models import GitSourceRow, OperationRow
from mypaas.monitor.events import EventSink
from mypaas.states import OperationStatus

log = logging.getLogger("mypaas.git")

KIND = "git-deploy"
POLL_TICK_S = 1.0
MIN_POLL_S = 1.0
DEPLOY_TIMEOUT_S = 1800.0
POLL_WORKERS = 4  # remotes asked at once
REFUSED_EVENT_S = 60.0  # at most one refused-webhook event a minute per watched app


@dataclass(frozen=True)
class Job:
    """One deploy from a repository."""

    app: str
    team: str
    user: str
    url: str
    ref: str
    path: str
    preview: str = ""  # a pull request's branch: deploy the app's preview of it
    close_preview: bool = False  # the request was closed: remove the preview
    watched: bool = False  # the watch's deploy: record the sha it deployed (or that failed)


@dataclass(frozen=True)
class Places:
    """Where the manager keeps a clone while it deploys, and each app's known_hosts."""

    work: Path  # $MYPAAS_HOME/tmp/git
    known: Path  # $MYPAAS_HOME/git


class GitSources:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        operations: Operations,
        events: EventSink,
        home: Path,
        api_url: Callable[[], str],
        max_bytes: int,
        identity: Identity,
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._events = events
        self._places = Places(home / "tmp" / "git", home / "git")
        self._api_url = api_url
        self._max_bytes = max_bytes
        self._identity = identity  # the deploys' short-lived tokens; an app's team (None once removed)
        self._team_of = identity.team_of_app
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._busy: set[str] = set()  # apps whose watch deploy runs (the poller skips them)
        self._polled: dict[str, float] = {}
        self._checking: set[str] = set()  # apps whose remote the poller asks now
        self._refused_at: dict[str, float] = {}  # when each watched app's last refused-webhook event was

    def clear_leftovers(self) -> None:
        """At the manager's start no git deploy runs: the clones and the deploy tokens left are a stopped
        manager's (a push's or a watch's), so the folders go and the tokens are revoked."""
        shutil.rmtree(self._places.work, ignore_errors=True)
        left = self._identity.revoke_push_tokens()
        if left:
            log.info("revoked %d git deploy token(s) a stopped manager left active", left)

    # -- deploy keys ------------------------------------------------------------------------------------

    def deploy_key(self, app: str, team: str, *, rotate: bool = False) -> dict[str, Any]:
        """The public half of ``app``'s deploy key, made on first ask (or anew with ``rotate``)."""
        return source_rows.deploy_key(self._sessions, app, team, rotate=rotate)

    # -- deploys --------------------------------------------------------------------------------------

    def start_deploy(self, *, user: str, app: str, team: str, source: str, path: str) -> OperationRow:
        """Check the request, then clone and deploy in the background (an operation to follow)."""
        check_name(app)
        parsed = refs.parse_source(source, field="git")
        sub = refs.check_subpath(path)
        return self._start(Job(app, team, user, parsed.url, parsed.ref, sub), user)

    def _start(self, job: Job, by: str) -> OperationRow:
        with self._sessions.begin() as s:
            op = self._ops.new(s, app=job.app, kind=KIND, user=by, status=OperationStatus.BUILDING)
            op.message = f"deploying {refs.shown_source(job.url, job.ref, job.path)}"
        self._ops.notify()
        threading.Thread(target=self._run, args=(job, op.id), name=f"git {job.app}", daemon=True).start()
        return op

    def _lock(self, app: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(app, threading.Lock())

    def _run(self, job: Job, op_id: str) -> None:
        try:
            self._run_job(job, op_id)
        finally:
            with self._guard:
                self._busy.discard(job.app)

    def _run_job(self, job: Job, op_id: str) -> None:
        def emit(line: str) -> None:
            self._ops.append_log(op_id, line + "\n")

        result = runner.Outcome(False, "the deploy did not run")
        sha = ""
        try:
            with self._lock(job.app):
                result, sha = self._deploy(job, op_id, emit)
        except MyPaasError as exc:
            result = runner.Outcome(False, exc.message)
        except Exception as exc:  # every failure ends the operation, whatever raised it
            log.exception("deploying %s from %s", job.app, job.url)
            result = runner.Outcome(False, f"deploying from {job.url} failed: {exc}")
        if job.watched and sha:
            self._record(job.app, sha, ok=result.ok)
        if not result.ok:
            shown = refs.shown_source(job.url, job.ref, job.path)
            self._events.record(job.app, "git_deploy_failed", f"{shown}: {result.message}")
        with self._sessions.begin() as s:
            op = s.get(OperationRow, op_id)
            if op is not None and result.release is not None:
                op.release = result.release
            self._ops.finish(s, op_id, ok=result.ok, message=result.message)
        self._ops.notify()

    def _deploy(self, job: Job, op_id: str, emit: Callable[[str], None]) -> tuple[runner.Outcome, str]:
        work = self._places.work / op_id
        try:
            if job.close_preview:
                done = self._cli(job, ["previews", "rm", job.app, job.preview], emit)
                return (
                    replace(done, message=f"removed the preview of {job.preview}") if done.ok else done
                ), ""
            access = self._access(job.app, job.team, work)
            checkout = repo.fetch(
                job.url, job.ref, work / "tree", access=access, max_bytes=self._max_bytes, emit=emit
            )
            shown = refs.shown_source(job.url, job.ref or checkout.sha[:12], "")
            try:
                folder = refs.folder_in(work / "tree", job.path, shown=shown)
                refs.check_deployable(folder, shown=refs.shown_source(job.url, job.ref, job.path))
            except MyPaasError as exc:
                return runner.Outcome(False, exc.message), checkout.sha
            args = ["deploy", job.app, str(folder), "--message", checkout.message, "--json"]
            if job.preview:
                args += ["--preview", job.preview]
            return self._cli(job, args, emit), checkout.sha
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _cli(self, job: Job, args: list[str], emit: Callable[[str], None]) -> runner.Outcome:
        new = self._identity.push_token(job.user, job.team, job.app, PUSH_TOKEN_TTL_S)
        token_id, token = int(new.info["id"]), new.secret
        seen: list[str] = []

        def line(text: str) -> None:
            seen.append(text)
            del seen[:-20]
            emit(text)

        try:
            code, out = runner.run_cli(
                args, api_url=self._api_url(), token=token, emit=line, timeout_s=DEPLOY_TIMEOUT_S
            )
        finally:
            self._identity.revoke_id(token_id)
        return runner.outcome_of(code, out, seen)

    def _access(self, app: str, team: str, work: Path) -> repo.Access:
        return source_rows.access_files(self._sessions, self._places.known, app, team, work)

    def _record(self, app: str, sha: str, *, ok: bool) -> None:
        source_rows.record_sha(self._sessions, app, sha, ok=ok)

    # -- watches --------------------------------------------------------------------------------------

    def watch(
        self, *, user: str, app: str, team: str, url: str, branch: str, path: str, poll_s: float
    ) -> dict[str, Any]:
        """Redeploy ``app`` on every push to ``branch`` of ``url`` (no branch: main, or master while the
        repository has no main); answers the webhook's secret."""
        check_name(app)
        refs.check_url(url)
        if branch:
            refs.check_branch(branch)
        sub = refs.check_subpath(path)
        if poll_s and poll_s < MIN_POLL_S:
            raise InvalidSpec(
                f"--poll must be at least {MIN_POLL_S:.0f} s (or 0: webhooks only)", field="poll"
            )
        with self._sessions.begin() as s:
            row = source_rows.source_row(s, app, team, create=True)
            assert row is not None
            secret = str((row.secrets or {}).get("webhook_secret") or "") or secrets.token_hex(20)
            row.secrets = {**(row.secrets or {}), "webhook_secret": secret}
            moved = (row.url, row.branch, row.path) != (url, branch, sub)
            row.url, row.branch, row.path, row.poll_s = url, branch, sub, float(poll_s)
            row.watching, row.user = True, user
            if moved:
                row.last_sha = row.failed_sha = ""
            info = source_rows.watch_dict(row)
        self._polled.pop(app, None)
        return {**info, "secret": secret}

    def unwatch(self, app: str) -> dict[str, Any]:
        with self._sessions.begin() as s:
            row = s.scalar(select(GitSourceRow).where(GitSourceRow.app == app))
            if row is None or not row.watching:
                raise NotFound(f"app {app!r} watches no repository", field="app")
            row.watching = False
            row.secrets = {k: v for k, v in (row.secrets or {}).items() if k != "webhook_secret"}
            return source_rows.watch_dict(row)

    def watches(self, visible: Callable[[str, str], bool]) -> list[dict[str, Any]]:
        """The watches of the apps ``visible(team, app)`` says the caller sees."""
        with self._sessions() as s:
            rows = s.scalars(
                select(GitSourceRow).where(GitSourceRow.watching.is_(True)).order_by(GitSourceRow.app)
            )
            return [source_rows.watch_dict(r) for r in rows if visible(r.team, r.app)]

    def _watched(self, app: str) -> Job | None:
        """The watch of ``app``; none once the app it deployed was removed (the watch ends then: a push
        must not make the app again)."""
        gone = self._team_of(app) is None  # asked first: one session at a time
        with self._sessions.begin() as s:
            row = s.scalar(
                select(GitSourceRow).where(GitSourceRow.app == app, GitSourceRow.watching.is_(True))
            )
            if row is None:
                return None
            if row.last_sha and gone:
                row.watching = False
                log.info("app %s was removed: its watch of %s ends", app, row.url)
                return None
            return Job(app, row.team, row.user, row.url, row.branch, row.path, watched=True)

    # -- webhooks -------------------------------------------------------------------------------------

    def hook(self, app: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """A forge's webhook for ``app``: (HTTP status, answer). Unauthorized (401) for a bad or missing
        signature, or an app that watches nothing (nothing is deployed; an event says so)."""
        with self._sessions() as s:
            row = s.scalar(
                select(GitSourceRow).where(GitSourceRow.app == app, GitSourceRow.watching.is_(True))
            )
            secret = str((row.secrets or {}).get("webhook_secret") or "") if row is not None else ""
        try:
            forge = hooks.verify(headers, body, secret)
        except Unauthorized as exc:
            self._refused(app if row is not None else None, f"webhook for {app!r} refused: {exc.message}")
            raise
        job = self._watched(app)
        if job is None:  # unwatched meanwhile
            raise Unauthorized("this app watches no repository", field="signature")
        event = hooks.parse(forge, headers, body)
        return self._act(job, event)

    def _refused(self, app: str | None, message: str) -> None:
        """A refused webhook is an event of the app it names when that app watches a repository, at most
        one a minute per app; calls naming anything else (anyone can make them) only reach the log."""
        now = time.monotonic()
        with self._guard:
            quiet = app is None or now - self._refused_at.get(app, -REFUSED_EVENT_S) < REFUSED_EVENT_S
            if not quiet and app is not None:
                self._refused_at[app] = now
        if quiet:
            log.info("%s", message)
        else:
            self._events.record(app, "git_hook_refused", message)

    def _act(self, job: Job, event: hooks.HookEvent) -> tuple[int, dict[str, Any]]:
        if event.kind == "ping":
            return 200, {"status": "ok", "forge": event.forge}
        if event.kind == "preview":
            op = self._start(replace(job, ref=event.branch, preview=event.branch, watched=False), job.user)
            return 202, {"status": "deploying", "operation": op.id, "preview": event.branch}
        if event.kind == "preview-closed":
            op = self._start(replace(job, preview=event.branch, close_preview=True, watched=False), job.user)
            return 202, {"status": "removing", "operation": op.id, "preview": event.branch}
        wanted = event.branch == job.ref if job.ref else event.branch in DEFAULT_BRANCHES
        if event.kind == "push" and wanted and event.sha:
            with self._guard:
                self._busy.add(job.app)
            op = self._start(replace(job, ref=event.branch), job.user)
            return 202, {"status": "deploying", "operation": op.id, "sha": event.sha}
        watched = job.ref or " or ".join(DEFAULT_BRANCHES)
        reason = event.reason or f"a push to {event.branch!r}, not to the watched branch {watched}"
        if event.kind == "push" and not event.sha:
            reason = f"branch {event.branch!r} was deleted"
        return 202, {"status": "ignored", "reason": reason}

    # -- polling --------------------------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether a watch's deploy runs now."""
        with self._guard:
            return bool(self._busy)

    def run(self, stop: threading.Event) -> None:
        """The poller: each watch with an interval is asked for its branch's sha that often, a few
        repositories at once (a slow or hanging remote delays only its own watch)."""
        with ThreadPoolExecutor(max_workers=POLL_WORKERS, thread_name_prefix="git-poll") as pool:
            while not stop.wait(POLL_TICK_S):
                try:
                    self.poll_due(time.monotonic(), pool=pool)
                except Exception:  # a locked database: the next tick tries again
                    log.exception("polling the watched repositories failed")

    def poll_due(self, now: float, pool: ThreadPoolExecutor | None = None) -> list[str]:
        """Check each watch that is due and start a deploy where its branch moved. Without ``pool`` the
        checks run here and the answer is the apps it started; with one they run there (one at a time
        per app) and the answer is empty."""
        with self._sessions() as s:
            rows = list(
                s.scalars(
                    select(GitSourceRow).where(GitSourceRow.watching.is_(True), GitSourceRow.poll_s > 0)
                )
            )
            due = [
                (r.app, r.last_sha, r.failed_sha)
                for r in rows
                if now - self._polled.get(r.app, float("-inf")) >= r.poll_s
            ]
        started = []
        for app, last, failed in due:
            with self._guard:
                if app in self._busy or app in self._checking:
                    continue
                self._checking.add(app)
            self._polled[app] = now
            if pool is not None:
                pool.submit(self._poll_one, app, last, failed)
            elif self._poll_one(app, last, failed):
                started.append(app)
        return started

    def _poll_one(self, app: str, last: str, failed: str) -> bool:
        """Ask the remote for the watched branch's sha; deploy it when it is new. Whether it started."""
        try:
            job = self._watched(app)
            if job is None:
                return False
            try:
                branch, sha = self._head(job)
            except MyPaasError as exc:
                log.warning("polling %s for %s: %s", job.url, app, exc.message)
                return False
            if not sha or sha in (last, failed):
                return False
            with self._guard:
                self._busy.add(app)
            self._start(replace(job, ref=branch), job.user)
            return True
        except Exception:
            log.exception("polling the repository of %s failed", app)
            return False
        finally:
            with self._guard:
                self._checking.discard(app)

    def _head(self, job: Job) -> tuple[str, str]:
        """(branch, sha) of the watched branch now ("" for the sha: no such branch)."""
        work = self._places.work / f"poll-{job.app}"
        try:
            access = self._access(job.app, job.team, work)
            for branch in (job.ref,) if job.ref else DEFAULT_BRANCHES:
                sha = repo.ls_remote(job.url, branch, access=access)
                if sha:
                    return branch, sha
            return job.ref, ""
        finally:
            shutil.rmtree(work, ignore_errors=True)
