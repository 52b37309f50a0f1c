"""How a reconcile step failed, by type (as kopf's ``PermanentError``/``TemporaryError``): the loop owns
what follows. A permanent failure gives the rollout up (the current release keeps serving); a temporary
one is reported once and the app's steps are tried again after a growing pause."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mypaas.errors import InvalidSpec, MyPaasError


class StepFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentFailure(StepFailed):
    """Retrying cannot help: the engine refuses the spec itself, or there is no image to run."""


class TemporaryFailure(StepFailed):
    """The engine, the registry or a host did not answer as it should: try again after ``delay``
    seconds (None: the loop's own back-off)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


@contextmanager
def step() -> Iterator[None]:
    """Turn the errors of a component into step failures: bad input (InvalidSpec) is permanent,
    anything else a component reports is temporary."""
    try:
        yield
    except InvalidSpec as exc:
        raise PermanentFailure(exc.message) from exc
    except MyPaasError as exc:
        raise TemporaryFailure(exc.message) from exc
