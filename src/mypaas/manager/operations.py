"""Operations: work a client follows (deploy, rollback, restart, removal), and a condition to wait on."""

from __future__ import annotations

import secrets
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import NotFound
from mypaas.manager.models import OperationRow

TERMINAL = ("succeeded", "failed")
_MAX_LOG = 256 * 1024


class Operations:
    """Creates and updates operation rows; wakes whoever waits for one to change."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._changed = threading.Condition()
        self._version = 0

    def new(
        self, session: Session, *, app: str, kind: str, user: str, status: str = "running"
    ) -> OperationRow:
        op = OperationRow(id=secrets.token_hex(6), app=app, kind=kind, status=status, created_by=user)
        session.add(op)
        return op

    @property
    def version(self) -> int:
        """Bumped by every change of an operation (for waiters that poll rather than block)."""
        return self._version

    def notify(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

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
            with self._changed:
                seen = self._version
            op = self.get(op_id)
            if op.status in TERMINAL or (log_offset is not None and len(op.log) > log_offset):
                return op
            left = deadline - time.monotonic()
            if left <= 0:
                return op
            with self._changed:
                if self._version == seen:
                    self._changed.wait(min(left, 1.0))

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
        if op is None or op.status in TERMINAL:
            return
        op.status = "succeeded" if ok else "failed"
        op.message = message
        op.finished_at = time.time()
