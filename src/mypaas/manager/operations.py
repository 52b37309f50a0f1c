"""Operations: work a client follows (deploy, rollback, restart, removal), and a condition to wait on."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mypaas.changes import Changes
from mypaas.errors import NotFound
from mypaas.manager.state.models import OperationRow
from mypaas.states import OperationStatus

_MAX_LOG = 256 * 1024


class Operations:
    """Creates and updates operation rows; wakes whoever waits for one to change."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.changes = Changes()  # bumped by every change of an operation

    def new(
        self,
        session: Session,
        *,
        app: str,
        kind: str,
        user: str,
        status: OperationStatus = OperationStatus.RUNNING,
    ) -> OperationRow:
        op = OperationRow(id=secrets.token_hex(6), app=app, kind=kind, status=status, created_by=user)
        session.add(op)
        return op

    def notify(self) -> None:
        self.changes.bump()

    def get(self, op_id: str) -> OperationRow:
        with self._sessions() as s:
            op = s.get(OperationRow, op_id)
            if op is None:
                raise NotFound(f"no operation {op_id!r}", field="operation")
            return op

    def wait(self, op_id: str, timeout: float, *, log_offset: int | None = None) -> OperationRow:
        """Return the operation once it is finished (or its log grew past ``log_offset``), or at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.changes.version
            op = self.get(op_id)
            if op.status.finished or (log_offset is not None and len(op.log) > log_offset):
                return op
            left = deadline - time.monotonic()
            if left <= 0:
                return op
            self.changes.wait(seen, min(left, 1.0))

    def append_log(self, op_id: str, text: str) -> None:
        with self._sessions.begin() as s:
            op = s.get(OperationRow, op_id)
            if op is not None and len(op.log) < _MAX_LOG:
                # past the cap the log stops growing (offsets stay valid for followers)
                op.log += text if len(op.log) + len(text) < _MAX_LOG else "... (log truncated)\n"
        self.notify()

    def finish(self, session: Session, op_id: str | None, *, ok: bool, message: str) -> None:
        if not op_id:
            return
        op = session.get(OperationRow, op_id)
        if op is None or op.status.finished:
            return
        op.status = OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED
        op.message = message
        op.finished_at = time.time()


def op_dict(op: OperationRow, log_offset: int = 0) -> dict[str, Any]:
    """An operation as the API shows it: its log from ``log_offset`` on, and the offset to ask next."""
    return {
        "id": op.id,
        "app": op.app,
        "kind": op.kind,
        "status": op.status.value,
        "release": op.release,
        "message": op.message,
        "log": op.log[log_offset:],
        "log_offset": len(op.log),
        "created_by": op.created_by,
        "created_at": op.created_at,
        "finished_at": op.finished_at,
    }
