"""Which branch deploys an app when pushed (`mypaas git remote APP --branch B`): stored on the app;
none set means ``main``, and ``master`` is accepted too. Any other branch is a preview."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.domain import check_name
from mypaas.errors import InvalidSpec, UnknownApp
from mypaas.manager.state.models import AppRow

DEFAULT_BRANCHES = ("main", "master")
# git check-ref-format's rules for a branch, the parts that matter here
_BAD = re.compile(r"(^[-/.])|(\.\.)|(//)|(@\{)|([/.]$)|(\.lock$)|(/\.)|([\x00-\x20\x7f~^:?*\[\\])")
MAX_BRANCH = 255


def check_branch(branch: str) -> str:
    """``branch`` if git accepts it as a branch name, else InvalidSpec naming the field."""
    if not branch or len(branch) > MAX_BRANCH or branch == "@" or _BAD.search(branch):
        raise InvalidSpec(f"invalid branch name {branch!r}", field="branch")
    return branch


class DeployBranches:
    """Read and set apps' deploy branches."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, app: str) -> str | None:
        """The branch set for ``app`` (None: none set, or no such app yet)."""
        check_name(app)
        with self._sessions() as s:
            return s.scalar(select(AppRow.deploy_branch).where(AppRow.name == app))

    def set(self, app: str, branch: str) -> str:
        check_name(app)
        check_branch(branch)
        with self._sessions.begin() as s:
            row = s.scalar(select(AppRow).where(AppRow.name == app))
            if row is None:
                raise UnknownApp(app)
            row.deploy_branch = branch
            return branch
