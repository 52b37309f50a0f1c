"""The one place where Docker SDK and transport errors become MyPaas errors (mypaas/errors.py).

Every engine call in composer/ runs inside ``engine_errors``; what a particular call means by an
error (a 404 on removal: "gone already") it says in its own ``except`` inside, and re-raises the rest:

    with engine_errors(f"creating volume {name}"):
        api.create_volume(name)

A Docker error maps to (the first rule that fits):

    docker.errors.NotFound                  NotFound (``field``: ``not_found_field``)
    503, when ``swarm_manager``             Conflict: the engine is not a Swarm manager
    409, or FailedPrecondition when         Conflict (a taken name, a node that is not down yet)
      ``swarm_manager``
    "port is already allocated"             Conflict, field "ports"
    400                                     InvalidSpec (the engine refuses the input itself)
    anything else, and transport errors     BackendError
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests

from mypaas.errors import BackendError, Conflict, InvalidSpec, MyPaasError, NotFound

# what an engine call can raise besides MyPaas errors: the SDK's errors and its transport's
ENGINE_FAILURES = (docker.errors.DockerException, requests.RequestException)
NOT_A_MANAGER = "the local engine is not a Swarm manager (`mypaas cluster init` makes it one)"


def explain(exc: BaseException) -> str:
    """The engine's own words for an error (its JSON ``message``), else the exception's text."""
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        return tidy(str(exc.explanation)) or type(exc).__name__
    return tidy(str(exc)) or type(exc).__name__


def tidy(text: str) -> str:
    """The engine's text without its empty ends: ``reason (detail): `` ends with the reason."""
    return text.strip().rstrip(": \t\n").strip()


def engine_error(
    exc: BaseException,
    what: str,
    *,
    not_found_field: str | None = None,
    swarm_manager: bool = False,
    as_error: type[MyPaasError] | None = None,
) -> MyPaasError:
    """The MyPaas error for a Docker SDK or ``requests`` error raised while doing ``what``.

    ``swarm_manager``: the call needs a Swarm manager (a 503 says the engine is none, and the
    engine's FailedPrecondition is a conflict); ``as_error``: every failure is of this kind."""
    message = f"{what}: {explain(exc)}"
    if as_error is not None:
        return as_error(message)
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(message, field=not_found_field)
    if swarm_manager and is_status(exc, 503):
        # "This node is not a swarm manager", "This node is not part of a swarm"
        return Conflict(f"{what}: {NOT_A_MANAGER}")
    kind, field = _kind(exc, swarm_manager)
    return kind(message, field=field)


def _kind(exc: BaseException, swarm_manager: bool) -> tuple[type[MyPaasError], str | None]:
    """The error class (and the field at fault) for an engine failure other than a 404 or a 503."""
    if not isinstance(exc, docker.errors.APIError):
        return BackendError, None  # the engine is unreachable, or the connection broke
    if exc.status_code == 409 or (swarm_manager and "FailedPrecondition" in explain(exc)):
        return Conflict, None
    if "port is already allocated" in str(exc):
        return Conflict, "ports"
    if exc.status_code == 400:
        return InvalidSpec, None  # the engine refuses the input itself
    return BackendError, None


@contextmanager
def engine_errors(
    what: str,
    *,
    not_found_field: str | None = None,
    swarm_manager: bool = False,
    as_error: type[MyPaasError] | None = None,
) -> Iterator[None]:
    """Run engine calls; re-raise their Docker SDK or ``requests`` errors as MyPaas errors (see
    ``engine_error``), chained with ``from``. MyPaas errors raised inside pass through unchanged."""
    try:
        yield
    except ENGINE_FAILURES as exc:
        raise engine_error(
            exc, what, not_found_field=not_found_field, swarm_manager=swarm_manager, as_error=as_error
        ) from exc


def is_status(exc: BaseException, *codes: int) -> bool:
    """Did the engine answer with one of ``codes``?"""
    return isinstance(exc, docker.errors.APIError) and exc.status_code in codes
